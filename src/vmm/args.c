/* args: command-line parsing for vessel-vmm. getopt_long does the option
 * splitting; the values (sizes, counts, comma-separated device options) are
 * checked here so every mistake gets a sentence, not a crash at boot. */
#include "vmm/args.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "vmm/acpi.h"

const char args_usage[] =
	"usage: vessel-vmm --kernel FILE [--initrd FILE] [--cmdline STRING]\n"
	"                  [--cpus N] [--memory SIZE] [--disk PATH[,ro][,format=raw]|fd=N[,ro]]...\n"
	"                  [--net tap=NAME|fd=N[,mac=XX:XX:XX:XX:XX:XX]]... [--rng]\n"
	"                  [--control SOCKET] [--console stdio|socket:PATH|none]\n"
	"                  [--user USER] [--no-seccomp] [--log-level error|warn|info|debug]\n"
	"\n"
	"Runs one Linux microVM under KVM: direct kernel boot (bzImage or vmlinux),\n"
	"virtio-pci block/net/rng devices, a 16550 serial console, ACPI power off.\n"
	"\n"
	"  --kernel FILE      kernel to boot: x86-64 bzImage (boot protocol 2.10+) or vmlinux ELF\n"
	"  --initrd FILE      initial ramdisk\n"
	"  --cmdline STRING   kernel command line (default: console=ttyS0)\n"
	"  --cpus N           vCPUs, 1-254 (default 1)\n"
	"  --memory SIZE      guest RAM, e.g. 512M or 2G, at least 64M (default 256M)\n"
	"  --disk ...         a virtio-blk disk; ro makes it read-only; fd=N uses an open fd\n"
	"  --net ...          a virtio-net NIC on a tap device (by name, or an open fd)\n"
	"  --rng              a virtio-rng device fed from the host's getrandom()\n"
	"  --control SOCKET   Unix socket for newline-delimited JSON control (hello, status,\n"
	"                     pause, resume, poweroff, quit, stats)\n"
	"  --console ...      serial console on stdin/stdout (default), a Unix socket, or none\n"
	"  --user USER        drop to this user after setup\n"
	"  --no-seccomp       do not install the seccomp allow-list (for debugging)\n"
	"\n"
	"Exit status: 0 the guest powered off (or quit/SIGTERM asked to stop),\n"
	"             1 the guest rebooted, 2 crash or error.\n";

enum {
	OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_DISK, OPT_NET, OPT_RNG,
	OPT_CONTROL, OPT_CONSOLE, OPT_USER, OPT_LOG_LEVEL, OPT_NO_SECCOMP, OPT_HELP, OPT_VERSION,
};

static const struct option args_options[] = {
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"initrd", required_argument, NULL, OPT_INITRD},
	{"cmdline", required_argument, NULL, OPT_CMDLINE},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"disk", required_argument, NULL, OPT_DISK},
	{"net", required_argument, NULL, OPT_NET},
	{"rng", no_argument, NULL, OPT_RNG},
	{"control", required_argument, NULL, OPT_CONTROL},
	{"console", required_argument, NULL, OPT_CONSOLE},
	{"user", required_argument, NULL, OPT_USER},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"no-seccomp", no_argument, NULL, OPT_NO_SECCOMP},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

int args_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;
	if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6 ||
	    strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	/* A multicast address cannot be a NIC's own. */
	if (mac[0] & 1)
		return -EINVAL;
	return 0;
}

static int args_fd(const char *s, int *fd)
{
	uint64_t v;
	if (util_parse_u64(s, 3, 65535, &v) < 0)
		return -EINVAL;
	*fd = (int)v;
	return 0;
}

/* Split "a,b,c" in place; each part is handled by the caller. */
static int args_disk(char *spec, struct args_disk *d, char *err, size_t errlen)
{
	d->fd = -1;
	d->format = "raw";
	char *save = NULL;
	bool first = true;
	for (char *tok = strtok_r(spec, ",", &save); tok; tok = strtok_r(NULL, ",", &save), first = false) {
		if (strcmp(tok, "ro") == 0) {
			d->ro = true;
		} else if (strncmp(tok, "format=", 7) == 0) {
			d->format = tok + 7;
		} else if (first && strncmp(tok, "fd=", 3) == 0) {
			if (args_fd(tok + 3, &d->fd) < 0) {
				snprintf(err, errlen, "--disk: '%s' is not a file descriptor number (3 or more)", tok + 3);
				return -EINVAL;
			}
		} else if (first) {
			d->path = tok;
		} else {
			snprintf(err, errlen, "--disk: unknown option '%s'; use PATH[,ro][,format=raw] or fd=N[,ro]", tok);
			return -EINVAL;
		}
	}
	if (!d->path && d->fd < 0) {
		snprintf(err, errlen, "--disk needs a path or fd=N, e.g. --disk root.img or --disk fd=5,ro");
		return -EINVAL;
	}
	return 0;
}

