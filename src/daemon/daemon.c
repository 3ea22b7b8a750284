/* daemon: vesseld's start-up and shutdown: data directory layout, the admin
 * token, the store, the audit log, the registries, re-attaching running VMs, the HTTP
 * listeners; plus the worker-thread helper and error helper used by every
 * resource. Shutdown stops the API but leaves VMs running (they are
 * re-attached at the next start). */
#include "daemon/daemon.h"
#include "daemon/networks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/audit.h"
#include "daemon/history.h"
#include "daemon/http.h"
#include "daemon/store.h"
#include "lib/util.h"

#define DAEMON_STOP_WAIT_S 15

int daemon_err_set(struct daemon_err *e, unsigned status, const char *code, const char *fmt, ...)
{
	e->status = status;
	e->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	switch (status) {
	case 400: return -EINVAL;
	case 404: return -ENOENT;
	case 409: return -EBUSY;
	default: return -EIO;
	}
}

void daemon_path(const struct daemon *d, char *out, size_t cap, const char *fmt, ...)
{
	int n = snprintf(out, cap, "%s/", d->cfg.data_dir);
	if (n < 0 || (size_t)n >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out + n, cap - (size_t)n, fmt, ap);
	va_end(ap);
}

bool daemon_token_equal(const struct daemon *d, const char *given)
{
	if (!given)
		return false;
	size_t n = strlen(d->token), m = strlen(given);
	/* Constant time in the token's length: compare every byte whatever
	 * the first mismatch, so timing does not reveal a prefix. */
	unsigned char diff = (unsigned char)(n != m);
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(d->token[i] ^ (i < m ? given[i] : 0));
	return diff == 0 && n > 0;
}

struct daemon_thread {
	struct daemon *d;
	void *(*fn)(void *);
	void *arg;
};

static void *daemon_thread_main(void *p)
{
	struct daemon_thread t = *(struct daemon_thread *)p;
	free(p);
	t.fn(t.arg);
	pthread_mutex_lock(&t.d->threads_lock);
	t.d->nr_threads--;
	pthread_cond_broadcast(&t.d->threads_cond);
	pthread_mutex_unlock(&t.d->threads_lock);
	return NULL;
}

int daemon_spawn(struct daemon *d, void *(*fn)(void *), void *arg)
{
	struct daemon_thread *t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->d = d;
	t->fn = fn;
	t->arg = arg;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&d->threads_lock);
	d->nr_threads++;
	pthread_mutex_unlock(&d->threads_lock);
	pthread_t tid;
	int r = pthread_create(&tid, &attr, daemon_thread_main, t);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		pthread_mutex_lock(&d->threads_lock);
		d->nr_threads--;
		pthread_mutex_unlock(&d->threads_lock);
		free(t);
		return -r;
	}
	return 0;
}

static int daemon_mkdir(const char *path, mode_t mode, char **err)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		int r = -errno;
		asprintf(err, "cannot create directory %s: %s; check --data-dir and permissions", path,
			 strerror(-r));
		return r;
	}
	return 0;
}

/* DATA_DIR/admin.token: 32 random bytes in hex, created once, mode 0600. */
static int daemon_token_init(struct daemon *d, char **err)
{
	char path[PATH_MAX];
	daemon_path(d, path, sizeof(path), "admin.token");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, d->token, sizeof(d->token) - 1);
		close(fd);
		if (n < 0)
			n = 0;
		d->token[n] = '\0';
		while (n && (d->token[n - 1] == '\n' || d->token[n - 1] == ' '))
			d->token[--n] = '\0';
		if (n < 16) {
			asprintf(err, "%s holds no usable token (too short); delete it to have vesseld "
				      "create a new one", path);
			return -EINVAL;
		}
		return 0;
	}
	uint8_t raw[32];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		asprintf(err, "cannot read random bytes for the admin token");
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(d->token + 2 * i, 3, "%02x", raw[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int r = -errno;
		asprintf(err, "cannot create %s: %s", path, strerror(-r));
		return r;
	}
	int r = util_write_all(fd, d->token, strlen(d->token));
	if (r == 0)
		r = util_write_all(fd, "\n", 1);
	close(fd);
	if (r < 0) {
		unlink(path);
		asprintf(err, "cannot write %s: %s", path, strerror(-r));
		return r;
	}
	log_info("created admin token in %s: %s", path, d->token);
	return 0;
}

