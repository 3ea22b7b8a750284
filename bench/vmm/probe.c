/* probe: run a VM monitor and measure it from the outside, the same way for
 * vessel-vmm and for QEMU, for the vmm benchmark (bench/vmm/l1-bench.sh).
 * The monitor's serial console must go to its stdout. probe records
 *   - wall time from just before exec to the first console byte and to a
 *     marker line (boot to init);
 *   - CPU time the monitor used (all its threads, from
 *     /proc/PID/task/TID/schedstat, nanoseconds) at those two moments;
 *   - once the marker is seen and --settle ms have passed: the monitor's
 *     resident set and the resident part of the mapping holding guest RAM
 *     (see probe_memory); their difference is what the monitor itself
 *     costs.
 * Then it kills the monitor (SIGKILL) and prints one line:
 *   PROBE first_byte_ms=.. first_byte_cpu_ms=.. marker_ms=.. marker_cpu_ms=..
 *         rss_kb=.. guest_rss_kb=.. overhead_kb=..
 * (-1 where a figure was not reached). Exit 0 when the marker (or, without
 * --marker, the first byte) was seen, 1 otherwise.
 *
 * Usage: probe [--marker TEXT] [--timeout S] [--settle MS] [--guest-mb N]
 *              [--log FILE] -- CMD...
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct probe_figures {
	long first_byte_ms;
	long first_byte_cpu_ms;
	long marker_ms;
	long marker_cpu_ms;
	long rss_kb;
	long guest_rss_kb;
};

static int64_t probe_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time of every thread of pid, in ms; -1 if it cannot be read. */
static long probe_cpu_ms(pid_t pid)
{
	char path[64], buf[128];
	struct dirent *de;
	uint64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char tpath[128];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(tpath, sizeof(tpath), "/proc/%d/task/%.20s/schedstat", (int)pid, de->d_name);
		f = fopen(tpath, "r");
		if (!f)
			continue;
		/* first field: time spent on the CPU, ns */
		if (fgets(buf, sizeof(buf), f))
			sum += strtoull(buf, NULL, 10);
		fclose(f);
	}
	closedir(d);
	return (long)(sum / 1000000);
}

/* Resident set of pid (sum of Rss over its mappings) and the Rss of the
 * mapping holding guest RAM, in kB: the smallest mapping of at least
 * guest_min_kb (QEMU rounds its RAM block up; under TCG a larger code buffer
 * exists too), or the largest mapping when guest_min_kb is 0. */
static int probe_memory(pid_t pid, long guest_min_kb, long *rss_kb, long *guest_kb)
{
	char path[64], line[512];
	long size = 0, best_size = -1, rss;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	*rss_kb = 0;
	*guest_kb = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Size: %ld kB", &size) == 1)
			continue;
		if (sscanf(line, "Rss: %ld kB", &rss) == 1) {
			*rss_kb += rss;
			int better = guest_min_kb ? (size >= guest_min_kb && (best_size < 0 || size < best_size))
						  : size > best_size;

			if (better) {
				best_size = size;
				*guest_kb = rss;
			}
		}
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	struct probe_figures fig = { -1, -1, -1, -1, -1, -1 };
	const char *marker = NULL, *logpath = NULL;
	long timeout_s = 120, settle_ms = 1000, guest_mb = 0;
	char buf[4096], *seen = NULL;
	size_t seen_len = 0;
	int pipefd[2], i, status, ret = 1;
	int64_t t0, deadline;
	FILE *log = NULL;
	pid_t pid;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--marker") && i + 1 < argc)
			marker = argv[++i];
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout_s = atol(argv[++i]);
		else if (!strcmp(argv[i], "--settle") && i + 1 < argc)
			settle_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "--guest-mb") && i + 1 < argc)
			guest_mb = atol(argv[++i]);
		else if (!strcmp(argv[i], "--log") && i + 1 < argc)
			logpath = argv[++i];
		else
			break;
	}
	if (i >= argc - 1 || strcmp(argv[i], "--")) {
		fprintf(stderr, "usage: probe [--marker TEXT] [--timeout S] [--settle MS] [--guest-mb N] [--log FILE] -- CMD...\n");
		return 2;
	}
	if (logpath) {
		log = fopen(logpath, "w");
		if (!log) {
			fprintf(stderr, "probe: cannot write %s: %s\n", logpath, strerror(errno));
			return 2;
		}
	}
	if (pipe(pipefd) < 0) {
		perror("probe: pipe");
		return 2;
	}
	t0 = probe_now_ns();
	pid = fork();
	if (pid < 0) {
		perror("probe: fork");
		return 2;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		/* Its own process group, so a monitor that is a wrapper script
		 * is killed together with what it started. */
		setpgid(0, 0);
		dup2(null, 0);
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execvp(argv[i + 1], argv + i + 1);
		fprintf(stderr, "probe: cannot run %s: %s\n", argv[i + 1], strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	deadline = t0 + (int64_t)timeout_s * 1000000000;
	for (;;) {
		struct pollfd pfd = { pipefd[0], POLLIN, 0 };
		int64_t now = probe_now_ns();
		ssize_t n;

		if (now >= deadline)
			break;
		if (poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1) <= 0)
			continue;
		n = read(pipefd[0], buf, sizeof(buf));
		if (n <= 0)
			break;
		if (fig.first_byte_ms < 0) {
			fig.first_byte_cpu_ms = probe_cpu_ms(pid);
			fig.first_byte_ms = (long)((probe_now_ns() - t0) / 1000000);
			if (!marker) {
				ret = 0;
				break;
			}
		}
		if (log)
			fwrite(buf, 1, (size_t)n, log);
		seen = realloc(seen, seen_len + (size_t)n + 1);
		if (!seen)
			break;
		memcpy(seen + seen_len, buf, (size_t)n);
		seen_len += (size_t)n;
		seen[seen_len] = '\0';
		if (marker && strstr(seen, marker)) {
			fig.marker_cpu_ms = probe_cpu_ms(pid);
			fig.marker_ms = (long)((probe_now_ns() - t0) / 1000000);
			usleep((useconds_t)settle_ms * 1000);
			probe_memory(pid, guest_mb * 1024, &fig.rss_kb, &fig.guest_rss_kb);
			ret = 0;
			break;
		}
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (log)
		fclose(log);
	free(seen);
	printf("PROBE first_byte_ms=%ld first_byte_cpu_ms=%ld marker_ms=%ld marker_cpu_ms=%ld rss_kb=%ld "
	       "guest_rss_kb=%ld overhead_kb=%ld\n",
	       fig.first_byte_ms, fig.first_byte_cpu_ms, fig.marker_ms, fig.marker_cpu_ms, fig.rss_kb,
	       fig.guest_rss_kb, fig.rss_kb >= 0 ? fig.rss_kb - fig.guest_rss_kb : -1);
	return ret;
}
