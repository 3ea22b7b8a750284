/* cgroup: the vessel cgroup v2 tree and per-VM groups (see cgroup.h).
 * Only file writes into cgroupfs; no library does this part (libcgroup
 * targets v1 and systemd's API needs a running systemd, which vesseld must
 * not assume), and the interface is four files. */
#include "daemon/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* P0..P4. The kernel default is 100, so P2 (the default priority) VMs
 * compete evenly with everything else on the host. Each step up multiplies
 * the share by about 10 for P0/P1 (10000 is the cgroup v2 maximum, so a
 * P0 VM gets ~99% of a CPU contended with a P2 one) and each step down
 * halves it twice over, so a P4 VM still gets some time (25 vs 100: a
 * fifth) instead of starving. io.weight uses the same scale. */
static const unsigned cgroup_weights[] = {10000, 1000, 100, 50, 25};

unsigned cgroup_priority_weight(unsigned priority)
{
	if (priority >= ARRAY_SIZE(cgroup_weights))
		priority = ARRAY_SIZE(cgroup_weights) - 1;
	return cgroup_weights[priority];
}

int cgroup_find_mount(const char *mountinfo, char *out, size_t cap)
{
	const char *line = mountinfo;
	while (line && *line) {
		const char *end = strchrnul(line, '\n');
		const char *sep = strstr(line, " - ");
		if (sep && sep < end && strncmp(sep + 3, "cgroup2 ", 8) == 0) {
			/* fields: id parent major:minor root mountpoint ... */
			const char *p = line;
			for (int f = 0; f < 4 && p < end; f++) {
				p = strchr(p, ' ');
				if (!p || p >= end)
					break;
				p++;
			}
			if (p && p < end) {
				const char *e = strchr(p, ' ');
				size_t n = (size_t)((e && e < end ? e : end) - p);
				if (n == 0 || n >= cap)
					return -ENAMETOOLONG;
				memcpy(out, p, n);
				out[n] = '\0';
				return 0;
			}
		}
		line = *end ? end + 1 : NULL;
	}
	return -ENOENT;
}

static int cgroup_write(const struct cgroup_tree *t, const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC | (t->plain_dir ? O_CREAT : 0), 0644);
	if (fd < 0)
		return -errno;
	int r = util_write_all(fd, value, strlen(value));
	close(fd);
	return r;
}

static int cgroup_read(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, cap - 1);
	int r = n < 0 ? -errno : 0;
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return r;
}