static int args_net(char *spec, struct args_net *n, char *err, size_t errlen)
{
	n->fd = -1;
	char *save = NULL;
	for (char *tok = strtok_r(spec, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strncmp(tok, "tap=", 4) == 0 && tok[4]) {
			n->tap = tok + 4;
		} else if (strncmp(tok, "fd=", 3) == 0) {
			if (args_fd(tok + 3, &n->fd) < 0) {
				snprintf(err, errlen, "--net: '%s' is not a file descriptor number (3 or more)", tok + 3);
				return -EINVAL;
			}
		} else if (strncmp(tok, "mac=", 4) == 0) {
			if (args_parse_mac(tok + 4, n->mac) < 0) {
				snprintf(err, errlen, "--net: '%s' is not a unicast MAC address like 52:54:00:12:34:56",
					 tok + 4);
				return -EINVAL;
			}
			n->has_mac = true;
		} else {
			snprintf(err, errlen, "--net: unknown option '%s'; use tap=NAME or fd=N, and mac=...", tok);
			return -EINVAL;
		}
	}
	if ((n->tap == NULL) == (n->fd < 0)) {
		snprintf(err, errlen, "--net needs exactly one of tap=NAME or fd=N");
		return -EINVAL;
	}
	return 0;
}

int args_parse(int argc, char **argv, struct args *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	a->cpus = 1;
	a->memory = 256 * MiB;
	a->cmdline = "console=ttyS0";
	a->console = ARGS_CONSOLE_STDIO;
	a->seccomp = true;
	uint64_t v;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", args_options, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: a->kernel = optarg; break;
		case OPT_INITRD: a->initrd = optarg; break;
		case OPT_CMDLINE: a->cmdline = optarg; break;
		case OPT_CPUS:
			if (util_parse_u64(optarg, 1, ACPI_MAX_CPUS, &v) < 0) {
				snprintf(err, errlen, "--cpus '%s': give a number of vCPUs from 1 to %d", optarg,
					 ACPI_MAX_CPUS);
				return -EINVAL;
			}
			a->cpus = (unsigned)v;
			break;
		case OPT_MEMORY:
			if (util_parse_size(optarg, &v) < 0 || v < 64 * MiB || v > 1024 * GiB || v % (2 * MiB)) {
				snprintf(err, errlen,
					 "--memory '%s': give a size from 64M to 1T in whole 2M steps, e.g. 512M or 2G",
					 optarg);
				return -EINVAL;
			}
			a->memory = v;
			break;
		case OPT_DISK:
			if (a->nr_disks == ARGS_MAX_DISKS) {
				snprintf(err, errlen, "--disk: at most %d disks", ARGS_MAX_DISKS);
				return -EINVAL;
			}
			if (args_disk(optarg, &a->disks[a->nr_disks], err, errlen) < 0)
				return -EINVAL;
			a->nr_disks++;
			break;
		case OPT_NET:
			if (a->nr_nets == ARGS_MAX_NETS) {
				snprintf(err, errlen, "--net: at most %d NICs", ARGS_MAX_NETS);
				return -EINVAL;
			}
			if (args_net(optarg, &a->nets[a->nr_nets], err, errlen) < 0)
				return -EINVAL;
			a->nr_nets++;
			break;
		case OPT_RNG: a->rng = true; break;
		case OPT_CONTROL: a->control = optarg; break;
		case OPT_CONSOLE:
			if (strcmp(optarg, "stdio") == 0) {
				a->console = ARGS_CONSOLE_STDIO;
			} else if (strcmp(optarg, "none") == 0) {
				a->console = ARGS_CONSOLE_NONE;
			} else if (strncmp(optarg, "socket:", 7) == 0 && optarg[7]) {
				a->console = ARGS_CONSOLE_SOCKET;
				a->console_path = optarg + 7;
			} else {
				snprintf(err, errlen, "--console '%s': use stdio, none or socket:PATH", optarg);
				return -EINVAL;
			}
			break;
		case OPT_USER: a->user = optarg; break;
		case OPT_LOG_LEVEL: a->log_level = optarg; break;
		case OPT_NO_SECCOMP: a->seccomp = false; break;
		case OPT_HELP: a->help = true; return 0;
		case OPT_VERSION: a->version = true; return 0;
		case ':':
			snprintf(err, errlen, "%s needs a value; see --help", argv[optind - 1]);
			return -EINVAL;
		default:
			snprintf(err, errlen, "unknown option '%s'; see --help", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'; every setting is an --option, see --help",
			 argv[optind]);
		return -EINVAL;
	}
	if (!a->kernel) {
		snprintf(err, errlen, "--kernel is required: the bzImage or vmlinux to boot");
		return -EINVAL;
	}
	return 0;
}
