/* cgroup: the vessel cgroup tree (v2, or the v1 cpu/blkio hierarchies on
 * hybrid hosts) and per-VM groups (see cgroup.h).
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
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

/* Kernel defaults and ranges (cgroup-v1/cgroups.rst, sched-design-CFS
 * "cpu.shares"; blkio-controller.rst "blkio.weight"). */
#define CGROUP_SHARES_MIN 2u
#define CGROUP_SHARES_MAX 262144u
#define CGROUP_BLKIO_MIN 10u
#define CGROUP_BLKIO_MAX 1000u

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

unsigned cgroup_weight_to_shares(unsigned weight)
{
	uint64_t s = (uint64_t)weight * 1024 / 100;
	return (unsigned)(s < CGROUP_SHARES_MIN ? CGROUP_SHARES_MIN :
			  s > CGROUP_SHARES_MAX ? CGROUP_SHARES_MAX : s);
}

unsigned cgroup_weight_to_blkio(unsigned weight)
{
	uint64_t b = (uint64_t)weight * 500 / 100;
	return (unsigned)(b < CGROUP_BLKIO_MIN ? CGROUP_BLKIO_MIN :
			  b > CGROUP_BLKIO_MAX ? CGROUP_BLKIO_MAX : b);
}

const char *cgroup_mode_name(enum cgroup_mode mode)
{
	return mode == CGROUP_MODE_V2 ? "v2" : mode == CGROUP_MODE_V1 ? "v1" : NULL;
}

/* Whether a comma-separated option list (ending at end, a space or a
 * newline) holds name. */
static bool cgroup_opts_have(const char *p, const char *end, const char *name)
{
	size_t n = strlen(name);
	while (p < end && *p != ' ' && *p != '\n') {
		size_t len = strcspn(p, ", \n");
		if (p + len > end)
			len = (size_t)(end - p);
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len;
		if (p < end && *p == ',')
			p++;
	}
	return false;
}

/* The mount point of the first mount of type fstype (and, when option is
 * set, with option among its super options: the field after the mount
 * source), proc(5) /proc/PID/mountinfo. */
