/* main: vesseld's command line, signal handling and the top-level run.
 * SIGTERM/SIGINT stop the API cleanly and leave VMs running; the next
 * vesseld re-attaches to them. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/daemon.h"
#include "daemon/history.h"
#include "daemon/static.h"
#include "lib/util.h"

static void main_usage(FILE *f)
{
	char web_default[PATH_MAX];
	static_default_dir(web_default, sizeof(web_default));
	fprintf(f,
		"usage: vesseld [--data-dir DIR] [--listen ADDR:PORT] [--socket PATH]\n"
		"               [--allow-dir DIR]... [--qemu PATH] [--qemu-img PATH]\n"
		"               [--http-threads N] [--log-level error|warn|info|debug]\n"
		"               [--web-dir DIR] [--history-interval SECONDS]\n"
		"               [--auth-limits FREE:DELAY_MS:LOCKOUT_AFTER:LOCKOUT_S]\n"
		"               [--backup-store DIR]\n"
		"  --data-dir DIR     state, disks and images (default /var/lib/vessel)\n"
		"  --listen ADDR:PORT TCP API with bearer token (default 127.0.0.1:8006;\n"
		"                     'none' to disable)\n"
		"  --socket PATH      Unix socket API, no token (default /run/vessel/vesseld.sock;\n"
		"                     'none' to disable)\n"
		"  --allow-dir DIR    directory clients may import images and kernels from\n"
		"                     (repeatable; default DATA_DIR/import)\n"
		"  --qemu PATH        qemu-system-x86_64 binary (default from PATH)\n"
		"  --web-dir DIR      web UI files served at / (default %s:\n"
		"                     BUILD/web when run from the build tree, else\n"
		"                     the installed DATADIR/vessel/web)\n"
		"  --history-interval SECONDS\n"
		"                     how often VM and host use is sampled for the graphs\n"
		"                     (1..60, default %d; one hour is kept)\n"
		"  --auth-limits F:D:A:L  failed TCP authentications from one address: F free,\n"
		"                     then a delay of D ms doubling each time, a lockout of\n"
		"                     L s after A (default 5:1000:10:300)\n"
		"  --cpu-ratio R      CPU overcommit ratio (vCPUs per CPU, default 4 or the\n"
		"                     value last set through the API)\n"
		"  --memory-ratio R   memory overcommit ratio (default 1, at most 4)\n"
		"  --capacity-cpus N  count N host CPUs for admission instead of the online ones\n"
		"  --capacity-memory-mib N  count N MiB of host memory instead of MemTotal\n"
		"  --capacity-disk-gib N    count N GiB of disk instead of the data dir's size\n"
		"  --cgroup-root DIR  cgroup v2 directory for VM groups (default: the cgroup2\n"
		"                     mount's vessel.slice; 'none' to not use cgroups). On\n"
		"                     hybrid hosts (cpu controller in cgroup v1) the groups go\n"
		"                     to <v1 cpu/blkio mount>/BASENAME(DIR), default 'vessel'\n"
		"  --backup-store DIR where backups go; may be NFS (default DATA_DIR/backups)\n"
		"  test only: VESSEL_TEST_CLOCK=FILE makes schedules and retention read the\n"
		"  time (epoch seconds) from FILE, see docs/backups.md\n",
		web_default, HISTORY_DEFAULT_INTERVAL_S);
}

int main(int argc, char **argv)
{
	struct daemon_config *cfg = calloc(1, sizeof(*cfg));
	const char *qemu = NULL;
	enum log_level level = LOG_LEVEL_INFO;
	struct engine *engine = NULL;
	struct daemon *d = NULL;
	char *err = NULL;
	int r, ret = 1;

	if (!cfg)
		return 1;
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "/var/lib/vessel");
	snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8006");
	snprintf(cfg->socket_path, sizeof(cfg->socket_path), "/run/vessel/vesseld.sock");
	snprintf(cfg->cgroup_root, sizeof(cfg->cgroup_root), "auto");
	static_default_dir(cfg->web_dir, sizeof(cfg->web_dir));

	static const struct option opts[] = {
		{"data-dir", required_argument, NULL, 'd'},
		{"listen", required_argument, NULL, 'l'},
		{"socket", required_argument, NULL, 's'},
		{"allow-dir", required_argument, NULL, 'a'},
		{"qemu", required_argument, NULL, 'q'},
		{"qemu-img", required_argument, NULL, 'i'},
		{"backup-store", required_argument, NULL, 'b'},
		{"http-threads", required_argument, NULL, 't'},
		{"log-level", required_argument, NULL, 'L'},
		{"web-dir", required_argument, NULL, 'w'},
		{"history-interval", required_argument, NULL, 'H'},
		{"auth-limits", required_argument, NULL, 'A'},
		{"cpu-ratio", required_argument, NULL, 'C'},
		{"memory-ratio", required_argument, NULL, 'M'},
		{"capacity-cpus", required_argument, NULL, 'c'},
		{"capacity-memory-mib", required_argument, NULL, 'm'},
		{"capacity-memory", required_argument, NULL, 'm'}, /* the same, shorter */
		{"capacity-disk-gib", required_argument, NULL, 'k'},
		{"cgroup-root", required_argument, NULL, 'g'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	uint64_t n;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", optarg);
			break;
		case 'l':
			snprintf(cfg->listen, sizeof(cfg->listen), "%s",
				 strcmp(optarg, "none") == 0 ? "" : optarg);
			break;
		case 's':
			snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s",
				 strcmp(optarg, "none") == 0 ? "" : optarg);
			break;
		case 'a':
			if (cfg->nr_allow_dirs >= DAEMON_MAX_ALLOW_DIRS) {
				fprintf(stderr, "vesseld: at most %d --allow-dir options\n",
					DAEMON_MAX_ALLOW_DIRS);
				goto out;
			}
			cfg->allow_dirs[cfg->nr_allow_dirs++] = optarg;
			break;
		case 'q':
			qemu = optarg;
			break;
		case 'i':
			snprintf(cfg->qemu_img, sizeof(cfg->qemu_img), "%s", optarg);
			break;
		case 'b':
			snprintf(cfg->backup_store, sizeof(cfg->backup_store), "%s", optarg);
			break;
		case 't':
			if (util_parse_u64(optarg, 1, 256, &n) < 0) {
				fprintf(stderr, "vesseld: --http-threads must be 1..256\n");
				goto out;
			}
			cfg->http_threads = (unsigned)n;
			break;
		case 'L':
			if (log_level_parse(optarg, &level) < 0) {
				fprintf(stderr, "vesseld: --log-level must be error, warn, info or debug\n");
				goto out;
			}
			break;
		case 'w':
			snprintf(cfg->web_dir, sizeof(cfg->web_dir), "%s", optarg);
			break;
		case 'H':
			if (util_parse_u64(optarg, 1, 60, &n) < 0) {
				fprintf(stderr, "vesseld: --history-interval must be 1..60 seconds\n");
				goto out;
			}
			cfg->history_interval_s = (unsigned)n;
			break;
		case 'A':
			if (auth_limits_parse(optarg, &cfg->auth_limits) < 0) {
				fprintf(stderr, "vesseld: --auth-limits must be FREE:DELAY_MS:LOCKOUT_AFTER:"
					"LOCKOUT_S with FREE <= LOCKOUT_AFTER, e.g. 5:1000:10:300\n");
				goto out;
			}
			break;
		case 'C':
		case 'M': {
			char *end;
			double v = strtod(optarg, &end);
			if (end == optarg || *end) {
				fprintf(stderr, "vesseld: --%s must be a number such as %s\n",
					c == 'C' ? "cpu-ratio" : "memory-ratio", c == 'C' ? "4" : "1.5");
				goto out;
			}
			/* 0 or less is refused by the daemon with the reason */
			if (c == 'C')
				cfg->cpu_ratio = v > 0 ? v : -1;
			else
				cfg->memory_ratio = v > 0 ? v : -1;
			break;
		}
		case 'c':
		case 'm':
		case 'k':
			if (util_parse_u64(optarg, 1, 1ull << 40, &n) < 0) {
				fprintf(stderr, "vesseld: --capacity-%s must be a positive integer\n",
					c == 'c' ? "cpus" : c == 'm' ? "memory-mib" : "disk-gib");
				goto out;
			}
			if (c == 'c')
				cfg->capacity_cpus = n;
			else if (c == 'm')
				cfg->capacity_memory_mib = n;
			else
				cfg->capacity_disk_gib = n;
			break;
		case 'g':
			snprintf(cfg->cgroup_root, sizeof(cfg->cgroup_root), "%s",
				 strcmp(optarg, "none") == 0 ? "" : optarg);
			break;
		case 'h':
			main_usage(stdout);
			ret = 0;
			goto out;
		default:
			main_usage(stderr);
			ret = 2;
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vesseld: unexpected argument '%s'\n", argv[optind]);
		main_usage(stderr);
		ret = 2;
		goto out;
	}
	log_init("vesseld", level);
	/* Disks, tokens and sockets are private to the daemon's user. */
	umask(0077);

	/* Block the stop signals in every thread (threads inherit the mask)
	 * and take them synchronously below with sigwait. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((r = engine_qemu_new(qemu, &engine)) < 0) {
		log_error("cannot set up the QEMU engine: %s", strerror(-r));
		goto out;
	}
	if ((r = daemon_new(cfg, engine, &d, &err)) < 0 || (r = daemon_start(d, &err)) < 0) {
		log_error("%s", err ? err : strerror(-r));
		if (d)
			daemon_stop(d);
		goto out;
	}
	int sig = 0;
	sigwait(&stop, &sig);
	log_info("received %s: shutting down; running VMs keep running",
		 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	daemon_stop(d);
	ret = 0;
out:
	daemon_free(d);
	if (engine)
		engine_free(engine);
	free(err);
	free(cfg);
	return ret;
}
