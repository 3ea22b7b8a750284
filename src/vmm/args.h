/* args: vessel-vmm's command line, parsed into a struct with one-line
 * errors that say what was wrong and what to pass instead. */
#ifndef VESSEL_VMM_ARGS_H
#define VESSEL_VMM_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARGS_MAX_DISKS 8
#define ARGS_MAX_NETS 4

struct args_disk {
	const char *path;  /* NULL when fd >= 0 */
	int fd;            /* -1 unless fd=N was given */
	bool ro;
	const char *format;
};

struct args_net {
	const char *tap;   /* NULL when fd >= 0 */
	int fd;
	uint8_t mac[6];
	bool has_mac;
};

enum args_console {
	ARGS_CONSOLE_STDIO,
	ARGS_CONSOLE_SOCKET,
	ARGS_CONSOLE_NONE,
};

struct args {
	const char *kernel, *initrd, *cmdline;
	unsigned cpus;
	uint64_t memory;
	struct args_disk disks[ARGS_MAX_DISKS];
	unsigned nr_disks;
	struct args_net nets[ARGS_MAX_NETS];
	unsigned nr_nets;
	bool rng;
	const char *control;
	enum args_console console;
	const char *console_path;
	const char *user;
	const char *log_level;
	bool seccomp;
	bool help, version;
};

/* Parse argv. Returns 0, or -EINVAL with a one-line message in err. */
int args_parse(int argc, char **argv, struct args *a, char *err, size_t errlen);

/* Parse "52:54:00:12:34:56". Returns 0 or -EINVAL. */
int args_parse_mac(const char *s, uint8_t mac[6]);

extern const char args_usage[];

#endif