static int cgroup_mountinfo_find(const char *mountinfo, const char *fstype, const char *option,
				 char *out, size_t cap)
{
	const char *line = mountinfo;
	size_t tl = strlen(fstype);
	while (line && *line) {
		const char *end = strchrnul(line, '\n');
		const char *sep = strstr(line, " - ");
		bool match = sep && sep < end && strncmp(sep + 3, fstype, tl) == 0 &&
			     sep[3 + tl] == ' ';
		if (match && option) {
			/* " - TYPE SOURCE SUPEROPTS" */
			const char *src = sep + 3 + tl + 1;
			const char *opts = strchr(src, ' ');
			match = opts && opts < end && cgroup_opts_have(opts + 1, end, option);
		}
		if (match) {
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

int cgroup_find_mount(const char *mountinfo, char *out, size_t cap)
{
	return cgroup_mountinfo_find(mountinfo, "cgroup2", NULL, out, cap);
}

int cgroup_find_v1_mount(const char *mountinfo, const char *controller, char *out, size_t cap)
{
	return cgroup_mountinfo_find(mountinfo, "cgroup", controller, out, cap);
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

static void cgroup_tree_init_v2(struct cgroup_tree *t, const char *root, bool check_fs)
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
	t->mode = CGROUP_MODE_V2;
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
}

/* Make the vessel group name under a v1 hierarchy mounted at mnt. */
static int cgroup_v1_group(const struct cgroup_tree *t, const char *mnt, const char *name,
			   char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", mnt, name);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	if (!t->plain_dir) {
		struct statfs sf;
		if (statfs(mnt, &sf) < 0)
			return -errno;
		if (sf.f_type != CGROUP_SUPER_MAGIC)
			return -ENOTSUP;
	}
	if (mkdir(out, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static bool cgroup_has_file(const char *dir, const char *file)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

int cgroup_tree_init_v1(struct cgroup_tree *t, const char *mountinfo, const char *name,
			bool check_fs)
{
	char mnt[PATH_MAX];
	int r;
	memset(t, 0, sizeof(*t));
	t->plain_dir = !check_fs;
	if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		snprintf(t->reason, sizeof(t->reason),
			 "'%.100s' cannot name a cgroup v1 group, so VM priorities are stored but "
			 "not enforced; end --cgroup-root with a plain directory name", name);
		return -EINVAL;
	}
	if ((r = cgroup_find_v1_mount(mountinfo, "cpu", mnt, sizeof(mnt))) < 0) {
		snprintf(t->reason, sizeof(t->reason),
			 "neither the cgroup v2 nor a cgroup v1 cpu controller is available, so VM "
			 "priorities are stored but not enforced; mount the cpu controller (v2 "
			 "unified hierarchy or a v1 cpu hierarchy) and restart vesseld");
		return r;
	}
	if ((r = cgroup_v1_group(t, mnt, name, t->root, sizeof(t->root))) < 0) {
		snprintf(t->reason, sizeof(t->reason),
			 "cannot create the group %.100s in the cgroup v1 cpu hierarchy at %.200s "
			 "(%s), so VM priorities are stored but not enforced; run vesseld as root "
			 "with a writable cpu hierarchy", name, mnt, strerror(-r));
		return r;
	}
	if (!cgroup_has_file(t->root, "cpu.shares")) {
		snprintf(t->reason, sizeof(t->reason),
			 "%.200s has no cpu.shares, so VM priorities are stored but not enforced; "
			 "the cgroup v1 cpu hierarchy looks incomplete", t->root);
		return -ENOENT;
	}
	t->mode = CGROUP_MODE_V1;
	t->usable = true;
	t->cpu = true;
	/* blkio is optional: without it only the CPU is weighted. */
	if (cgroup_find_v1_mount(mountinfo, "blkio", mnt, sizeof(mnt)) == 0) {
		r = cgroup_v1_group(t, mnt, name, t->io_root, sizeof(t->io_root));
		if (r < 0) {
			log_warn("cgroup: cannot create the group %s in the v1 blkio hierarchy at "
				 "%s (%s); VM priorities weight the CPU only", name, mnt,
				 strerror(-r));
			t->io_root[0] = '\0';
		} else if (cgroup_has_file(t->io_root, "blkio.weight")) {
			snprintf(t->io_file, sizeof(t->io_file), "blkio.weight");
		} else if (cgroup_has_file(t->io_root, "blkio.bfq.weight")) {
			/* Kernels since 5.0 have no CFQ; BFQ offers the same
			 * proportional weight (1..1000) under this name and
			 * applies it on devices that use the bfq scheduler. */
			snprintf(t->io_file, sizeof(t->io_file), "blkio.bfq.weight");
		}
		t->io = t->io_file[0] != '\0';
	}
	return 0;
}

void cgroup_v1_name(const char *root, char *out, size_t cap)
{
	const char *base = root && root[0] ? strrchr(root, '/') : NULL;
	base = base ? base + 1 : root && root[0] ? root : "";
	snprintf(out, cap, "%s", base[0] ? base : "vessel");
}

void cgroup_tree_init(struct cgroup_tree *t, const char *root, bool check_fs)
{
	cgroup_tree_init_v2(t, root, check_fs);
	if (check_fs && !(t->usable && t->cpu)) {
		/* Hybrid (or pure v1) host: fall back to the v1 hierarchies,
		 * with the last component of the v2 root as the group name so
		 * two vesselds with different roots stay apart. */
		char name[256];
		cgroup_v1_name(root, name, sizeof(name));
		struct cgroup_tree *v1 = malloc(sizeof(*v1));
		char *mi = malloc(65536);
		int r = v1 && mi ? cgroup_read("/proc/self/mountinfo", mi, 65536) : -ENOMEM;
		if (r == 0)
			r = cgroup_tree_init_v1(v1, mi, name, true);
		if (r == 0) {
			/* The v2 group made above without controllers is of no use. */
			if (t->usable)
				rmdir(t->root);
			*t = *v1;
		} else if (r != -ENOENT && v1) {
			snprintf(t->reason, sizeof(t->reason), "%s", v1->reason);
		}
		free(mi);
		free(v1);
	}
	if (t->reason[0])
		log_warn("cgroup: %s", t->reason);
	else if (t->mode == CGROUP_MODE_V1)
		log_info("cgroup: VM priorities enforced in the cgroup v1 hierarchies: %s "
			 "(cpu.shares)%s%s%s", t->root, t->io ? ", " : "", t->io ? t->io_root : "",
			 t->io ? " (blkio weight)" : "");
	else
		log_info("cgroup: VM priorities enforced in %s (cpu%s)", t->root,
			 t->io ? ", io" : "");
}

int cgroup_vm_dir(const struct cgroup_tree *t, const char *vm, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/vm-%s", t->root, vm);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The vessel group of hierarchy hier: v2 and the v1 cpu hierarchy are 0,
 * the v1 blkio one is 1. NULL when the tree has no such hierarchy. */
static const char *cgroup_hier_root(const struct cgroup_tree *t, unsigned hier)
{
	if (hier == 0)
		return t->root;
	if (hier == 1 && t->mode == CGROUP_MODE_V1 && t->io_root[0])
		return t->io_root;
	return NULL;
}

static int cgroup_hier_file(const struct cgroup_tree *t, unsigned hier, const char *vm,
			    const char *file, char *out, size_t cap)
{
	const char *root = cgroup_hier_root(t, hier);
	if (!root)
		return -ENOENT;
	int n = file ? snprintf(out, cap, "%s/vm-%s/%s", root, vm, file) :
		       snprintf(out, cap, "%s/vm-%s", root, vm);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int cgroup_vm_file(const struct cgroup_tree *t, const char *vm, const char *file,
			  char *out, size_t cap)
{
	return cgroup_hier_file(t, 0, vm, file, out, cap);
}

int cgroup_vm_procs_path(const struct cgroup_tree *t, unsigned hier, const char *vm, char *out,
			 size_t cap)
{
	return cgroup_hier_file(t, hier, vm, "cgroup.procs", out, cap);
}

int cgroup_vm_set_priority(const struct cgroup_tree *t, const char *vm, unsigned priority)
{
	char path[PATH_MAX], val[16];
	int r = 0;
	if (!t->usable)
		return -EOPNOTSUPP;
	unsigned weight = cgroup_priority_weight(priority);
	if (t->mode == CGROUP_MODE_V1) {
		snprintf(val, sizeof(val), "%u", cgroup_weight_to_shares(weight));
		if ((r = cgroup_vm_file(t, vm, "cpu.shares", path, sizeof(path))) < 0 ||
		    (r = cgroup_write(t, path, val)) < 0)
			return r;
		if (t->io && cgroup_hier_file(t, 1, vm, t->io_file, path, sizeof(path)) == 0) {
			snprintf(val, sizeof(val), "%u", cgroup_weight_to_blkio(weight));
			if ((r = cgroup_write(t, path, val)) < 0)
				log_warn("cgroup: cannot set %s: %s", path, strerror(-r));
		}
		return 0;
	}
	snprintf(val, sizeof(val), "%u", weight);
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
	for (unsigned h = 0; h < CGROUP_HIER_MAX; h++) {
		if (!cgroup_hier_root(t, h))
			continue;
		if ((r = cgroup_hier_file(t, h, vm, NULL, dir, sizeof(dir))) < 0)
			return r;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	return cgroup_vm_set_priority(t, vm, priority);
}

int cgroup_vm_attach(const struct cgroup_tree *t, const char *vm, pid_t pid)
{
	char path[PATH_MAX], val[24];
	int r;
	if (!t->usable)
		return -EOPNOTSUPP;
	snprintf(val, sizeof(val), "%d", (int)pid);
	/* v1 cgroup.procs also moves every thread of the process
	 * (cgroup-v1/cgroups.rst 1.4), like v2. */
	for (unsigned h = 0; h < CGROUP_HIER_MAX; h++) {
		if (!cgroup_hier_root(t, h))
			continue;
		if ((r = cgroup_vm_procs_path(t, h, vm, path, sizeof(path))) < 0 ||
		    (r = cgroup_write(t, path, val)) < 0)
			return r;
	}
	return 0;
}

static int cgroup_dir_remove(const struct cgroup_tree *t, const char *dir)
{
	if (t->plain_dir) {
		static const char *const files[] = {"cgroup.procs", "cpu.weight", "io.weight",
						    "cpu.shares", "blkio.weight",
						    "blkio.bfq.weight"};
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

int cgroup_vm_remove(const struct cgroup_tree *t, const char *vm)
{
	char dir[PATH_MAX];
	int ret = 0, r;
	if (!t->usable)
		return 0;
	for (unsigned h = 0; h < CGROUP_HIER_MAX; h++) {
		if (!cgroup_hier_root(t, h))
			continue;
		if ((r = cgroup_hier_file(t, h, vm, NULL, dir, sizeof(dir))) < 0 ||
		    (r = cgroup_dir_remove(t, dir)) < 0) {
			if (ret == 0)
				ret = r;
		}
	}
	return ret;
}

void cgroup_vm_remove_stale(const struct cgroup_tree *t, const char *vm)
{
	char dir[PATH_MAX];
	if (!t->usable || t->plain_dir)
		return;
	/* A populated group answers EBUSY and stays: it is not ours to judge. */
	for (unsigned h = 0; h < CGROUP_HIER_MAX; h++) {
		if (!cgroup_hier_root(t, h) || cgroup_hier_file(t, h, vm, NULL, dir, sizeof(dir)) < 0)
			continue;
		int r = rmdir(dir) == 0 ? 0 : -errno;
		if (r == -EBUSY) {
			/* No process listed but busy: the last one is still being
			 * released (a QEMU killed just before vesseld started);
			 * wait for it like cgroup_vm_remove() does. */
			char procs[PATH_MAX + 16], buf[64];
			snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
			if (cgroup_read(procs, buf, sizeof(buf)) == 0 && buf[0] == '\0')
				r = cgroup_dir_remove(t, dir);
		}
		if (r == 0)
			log_info("cgroup: removed the stale group %s", dir);
		else if (r != -ENOENT)
			log_info("cgroup: keeping the group %s: %s", dir, strerror(-r));
	}
}

int cgroup_vm_cpu_weight(const struct cgroup_tree *t, const char *vm, unsigned *out)
{
	char path[PATH_MAX], buf[32];
	int r;
	bool v1 = t->mode == CGROUP_MODE_V1;
	if ((r = cgroup_vm_file(t, vm, v1 ? "cpu.shares" : "cpu.weight", path, sizeof(path))) < 0 ||
	    (r = cgroup_read(path, buf, sizeof(buf))) < 0)
		return r;
	uint64_t v;
	buf[strcspn(buf, "\n")] = '\0';
	if (util_parse_u64(buf, v1 ? CGROUP_SHARES_MIN : 1, v1 ? CGROUP_SHARES_MAX : 10000, &v) < 0)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}