/* Whether a space-separated controller list holds name. */
static bool cgroup_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; (p = strstr(p, name)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

/* Make controller available to ROOT's children: enabled in the parent's
 * subtree_control (so ROOT has it) and in ROOT's own. */
static bool cgroup_enable(const struct cgroup_tree *t, const char *parent, const char *root, const char *controller)
{
	char path[PATH_MAX + 32], buf[512], cmd[32];
	snprintf(cmd, sizeof(cmd), "+%s", controller);
	snprintf(path, sizeof(path), "%s/cgroup.controllers", root);
	if (cgroup_read(path, buf, sizeof(buf)) < 0)
		return false;
	if (!cgroup_list_has(buf, controller)) {
		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", parent);
		if (cgroup_write(t, path, cmd) < 0)
			return false;
		snprintf(path, sizeof(path), "%s/cgroup.controllers", root);
		if (cgroup_read(path, buf, sizeof(buf)) < 0 || !cgroup_list_has(buf, controller))
			return false;
	}
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	if (cgroup_read(path, buf, sizeof(buf)) == 0 && cgroup_list_has(buf, controller))
		return true;
	return cgroup_write(t, path, cmd) == 0;
}

void cgroup_tree_init(struct cgroup_tree *t, const char *root, bool check_fs)
{
	memset(t, 0, sizeof(*t));
	t->plain_dir = !check_fs;
	if (root && root[0]) {
		snprintf(t->root, sizeof(t->root), "%s", root);
	} else {
		char *buf = malloc(65536), mnt[PATH_MAX];
		int r = buf ? cgroup_read("/proc/self/mountinfo", buf, 65536) : -ENOMEM;
		if (r == 0)
			r = cgroup_find_mount(buf, mnt, sizeof(mnt));
		free(buf);
		if (r < 0) {
			snprintf(t->reason, sizeof(t->reason),
				 "no cgroup v2 file system is mounted, so VM priorities are stored "
				 "but not enforced; mount cgroup2 (unified hierarchy) and restart "
				 "vesseld");
			return;
		}
		snprintf(t->root, sizeof(t->root), "%.4000s/vessel.slice", mnt);
	}
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", t->root);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (check_fs) {
		struct statfs sf;
		if (statfs(parent, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
			snprintf(t->reason, sizeof(t->reason),
				 "%.200s is not on a cgroup v2 file system, so VM priorities are stored "
				 "but not enforced; give --cgroup-root a directory inside the cgroup2 "
				 "mount", parent);
			return;
		}
	}
	if (mkdir(t->root, 0755) < 0 && errno != EEXIST) {
		snprintf(t->reason, sizeof(t->reason),
			 "cannot create the cgroup %.200s (%s), so VM priorities are stored but not "
			 "enforced; run vesseld as root with a writable cgroup v2 tree",
			 t->root, strerror(errno));
		return;
	}
	t->usable = true;
	t->cpu = cgroup_enable(t, parent, t->root, "cpu");
	t->io = cgroup_enable(t, parent, t->root, "io");
	if (!t->cpu)
		snprintf(t->reason, sizeof(t->reason),
			 "the cgroup v2 cpu controller is not available under %.200s (on a hybrid "
			 "host it is bound to a cgroup v1 hierarchy), so VM priorities are stored "
			 "but cpu.weight is not enforced; boot with the unified hierarchy "
			 "(systemd.unified_cgroup_hierarchy=1)", parent);
	else if (!t->io)
		log_info("cgroup: the io controller is not available under %s; VM priorities set "
			 "cpu.weight only", parent);
	if (t->reason[0])
		log_warn("cgroup: %s", t->reason);
	else
		log_info("cgroup: VM priorities enforced in %s (cpu%s)", t->root,
			 t->io ? ", io" : "");
}

int cgroup_vm_dir(const struct cgroup_tree *t, const char *vm, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/vm-%s", t->root, vm);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int cgroup_vm_file(const struct cgroup_tree *t, const char *vm, const char *file,
			  char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/vm-%s/%s", t->root, vm, file);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int cgroup_vm_procs_path(const struct cgroup_tree *t, const char *vm, char *out, size_t cap)
{
	return cgroup_vm_file(t, vm, "cgroup.procs", out, cap);
}

int cgroup_vm_set_priority(const struct cgroup_tree *t, const char *vm, unsigned priority)
{
	char path[PATH_MAX], val[16];
	int r = 0;
	if (!t->usable)
		return -EOPNOTSUPP;
	snprintf(val, sizeof(val), "%u", cgroup_priority_weight(priority));
	if (t->cpu) {
		if ((r = cgroup_vm_file(t, vm, "cpu.weight", path, sizeof(path))) < 0 ||
		    (r = cgroup_write(t, path, val)) < 0)
			return r;
	}
	/* io.weight is the default-weight line (cgroup-v2.rst "IO Interface
	 * Files": "default 100" or a bare number). */
	if (t->io && cgroup_vm_file(t, vm, "io.weight", path, sizeof(path)) == 0) {
		char line[32];
		snprintf(line, sizeof(line), "default %s", val);
		if ((r = cgroup_write(t, path, line)) < 0)
			log_warn("cgroup: cannot set %s: %s", path, strerror(-r));
		r = 0;
	}
	return r;
}

int cgroup_vm_prepare(const struct cgroup_tree *t, const char *vm, unsigned priority)
{
	char dir[PATH_MAX];
	int r;
	if (!t->usable)
		return -EOPNOTSUPP;
	if ((r = cgroup_vm_dir(t, vm, dir, sizeof(dir))) < 0)
		return r;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return cgroup_vm_set_priority(t, vm, priority);
}

int cgroup_vm_attach(const struct cgroup_tree *t, const char *vm, pid_t pid)
{
	char path[PATH_MAX], val[24];
	int r;
	if (!t->usable)
		return -EOPNOTSUPP;
	if ((r = cgroup_vm_procs_path(t, vm, path, sizeof(path))) < 0)
		return r;
	snprintf(val, sizeof(val), "%d", (int)pid);
	return cgroup_write(t, path, val);
}

int cgroup_vm_remove(const struct cgroup_tree *t, const char *vm)
{
	char dir[PATH_MAX];
	int r;
	if (!t->usable)
		return 0;
	if ((r = cgroup_vm_dir(t, vm, dir, sizeof(dir))) < 0)
		return r;
	if (t->plain_dir) {
		static const char *const files[] = {"cgroup.procs", "cpu.weight", "io.weight"};
		for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
			char f[PATH_MAX + 32];
			snprintf(f, sizeof(f), "%s/%s", dir, files[i]);
			unlink(f);
		}
	}
	/* A group with a process that has exited but is not yet released
	 * answers EBUSY for a moment; 50 x 20 ms covers a loaded host. */
	for (int i = 0; i < 50; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -EBUSY;
}

void cgroup_vm_remove_stale(const struct cgroup_tree *t, const char *vm)
{
	char dir[PATH_MAX];
	/* A populated group answers EBUSY and stays: it is not ours to judge. */
	if (t->usable && !t->plain_dir && cgroup_vm_dir(t, vm, dir, sizeof(dir)) == 0 &&
	    rmdir(dir) == 0)
		log_info("cgroup: removed the stale group %s", dir);
}

int cgroup_vm_cpu_weight(const struct cgroup_tree *t, const char *vm, unsigned *out)
{
	char path[PATH_MAX], buf[32];
	int r;
	if ((r = cgroup_vm_file(t, vm, "cpu.weight", path, sizeof(path))) < 0 ||
	    (r = cgroup_read(path, buf, sizeof(buf))) < 0)
		return r;
	uint64_t v;
	buf[strcspn(buf, "\n")] = '\0';
	if (util_parse_u64(buf, 1, 10000, &v) < 0)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}
