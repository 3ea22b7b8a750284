/* qemu_host: accelerator and QEMU version detection (see qemu_host.h). */
#include "daemon/engine/qemu_host.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static bool qemu_host_module_loaded(const char *sys_module, const char *mod)
{
	char path[4096];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s", sys_module, mod) >= (int)sizeof(path))
		return false;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void qemu_host_detect_accel(const char *dev_kvm, const char *sys_module,
			    struct engine_host_info *out)
{
	bool hw = qemu_host_module_loaded(sys_module, "kvm_intel") ||
		  qemu_host_module_loaded(sys_module, "kvm_amd");
	int fd = open(dev_kvm, O_RDWR | O_CLOEXEC);
	int open_err = fd < 0 ? errno : 0;

	if (fd >= 0)
		close(fd);
	out->kvm = fd >= 0 && hw;
	snprintf(out->accel, sizeof(out->accel), "%s", out->kvm ? "kvm" : "tcg");
	out->warning[0] = '\0';
	if (out->kvm)
		return;
	if (fd < 0)
		snprintf(out->warning, sizeof(out->warning),
			 "%s cannot be opened (%s), so VMs run under TCG emulation, many "
			 "times slower; enable virtualization in the firmware and load "
			 "kvm_intel or kvm_amd", dev_kvm, strerror(open_err));
	else
		snprintf(out->warning, sizeof(out->warning),
			 "%s exists but neither kvm_intel nor kvm_amd is loaded, so VMs run "
			 "under TCG emulation, many times slower; load the module for "
			 "this CPU", dev_kvm);
}

int qemu_host_version_parse(const char *text, char *out, size_t cap)
{
	static const char prefix[] = "QEMU emulator version ";
	const char *p = strstr(text, prefix);
	size_t n = 0;

	if (!p)
		return -EINVAL;
	p += sizeof(prefix) - 1;
	while ((p[n] >= '0' && p[n] <= '9') || p[n] == '.')
		n++;
	if (n == 0 || n >= cap)
		return -EINVAL;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int qemu_host_version_query(const char *binary, char *out, size_t cap)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = {(char *)binary, (char *)"--version", NULL};
	char buf[512];
	size_t len = 0;
	int pipefd[2] = {-1, -1}, status, r;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	r = -posix_spawnp(&pid, binary, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (r < 0)
		goto out;
	for (;;) {
		ssize_t n = read(pipefd[0], buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	r = qemu_host_version_parse(buf, out, cap);
out:
	close(pipefd[0]);
	return r;
}