static int daemon_tokens_load(struct daemon *d, char **err)
{
	struct token_record *v = NULL;
	size_t n = 0;
	int r = auth_tokens_new(&d->tokens);
	if (r == 0 && (r = store_token_list(d->store, &v, &n)) < 0)
		asprintf(err, "cannot read the API tokens from the database");
	for (size_t i = 0; r == 0 && i < n; i++)
		r = auth_tokens_put(d->tokens, &v[i]);
	free(v);
	return r;
}

int daemon_new(const struct daemon_config *cfg, struct engine *engine, struct daemon **out,
	       char **err)
{
	int r;
	char path[PATH_MAX], store_err[STORE_ERR_MAX];
	struct daemon *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	d->engine = engine;
	if (!d->cfg.qemu_img[0])
		snprintf(d->cfg.qemu_img, sizeof(d->cfg.qemu_img), "qemu-img");
	pthread_mutex_init(&d->vms_lock, NULL);
	pthread_cond_init(&d->vms_cond, NULL);
	pthread_mutex_init(&d->images_lock, NULL);
	pthread_mutex_init(&d->tasks_lock, NULL);
	pthread_mutex_init(&d->threads_lock, NULL);
	pthread_cond_init(&d->threads_cond, NULL);
	d->cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (gethostname(d->hostname, sizeof(d->hostname) - 1) < 0)
		snprintf(d->hostname, sizeof(d->hostname), "localhost");

	if ((r = daemon_mkdir(d->cfg.data_dir, 0700, err)) < 0)
		goto out;
	static const char *const subdirs[] = {"images", "vms", "run", "import"};
	for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
		daemon_path(d, path, sizeof(path), "%s", subdirs[i]);
		if ((r = daemon_mkdir(path, strcmp(subdirs[i], "import") == 0 ? 0755 : 0700, err)) < 0)
			goto out;
	}
	/* Allowed directories are compared after realpath(), so resolve them
	 * too; the default is DATA_DIR/import. */
	size_t nr = d->cfg.nr_allow_dirs;
	for (size_t i = 0; i < (nr ? nr : 1); i++) {
		char *dir;
		if (nr) {
			dir = realpath(d->cfg.allow_dirs[i], NULL);
			if (!dir) {
				r = -errno;
				asprintf(err, "--allow-dir %s: %s", d->cfg.allow_dirs[i], strerror(-r));
				goto out;
			}
		} else {
			daemon_path(d, path, sizeof(path), "import");
			dir = realpath(path, NULL);
			if (!dir) {
				r = -errno;
				goto out;
			}
		}
		d->allow_resolved[i] = dir;
		d->vctx.nr_allow_dirs++;
	}
	d->vctx.allow_dirs = d->allow_resolved;

	if ((r = daemon_token_init(d, err)) < 0)
		goto out;
	daemon_path(d, path, sizeof(path), "vessel.db");
	if ((r = store_open(path, &d->store, store_err)) < 0) {
		*err = strdup(store_err);
		goto out;
	}
	struct auth_limits lim = AUTH_LIMITS_DEFAULT;
	if (d->cfg.auth_limits.lockout_after)
		lim = d->cfg.auth_limits;
	if ((r = auth_limiter_new(&lim, NULL, NULL, &d->limiter)) < 0)
		goto out;
	if ((r = daemon_tokens_load(d, err)) < 0)
		goto out;
	daemon_path(d, path, sizeof(path), "audit.log");
	if ((r = audit_open(path, d->store, &d->audit, err)) < 0)
		goto out;
	/* Which vesseld last opened the database: helps whoever reads a
	 * data directory from a backup. */
	store_setting_put(d->store, "vesseld_version", "0.1.0");
	if ((r = admission_init(d, err)) < 0)
		goto out;
	if (d->cfg.cgroup_root[0])
		cgroup_tree_init(&d->cgroups, strcmp(d->cfg.cgroup_root, "auto") == 0 ?
						      NULL : d->cfg.cgroup_root, true);
	else
		snprintf(d->cgroups.reason, sizeof(d->cgroups.reason),
			 "vesseld runs without a cgroup root (--cgroup-root none), so VM priorities "
			 "are stored but not enforced");
	if (engine && engine->ops->host_info(engine, &d->host) < 0)
		log_warn("the engine could not report host capabilities");
	if (!d->host.kvm)
		log_warn("%s", d->host.warning[0] ? d->host.warning :
						    "no hardware virtualization: VMs run under TCG, "
						    "much slower");
	*out = d;
	return 0;
out:
	daemon_free(d);
	return r;
}

int daemon_start(struct daemon *d, char **err)
{
	int r;
	if ((r = task_registry_load(d)) < 0 || (r = image_registry_load(d)) < 0 ||
	    (r = project_registry_load(d)) < 0 || (r = vm_registry_load(d)) < 0) {
		asprintf(err, "cannot load state from the database: %s", strerror(-r));
		return r;
	}
	if ((r = networks_load(d)) < 0) {
		asprintf(err, "cannot load networks: %s", strerror(-r));
		return r;
	}
	vm_registry_resume(d);
	snapshots_scheduler_start(d);
	if ((r = history_new(d->cfg.history_interval_s, &d->history)) < 0 ||
	    (r = history_start(d->history, d)) < 0) {
		asprintf(err, "cannot start the history sampler: %s", strerror(-r));
		return r;
	}
	/* TCP first: clients (and the tests) take the Unix socket answering
	 * as "vesseld is up", so TCP must be listening by then. */
	if (d->cfg.listen[0] && (r = http_server_start(d, false, &d->tcp, err)) < 0)
		return r;
	if (d->cfg.socket_path[0] && (r = http_server_start(d, true, &d->unix_srv, err)) < 0)
		return r;
	log_info("vesseld listening on %s%s%s; data in %s", d->cfg.listen,
		 d->cfg.socket_path[0] ? " and " : "", d->cfg.socket_path, d->cfg.data_dir);
	return 0;
}

void daemon_stop(struct daemon *d)
{
	__atomic_store_n(&d->shutting_down, true, __ATOMIC_RELEASE); /* read without a lock */
	pthread_mutex_lock(&d->vms_lock);
	pthread_cond_broadcast(&d->vms_cond);
	pthread_mutex_unlock(&d->vms_lock);
	http_server_quiesce(d->tcp);
	http_server_quiesce(d->unix_srv);
	networks_stop(d);
	history_stop(d->history);
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += DAEMON_STOP_WAIT_S;
	pthread_mutex_lock(&d->threads_lock);
	while (d->nr_threads)
		if (pthread_cond_timedwait(&d->threads_cond, &d->threads_lock, &deadline) == ETIMEDOUT)
			break;
	unsigned left = d->nr_threads;
	pthread_mutex_unlock(&d->threads_lock);
	if (left) {
		/* A worker may still resume its suspended connection, so MHD
		 * must stay: the process exits and the kernel cleans up. */
		log_warn("%u operations still running at shutdown (image imports, disk copies or "
			 "VM stops); they are abandoned and show as failed at the next start", left);
		return;
	}
	http_server_stop(d->tcp);
	http_server_stop(d->unix_srv);
	d->tcp = d->unix_srv = NULL;
}

void daemon_free(struct daemon *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->threads_lock);
	unsigned left = d->nr_threads;
	pthread_mutex_unlock(&d->threads_lock);
	if (left)
		return; /* threads still use it; the process is about to exit */
	networks_free(d);
	history_free(d->history);
	vm_registry_free(d);
	project_registry_free(d);
	image_registry_free(d);
	task_registry_free(d);
	audit_free(d->audit);
	auth_limiter_free(d->limiter);
	auth_tokens_free(d->tokens);
	store_free(d->store);
	for (size_t i = 0; i < DAEMON_MAX_ALLOW_DIRS; i++)
		free((char *)d->allow_resolved[i]);
	pthread_mutex_destroy(&d->vms_lock);
	pthread_cond_destroy(&d->vms_cond);
	pthread_mutex_destroy(&d->images_lock);
	pthread_mutex_destroy(&d->tasks_lock);
	pthread_mutex_destroy(&d->threads_lock);
	pthread_cond_destroy(&d->threads_cond);
	free(d);
}
