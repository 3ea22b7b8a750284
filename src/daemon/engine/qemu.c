/* qemu: the qemu engine driver. It spawns one QEMU per VM (command line from
 * qemu_args.c), drives it over QMP (qmp.c) the way Proxmox's qemu-server
 * does, and keeps the serial console in a ring (ring.c).
 *
 * Per VM there is one monitor thread. It alone reads the QMP socket, the
 * serial socket and a pidfd of the QEMU process: it hands command replies
 * to the API thread waiting for them (matched by "id"), turns QMP events
 * into engine_events callbacks, appends serial output to the ring, and on
 * process exit decides STOPPED or CRASHED. API threads write commands and
 * wait on the VM's condition variable. A pidfd (pidfd_open(2), Linux 5.3)
 * sees the exit of a QEMU that is not our child, which is the case after
 * attach() in a restarted vesseld; for our own child it also lets us reap
 * the exit status. */
#include "daemon/engine/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/engine/qemu_args.h"
#include "daemon/engine/qemu_block.h"
#include "daemon/engine/qemu_host.h"
#include "daemon/engine/qemu_log.h"
#include "daemon/engine/qemu_stats.h"
#include "daemon/engine/qmp.h"
#include "daemon/engine/ring.h"
#include "lib/log.h"
#include "lib/util.h"

extern char **environ;

/* How long QEMU may take to open its QMP socket and greet us. TCG start-up
 * with -S is well under a second; the margin is for loaded hosts. */
#define QEMU_START_TIMEOUT_MS 15000
#define QEMU_CMD_TIMEOUT_MS 10000
/* force_stop: time for "quit" before SIGKILL, then for the kill. */
#define QEMU_QUIT_TIMEOUT_MS 5000
#define QEMU_KILL_TIMEOUT_MS 5000

struct qemu_engine {
	char *binary;
	pthread_mutex_t lock;
	char version[64]; /* cached after the first successful query */
};

/* An API thread waiting for the reply to command `id`. */
struct qemu_pending {
	int64_t id;
	json_t *reply;
	bool done;
	struct qemu_pending *next;
};

struct engine_vm {
	struct qemu_engine *qe;
	struct engine_vm_spec spec;
	struct engine_events ev;

	pthread_mutex_t lock;   /* everything below */
	pthread_cond_t cond;    /* replies, console data, exit */
	pthread_mutex_t write_lock; /* serialises console_write */

	pid_t pid;
	int pidfd, qmp_fd, serial_fd, wake_fd;
	int console_fd;         /* console.log, -1 when it cannot be written */
	uint64_t console_size;  /* bytes in console.log */
	bool child;             /* our child: its exit status can be reaped */
	struct qmp_parser *parser;
	int64_t next_id;
	struct qemu_pending *pending;
	struct ring *console;

	pthread_t thread;
	bool thread_started, stopping;
	bool qmp_eof, serial_eof;

	enum engine_state state;
	bool events_on;         /* start/attach returned: callbacks may run */
	bool exited;            /* process gone (and reaped when ours) */
	bool exit_reported;     /* ...and the STOPPED/CRASHED callback returned */
	bool quit_requested;    /* force_stop is under way */
	bool panicked;          /* QMP GUEST_PANICKED seen */
	char shutdown_reason[128]; /* from QMP SHUTDOWN, empty if none */
	char exit_reason[512];
};

static void qemu_set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void qemu_set_err(char **err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	free(*err);
	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
}

static int qemu_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int qemu_pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static void qemu_run_path(const struct engine_vm_spec *spec, const char *file, char *buf,
			  size_t cap)
{
	snprintf(buf, cap, "%s/%s", spec->run_dir, file);
}

static void qemu_run_unlink(const struct engine_vm_spec *spec, const char *file)
{
	char path[4200];

	qemu_run_path(spec, file, path, sizeof(path));
	unlink(path);
}

/* Read qemu.log (at most its last 16 KiB). Returns a malloc'd string or
 * NULL. */
static char *qemu_log_read(const struct engine_vm_spec *spec)
{
	char path[4200];
	char *buf = NULL;
	struct stat st;
	off_t from;
	ssize_t n;
	int fd;

	qemu_run_path(spec, QEMU_RUN_LOG, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto out;
	from = st.st_size > 16384 ? st.st_size - 16384 : 0;
	buf = malloc(16385);
	if (!buf)
		goto out;
	n = pread(fd, buf, 16384, from);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
out:
	close(fd);
	return buf;
}

/* QEMU's error lines from qemu.log (see qemu_log_summary). Returns a
 * malloc'd string, maybe "", or NULL when out of memory. */
static char *qemu_log_errors(const struct engine_vm_spec *spec, bool last_only)
{
	char *log = qemu_log_read(spec), *out;

	out = qemu_log_summary(log ? log : "", last_only);
	free(log);
	return out;
}

static void qemu_exit_describe(struct engine_vm *vm, bool have_status, int status)
{
	char *last = qemu_log_errors(&vm->spec, true);
	const char *sep = last && last[0] ? ": " : "";

	if (!last)
		sep = "";
	if (!have_status)
		snprintf(vm->exit_reason, sizeof(vm->exit_reason),
			 "QEMU exited (%s)%s%s",
			 vm->child ? "its exit status was taken by someone else"
				   : "started by an earlier vesseld, so its exit status is unknown",
			 sep, last ? last : "");
	else if (WIFSIGNALED(status))
		snprintf(vm->exit_reason, sizeof(vm->exit_reason),
			 "QEMU exited with signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(vm->exit_reason, sizeof(vm->exit_reason),
			 "QEMU exited with status %d%s%s", WEXITSTATUS(status), sep,
			 last ? last : "");
	free(last);
}

/* Map a QMP SHUTDOWN "reason" (qapi/run-state.json ShutdownCause). */
static void qemu_shutdown_describe(const char *cause, char *out, size_t cap)
{
	if (strcmp(cause, "guest-shutdown") == 0)
		snprintf(out, cap, "guest powered off");
	else if (strcmp(cause, "host-qmp-quit") == 0)
		snprintf(out, cap, "stopped by request");
	else if (strcmp(cause, "guest-panic") == 0)
		snprintf(out, cap, "guest kernel panicked");
	else if (strcmp(cause, "host-signal") == 0)
		snprintf(out, cap, "QEMU was terminated by a signal from outside vessel");
	else
		snprintf(out, cap, "QEMU shut down (%s)", cause);
}

/* ---- monitor thread ---------------------------------------------------- */

static void qemu_vm_emit(struct engine_vm *vm, enum engine_state st, const char *reason)
{
	bool on;

	/* Before start() returns the daemon learns the outcome from its
	 * return value, not from events. */
	pthread_mutex_lock(&vm->lock);
	on = vm->events_on;
	pthread_mutex_unlock(&vm->lock);
	if (on && vm->ev.state_changed)
		vm->ev.state_changed(vm->ev.opaque, vm->spec.name, st, reason);
}

/* Handle one QMP message. Called by the monitor thread without the lock. */
static void qemu_vm_handle_msg(struct engine_vm *vm, json_t *msg)
{
	struct qmp_msg m;

	if (qmp_msg_decode(msg, &m) < 0) {
		log_ratelimited(LOG_LEVEL_WARN, "VM '%s': ignoring a QMP message of unknown shape",
				vm->spec.name);
		json_decref(msg);
		return;
	}
	if (m.type == QMP_MSG_RETURN || m.type == QMP_MSG_ERROR) {
		pthread_mutex_lock(&vm->lock);
		for (struct qemu_pending *p = vm->pending; p; p = p->next) {
			if (p->id == m.id && !p->done) {
				p->reply = msg;
				p->done = true;
				msg = NULL;
				break;
			}
		}
		pthread_cond_broadcast(&vm->cond);
		pthread_mutex_unlock(&vm->lock);
		json_decref(msg); /* a reply nobody waits for any more */
		return;
	}
	if (m.type != QMP_MSG_EVENT) {
		json_decref(msg);
		return;
	}
	log_debug("VM '%s': QMP event %s", vm->spec.name, m.event);
	if (strcmp(m.event, "STOP") == 0 || strcmp(m.event, "RESUME") == 0) {
		enum engine_state st = m.event[0] == 'S' ? ENGINE_STATE_PAUSED : ENGINE_STATE_RUNNING;
		bool changed;

		pthread_mutex_lock(&vm->lock);
		changed = !vm->exited && vm->state != st;
		if (changed)
			vm->state = st;
		pthread_mutex_unlock(&vm->lock);
		if (changed)
			qemu_vm_emit(vm, st, st == ENGINE_STATE_PAUSED ? "paused" : "running");
	} else if (strcmp(m.event, "SHUTDOWN") == 0) {
		const char *cause = json_string_value(json_object_get(m.value, "reason"));

		/* QEMU exits right after this (no -no-shutdown); the state
		 * changes when the process is gone, see qemu_vm_on_exit(). */
		pthread_mutex_lock(&vm->lock);
		qemu_shutdown_describe(cause ? cause : "unknown", vm->shutdown_reason,
				       sizeof(vm->shutdown_reason));
		if (cause && strcmp(cause, "guest-panic") == 0)
			vm->panicked = true;
		pthread_mutex_unlock(&vm->lock);
	} else if (strcmp(m.event, "RESET") == 0) {
		bool on;

		pthread_mutex_lock(&vm->lock);
		on = vm->events_on;
		pthread_mutex_unlock(&vm->lock);
		if (on && vm->ev.reset)
			vm->ev.reset(vm->ev.opaque, vm->spec.name);
	} else if (strcmp(m.event, "GUEST_PANICKED") == 0) {
		pthread_mutex_lock(&vm->lock);
		vm->panicked = true;
		pthread_mutex_unlock(&vm->lock);
		log_warn("VM '%s': the guest kernel panicked", vm->spec.name);
	} else if (strcmp(m.event, "POWERDOWN") == 0) {
		log_info("VM '%s': ACPI power button pressed", vm->spec.name);
	}
	json_decref(msg);
}

/* Read what the QMP socket has. Returns false when it is closed or broken. */
static bool qemu_vm_read_qmp(struct engine_vm *vm)
{
	for (;;) {
		char buf[8192];
		ssize_t n = read(vm->qmp_fd, buf, sizeof(buf));
		json_t *msg;
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		r = qmp_parser_feed(vm->parser, buf, (size_t)n);
		if (r < 0) {
			log_error("VM '%s': QEMU sent a QMP line longer than %d bytes; dropping "
				  "the monitor connection", vm->spec.name, QMP_MAX_LINE);
			return false;
		}
		while ((r = qmp_parser_next(vm->parser, &msg)) != 0) {
			if (r < 0) {
				log_ratelimited(LOG_LEVEL_WARN, "VM '%s': skipping a QMP line "
						"that is not a JSON object", vm->spec.name);
				continue;
			}
			qemu_vm_handle_msg(vm, msg);
		}
	}
}

static int qemu_console_log_open(struct engine_vm *vm)
{
	char path[4200];
	struct stat st;

	qemu_run_path(&vm->spec, QEMU_RUN_CONSOLE, path, sizeof(path));
	vm->console_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (vm->console_fd < 0)
		return -errno;
	vm->console_size = fstat(vm->console_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

/* Append guest output to console.log, rotating at ENGINE_CONSOLE_RING so a
 * chatty guest cannot fill the host's disk. Called by the monitor thread
 * only. Failures are logged (rate-limited: the guest causes them) and
 * never stop the console. */
static void qemu_console_log_append(struct engine_vm *vm, const void *buf, size_t len)
{
	if (vm->console_fd < 0)
		return;
	if (vm->console_size + len > ENGINE_CONSOLE_RING) {
		char cur[4200], old[4200];

		qemu_run_path(&vm->spec, QEMU_RUN_CONSOLE, cur, sizeof(cur));
		qemu_run_path(&vm->spec, QEMU_RUN_CONSOLE_OLD, old, sizeof(old));
		close(vm->console_fd);
		vm->console_fd = -1;
		if (rename(cur, old) < 0 || qemu_console_log_open(vm) < 0) {
			log_ratelimited(LOG_LEVEL_WARN, "VM '%s': cannot rotate %s: %s; console "
					"output is no longer saved on disk", vm->spec.name, cur,
					strerror(errno));
			return;
		}
	}
	if (util_write_all(vm->console_fd, buf, len) < 0) {
		log_ratelimited(LOG_LEVEL_WARN, "VM '%s': cannot write console.log: %s",
				vm->spec.name, strerror(errno));
		return;
	}
	vm->console_size += len;
}

/* attach(): refill the ring from the console logs of this QEMU run. */
static void qemu_console_log_preload(struct engine_vm *vm)
{
	static const char *const files[] = {QEMU_RUN_CONSOLE_OLD, QEMU_RUN_CONSOLE};

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char path[4200], buf[65536];
		ssize_t n;
		int fd;

		qemu_run_path(&vm->spec, files[i], path, sizeof(path));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			ring_append(vm->console, buf, (size_t)n);
		close(fd);
	}
}

static bool qemu_vm_read_serial(struct engine_vm *vm)
{
	for (;;) {
		char buf[16384];
		ssize_t n = read(vm->serial_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		pthread_mutex_lock(&vm->lock);
		ring_append(vm->console, buf, (size_t)n);
		pthread_cond_broadcast(&vm->cond);
		pthread_mutex_unlock(&vm->lock);
		qemu_console_log_append(vm, buf, (size_t)n);
	}
}

/* The QEMU process is gone: reap it, decide STOPPED or CRASHED, tell the
 * daemon. */
static void qemu_vm_on_exit(struct engine_vm *vm)
{
	enum engine_state st;
	char reason[512];
	int status = 0;
	bool have_status = false;

	/* Events QEMU sent just before exiting (SHUTDOWN) and the last
	 * console bytes may still sit unread in the sockets. */
	if (vm->qmp_fd >= 0 && !vm->qmp_eof)
		qemu_vm_read_qmp(vm);
	if (vm->serial_fd >= 0 && !vm->serial_eof)
		qemu_vm_read_serial(vm);
	if (vm->child) {
		pid_t r;

		while ((r = waitpid(vm->pid, &status, 0)) < 0 && errno == EINTR)
			;
		have_status = r == vm->pid;
	}

	pthread_mutex_lock(&vm->lock);
	qemu_exit_describe(vm, have_status, status);
	if (vm->quit_requested) {
		st = ENGINE_STATE_STOPPED;
		snprintf(reason, sizeof(reason), "stopped by request");
	} else if (vm->panicked) {
		st = ENGINE_STATE_CRASHED;
		snprintf(reason, sizeof(reason), "guest kernel panicked");
	} else if (strcmp(vm->shutdown_reason, "guest powered off") == 0 &&
		   (!have_status || (WIFEXITED(status) && WEXITSTATUS(status) == 0))) {
		st = ENGINE_STATE_STOPPED;
		snprintf(reason, sizeof(reason), "guest powered off");
	} else if (vm->shutdown_reason[0] && strcmp(vm->shutdown_reason, "guest powered off") != 0) {
		st = ENGINE_STATE_CRASHED;
		snprintf(reason, sizeof(reason), "%s", vm->shutdown_reason);
	} else {
		st = ENGINE_STATE_CRASHED;
		snprintf(reason, sizeof(reason), "%s", vm->exit_reason);
	}
	snprintf(vm->exit_reason, sizeof(vm->exit_reason), "%s", reason);
	vm->state = st;
	vm->exited = true;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);

	/* QEMU removes its chardev sockets when it exits, but not the VNC
	 * one; the graphical console should not find a display that is gone. */
	qemu_run_unlink(&vm->spec, QEMU_RUN_VNC);
	if (st == ENGINE_STATE_CRASHED)
		log_warn("VM '%s': %s", vm->spec.name, reason);
	else
		log_info("VM '%s': %s", vm->spec.name, reason);
	qemu_vm_emit(vm, st, reason);
	pthread_mutex_lock(&vm->lock);
	vm->exit_reported = true;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

static void *qemu_vm_thread(void *arg)
{
	struct engine_vm *vm = arg;

	for (;;) {
		struct pollfd pfd[4];
		int n = 0, i_qmp = -1, i_serial = -1, i_pid, i_wake;

		pfd[n] = (struct pollfd){.fd = vm->wake_fd, .events = POLLIN};
		i_wake = n++;
		pfd[n] = (struct pollfd){.fd = vm->pidfd, .events = POLLIN};
		i_pid = n++;
		if (!vm->qmp_eof) {
			pfd[n] = (struct pollfd){.fd = vm->qmp_fd, .events = POLLIN};
			i_qmp = n++;
		}
		if (!vm->serial_eof && vm->serial_fd >= 0) {
			pfd[n] = (struct pollfd){.fd = vm->serial_fd, .events = POLLIN};
			i_serial = n++;
		}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("VM '%s': monitor thread poll failed: %s", vm->spec.name,
				  strerror(errno));
			break;
		}
		if (pfd[i_wake].revents)
			break;
		if (i_qmp >= 0 && pfd[i_qmp].revents) {
			if (!qemu_vm_read_qmp(vm)) {
				pthread_mutex_lock(&vm->lock);
				vm->qmp_eof = true;
				pthread_cond_broadcast(&vm->cond);
				pthread_mutex_unlock(&vm->lock);
			}
		}
		if (i_serial >= 0 && pfd[i_serial].revents) {
			if (!qemu_vm_read_serial(vm)) {
				pthread_mutex_lock(&vm->lock);
				vm->serial_eof = true;
				pthread_cond_broadcast(&vm->cond);
				pthread_mutex_unlock(&vm->lock);
			}
		}
		if (pfd[i_pid].revents) {
			qemu_vm_on_exit(vm);
			break;
		}
	}
	return NULL;
}

/* ---- VM handle ----------------------------------------------------------- */

static int qemu_vm_new(struct qemu_engine *qe, const struct engine_vm_spec *spec,
		       const struct engine_events *ev, struct engine_vm **out)
{
	struct engine_vm *vm = calloc(1, sizeof(*vm));
	pthread_condattr_t ca;
	int r;

	if (!vm)
		return -ENOMEM;
	vm->qe = qe;
	vm->spec = *spec;
	if (ev)
		vm->ev = *ev;
	vm->pid = -1;
	vm->pidfd = vm->qmp_fd = vm->serial_fd = vm->console_fd = -1;
	vm->next_id = 1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->write_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->cond, &ca);
	pthread_condattr_destroy(&ca);
	vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->wake_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = qmp_parser_new(0, &vm->parser);
	if (r == 0)
		r = ring_new(ENGINE_CONSOLE_RING, &vm->console);
	if (r < 0)
		goto fail;
	*out = vm;
	return 0;
fail:
	if (vm->wake_fd >= 0)
		close(vm->wake_fd);
	qmp_parser_free(vm->parser);
	ring_free(vm->console);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->write_lock);
	free(vm);
	return r;
}

/* Stop the monitor thread (if any) without touching the process. */
static void qemu_vm_stop_thread(struct engine_vm *vm)
{
	uint64_t one = 1;

	if (!vm->thread_started)
		return;
	if (write(vm->wake_fd, &one, sizeof(one)) < 0)
		log_warn("VM '%s': cannot wake the monitor thread: %s", vm->spec.name,
			 strerror(errno));
	pthread_join(vm->thread, NULL);
	vm->thread_started = false;
}

static void qemu_vm_free(struct engine_vm *vm)
{
	if (!vm)
		return;
	qemu_vm_stop_thread(vm);
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	if (vm->qmp_fd >= 0)
		close(vm->qmp_fd);
	if (vm->serial_fd >= 0)
		close(vm->serial_fd);
	if (vm->console_fd >= 0)
		close(vm->console_fd);
	if (vm->wake_fd >= 0)
		close(vm->wake_fd);
	qmp_parser_free(vm->parser);
	ring_free(vm->console);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->write_lock);
	free(vm);
}

static void qemu_deadline(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Send a command line with fd attached as SCM_RIGHTS ancillary data, which
 * QEMU takes for the command it arrives with (QMP "getfd"). */
static int qemu_send_fd(int sock, const char *line, size_t len, int fd, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)line, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	ssize_t n;

	memset(u.buf, 0, sizeof(u.buf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return qmp_socket_write(sock, line + n, len - (size_t)n, timeout_ms);
}

static int qemu_vm_command(struct engine_vm *vm, const char *cmd, json_t *args, int timeout_ms,
			   json_t **ret, char **err)
{
	return qemu_vm_command_fd(vm, cmd, args, -1, timeout_ms, ret, err);
}

/* Run one QMP command and wait for its reply. On success *ret (may be NULL)
 * gets a new reference to the "return" value. */
int qemu_vm_command_fd(struct engine_vm *vm, const char *cmd, json_t *args, int fd,
		       int timeout_ms, json_t **ret, char **err)
{
	struct qemu_pending pend = {0};
	struct timespec ts;
	struct qmp_msg m;
	char *line = NULL;
	size_t len;
	int r;

	pthread_mutex_lock(&vm->lock);
	if (vm->exited || vm->qmp_eof) {
		r = -ESRCH;
		qemu_set_err(err, "VM '%s' is not running (%s)", vm->spec.name,
			     vm->exited ? vm->exit_reason : "its QMP connection is closed");
		goto out;
	}
	pend.id = vm->next_id++;
	r = qmp_command_format(cmd, args, pend.id, &line, &len);
	if (r < 0)
		goto out;
	pend.next = vm->pending;
	vm->pending = &pend;
	r = fd >= 0 ? qemu_send_fd(vm->qmp_fd, line, len, fd, timeout_ms) :
		      qmp_socket_write(vm->qmp_fd, line, len, timeout_ms);
	qemu_deadline(&ts, timeout_ms);
	while (r == 0 && !pend.done && !vm->exited && !vm->qmp_eof) {
		int w = pthread_cond_timedwait(&vm->cond, &vm->lock, &ts);

		if (w == ETIMEDOUT)
			r = -ETIMEDOUT;
	}
	for (struct qemu_pending **pp = &vm->pending; *pp; pp = &(*pp)->next) {
		if (*pp == &pend) {
			*pp = pend.next;
			break;
		}
	}
	if (r < 0) {
		qemu_set_err(err, "QEMU of VM '%s' did not answer '%s' (%s)", vm->spec.name, cmd,
			     strerror(-r));
		goto out;
	}
	if (!pend.done) {
		r = -ESRCH;
		qemu_set_err(err, "QEMU of VM '%s' went away during '%s'%s%s", vm->spec.name, cmd,
			     vm->exited ? ": " : "", vm->exited ? vm->exit_reason : "");
		goto out;
	}
	qmp_msg_decode(pend.reply, &m);
	if (m.type == QMP_MSG_ERROR) {
		r = -EIO;
		qemu_set_err(err, "QEMU of VM '%s' refused '%s': %s", vm->spec.name, cmd,
			     m.error_desc);
		goto out;
	}
	if (ret)
		*ret = json_incref(m.value);
	r = 0;
out:
	pthread_mutex_unlock(&vm->lock);
	json_decref(pend.reply);
	free(line);
	return r;
}

/* Wait until the monitor thread has seen the process exit and reported it
 * (so force_stop returns after the STOPPED callback, as engine.h says). */
static bool qemu_vm_wait_exit(struct engine_vm *vm, int timeout_ms)
{
	struct timespec ts;
	bool exited;

	qemu_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&vm->lock);
	while (!vm->exit_reported) {
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT)
			break;
	}
	exited = vm->exit_reported;
	pthread_mutex_unlock(&vm->lock);
	return exited;
}

/* Connect QMP (negotiated) and the serial socket, start the monitor
 * thread. attaching: refill the console ring from console.log first. */
static int qemu_vm_connect(struct engine_vm *vm, int timeout_ms, bool attaching, char **err)
{
	char path[4200];
	int r;

	r = qmp_handshake(vm->qmp_fd, vm->parser, timeout_ms, err);
	if (r < 0)
		return r;
	qemu_run_path(&vm->spec, QEMU_RUN_SERIAL, path, sizeof(path));
	r = qmp_socket_connect(path, &vm->serial_fd);
	if (r < 0) {
		qemu_set_err(err, "cannot connect to the serial console socket %s: %s", path,
			     strerror(-r));
		return r;
	}
	if (attaching)
		qemu_console_log_preload(vm);
	r = qemu_console_log_open(vm);
	if (r < 0)
		log_warn("VM '%s': cannot open console.log in %s (%s); the console history "
			 "will not survive a vesseld restart", vm->spec.name, vm->spec.run_dir,
			 strerror(-r));
	r = -pthread_create(&vm->thread, NULL, qemu_vm_thread, vm);
	if (r < 0) {
		qemu_set_err(err, "cannot start the monitor thread: %s", strerror(-r));
		return r;
	}
	vm->thread_started = true;
	return 0;
}

/* ---- ops ----------------------------------------------------------------- */

static int qemu_op_host_info(struct engine *e, struct engine_host_info *out)
{
	struct qemu_engine *qe = e->priv;
	int r = 0;

	memset(out, 0, sizeof(*out));
	qemu_host_detect_accel("/dev/kvm", "/sys/module", out);
	pthread_mutex_lock(&qe->lock);
	if (qe->version[0] == '\0')
		r = qemu_host_version_query(qe->binary, qe->version, sizeof(qe->version));
	snprintf(out->qemu_version, sizeof(out->qemu_version), "%s", qe->version);
	pthread_mutex_unlock(&qe->lock);
	if (r < 0) {
		size_t l = strlen(out->warning);

		snprintf(out->warning + l, sizeof(out->warning) - l, "%s%s cannot be run; install "
			 "the qemu-system-x86 package", l ? "; " : "", qe->binary);
		return -ENOENT;
	}
	return 0;
}

/* Files QEMU reads from run_dir: the SeaBIOS serial-console port, or the
 * VM's own copy of the UEFI variable store. */
static int qemu_run_prepare(const struct engine_vm_spec *spec, char **err)
{
	char path[4200];
	int fd, r = 0;

	qemu_run_unlink(spec, QEMU_RUN_QMP);
	qemu_run_unlink(spec, QEMU_RUN_SERIAL);
	qemu_run_unlink(spec, QEMU_RUN_VNC);
	qemu_run_unlink(spec, QEMU_RUN_PID);
	/* A new boot starts a new console history. */
	qemu_run_unlink(spec, QEMU_RUN_CONSOLE);
	qemu_run_unlink(spec, QEMU_RUN_CONSOLE_OLD);
	if (spec->firmware == ENGINE_FW_BIOS) {
		/* 0x3f8, COM1, little-endian as SeaBIOS's romfile_loadint reads it. */
		static const unsigned char port[2] = {0xf8, 0x03};

		qemu_run_path(spec, QEMU_RUN_SERCON, path, sizeof(path));
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || util_write_all(fd, port, sizeof(port)) < 0) {
			r = -errno;
			qemu_set_err(err, "cannot write %s: %s; check the run directory", path,
				     strerror(errno));
		}
		if (fd >= 0)
			close(fd);
	} else if (spec->firmware == ENGINE_FW_UEFI) {
		char buf[65536];
		int in;
		ssize_t n;

		qemu_run_path(spec, QEMU_RUN_OVMF_VARS, path, sizeof(path));
		if (access(path, F_OK) == 0)
			return 0;
		if (access(QEMU_OVMF_CODE, R_OK) < 0) {
			qemu_set_err(err, "UEFI firmware %s is missing; install the ovmf package",
				     QEMU_OVMF_CODE);
			return -ENOENT;
		}
		in = open(QEMU_OVMF_VARS, O_RDONLY | O_CLOEXEC);
		if (in < 0) {
			r = -errno;
			qemu_set_err(err, "cannot read %s: %s; install the ovmf package",
				     QEMU_OVMF_VARS, strerror(errno));
			return r;
		}
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			r = -errno;
		while (r == 0 && (n = read(in, buf, sizeof(buf))) > 0)
			r = util_write_all(fd, buf, (size_t)n);
		if (r < 0) {
			qemu_set_err(err, "cannot copy the UEFI variable store to %s: %s", path,
				     strerror(-r));
			unlink(path);
		}
		if (fd >= 0)
			close(fd);
		close(in);
	}
	return r;
}

static int qemu_spawn(struct qemu_engine *qe, const struct engine_vm_spec *spec,
		      struct qemu_args *args, pid_t *pid, char **err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char path[4200];
	int logfd, r, high[ENGINE_MAX_NICS];
	unsigned nr_nics = spec->nr_nics <= ENGINE_MAX_NICS ? spec->nr_nics : ENGINE_MAX_NICS;

	/* Tap fds go to the child as fds QEMU_NIC_FD_BASE + i (the numbers
	 * qemu_args put in "-netdev tap,fd=N"). Copies far above that range
	 * first, so no dup2 below can overwrite a source it still needs. */
	for (unsigned i = 0; i < nr_nics; i++)
		high[i] = -1;
	for (unsigned i = 0; i < nr_nics; i++) {
		high[i] = fcntl(spec->nics[i].fd, F_DUPFD_CLOEXEC, 1000);
		if (high[i] < 0) {
			r = -errno;
			qemu_set_err(err, "cannot pass the tap of NIC %u to QEMU: %s", i,
				     strerror(errno));
			goto out_fds;
		}
	}
	qemu_run_path(spec, QEMU_RUN_LOG, path, sizeof(path));
	logfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (logfd < 0) {
		r = -errno;
		qemu_set_err(err, "cannot create %s: %s; check the run directory", path,
			     strerror(errno));
		goto out_fds;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, logfd, STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, logfd, STDERR_FILENO);
	for (unsigned i = 0; i < nr_nics; i++)
		posix_spawn_file_actions_adddup2(&fa, high[i], QEMU_NIC_FD_BASE + (int)i);
	/* vesseld's own descriptors (listening sockets, the database) must
	 * not leak into the guest's monitor even where O_CLOEXEC was missed. */
	posix_spawn_file_actions_addclosefrom_np(&fa, QEMU_NIC_FD_BASE + (int)nr_nics);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	/* A new session: QEMU gets no signals meant for vesseld's terminal or
	 * process group, so it outlives a vesseld restart. */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					       POSIX_SPAWN_SETSIGDEF);
	r = -posix_spawnp(pid, qe->binary, &fa, &attr, args->argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(logfd);
	if (r == -ENOENT)
		qemu_set_err(err, "%s was not found; install the qemu-system-x86 package",
			     qe->binary);
	else if (r < 0)
		qemu_set_err(err, "cannot run %s: %s", qe->binary, strerror(-r));
out_fds:
	for (unsigned i = 0; i < nr_nics; i++)
		if (high[i] >= 0)
			close(high[i]);
	return r;
}

/* Kill and reap a QEMU that failed to start, remove what it left. */
static void qemu_start_cleanup(struct engine_vm *vm)
{
	qemu_vm_stop_thread(vm);
	if (vm->pid > 0) {
		int status;

		if (vm->pidfd >= 0)
			qemu_pidfd_kill(vm->pidfd, SIGKILL);
		else
			kill(vm->pid, SIGKILL);
		while (waitpid(vm->pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	qemu_run_unlink(&vm->spec, QEMU_RUN_QMP);
	qemu_run_unlink(&vm->spec, QEMU_RUN_SERIAL);
	qemu_run_unlink(&vm->spec, QEMU_RUN_VNC);
	qemu_run_unlink(&vm->spec, QEMU_RUN_PID);
}

/* Wait for QEMU to create and listen on its QMP socket. */
static int qemu_start_wait_qmp(struct engine_vm *vm, char **err)
{
	uint64_t deadline = util_now_ns() + QEMU_START_TIMEOUT_MS * 1000000ull;
	char path[4200];

	qemu_run_path(&vm->spec, QEMU_RUN_QMP, path, sizeof(path));
	for (;;) {
		struct pollfd pfd = {.fd = vm->pidfd, .events = POLLIN};
		int r;

		if (poll(&pfd, 1, 0) > 0) {
			qemu_set_err(err, "QEMU exited before it opened its monitor socket");
			return -ECHILD;
		}
		r = qmp_socket_connect(path, &vm->qmp_fd);
		if (r == 0)
			return 0;
		if (r != -ENOENT && r != -ECONNREFUSED) {
			qemu_set_err(err, "cannot connect to QEMU's monitor socket %s: %s", path,
				     strerror(-r));
			return r;
		}
		if (util_now_ns() > deadline) {
			qemu_set_err(err, "QEMU did not open its monitor socket within %d s",
				     QEMU_START_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		poll(&pfd, 1, 20);
	}
}

/* Read the NUL-separated /proc/PID/cmdline. */
static int qemu_proc_cmdline(pid_t pid, char *buf, size_t cap, size_t *len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*len = (size_t)n;
	return 0;
}


/* Find the live QEMU of spec from its pid file. Returns 0 with *pid and a
 * pidfd (*pidfd, caller closes), or -ESRCH with *err saying why there is
 * none. The pidfd pins the process: if it is still alive after its cmdline
 * was read, that cmdline was this process's and not a reused pid's. */
static int qemu_find_live(const struct engine_vm_spec *spec, pid_t *pid, int *pidfd, char **err)
{
	/* Our QEMU's argv holds up to ENGINE_MAX_DISKS paths of 4 KiB each. */
	const size_t cmdline_cap = 128 * 1024;
	char path[4200], pidbuf[32], *buf = NULL;
	struct pollfd pfd;
	uint64_t v;
	size_t len = 0;
	ssize_t n;
	int r, fd, st;

	*pidfd = -1;
	qemu_run_path(spec, QEMU_RUN_PID, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -ESRCH;
		qemu_set_err(err, "VM '%s' has no QEMU pid file %s, so it is not running",
			     spec->name, path);
		goto out;
	}
	n = read(fd, pidbuf, sizeof(pidbuf) - 1);
	close(fd);
	pidbuf[n > 0 ? n : 0] = '\0';
	pidbuf[strcspn(pidbuf, "\n")] = '\0';
	if (util_parse_u64(pidbuf, 1, INT32_MAX, &v) < 0) {
		r = -ESRCH;
		qemu_set_err(err, "VM '%s': pid file %s does not hold a pid", spec->name, path);
		goto out;
	}
	*pid = (pid_t)v;
	*pidfd = qemu_pidfd_open(*pid);
	if (*pidfd < 0) {
		r = -ESRCH;
		qemu_set_err(err, "VM '%s': its QEMU (pid %d) is gone", spec->name, (int)*pid);
		goto out;
	}
	buf = malloc(cmdline_cap);
	r = buf ? qemu_proc_cmdline(*pid, buf, cmdline_cap, &len) : -ENOMEM;
	pfd = (struct pollfd){.fd = *pidfd, .events = POLLIN};
	bool matches = r == 0 && qemu_args_cmdline_matches(spec, buf, len);
	if (!matches || poll(&pfd, 1, 0) != 0) {
		/* If it was this VM's QEMU, our own child, and just died, do not
		 * leave a zombie. A pid reused by another child of ours (another
		 * VM's QEMU, a qemu-img) is never reaped here: its own waiter
		 * needs the exit status for the crash reason. */
		if (matches)
			waitpid(*pid, &st, WNOHANG);
		r = -ESRCH;
		qemu_set_err(err, "VM '%s': pid %d from %s is not this VM's QEMU any more, so "
			     "the VM is not running", spec->name, (int)*pid, path);
		goto out;
	}
	r = 0;
out:
	if (r < 0 && *pidfd >= 0) {
		close(*pidfd);
		*pidfd = -1;
	}
	free(buf);
	return r;
}

/* Move the freshly spawned QEMU into the VM's cgroup. It is still in its
 * -S pause (no vCPU has run), and writing to cgroup.procs moves every
 * thread of the process (cgroup-v2.rst "Processes"; v1: cgroups.rst 1.4). */
static void qemu_cgroup_join(const struct engine_vm_spec *spec, const char *procs, pid_t pid)
{
	char val[24];
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	int r = fd < 0 ? -errno : 0;
	if (fd >= 0) {
		snprintf(val, sizeof(val), "%d", (int)pid);
		r = util_write_all(fd, val, strlen(val));
		close(fd);
	}
	if (r < 0)
		log_warn("VM '%s': cannot move QEMU pid %d into %s: %s; it runs without its "
			 "priority", spec->name, (int)pid, procs, strerror(-r));
}

static int qemu_op_start(struct engine *e, const struct engine_vm_spec *spec,
			 const struct engine_events *ev, struct engine_vm **out, char **err)
{
	struct qemu_engine *qe = e->priv;
	struct engine_host_info host;
	struct qemu_args *args = NULL;
	struct engine_vm *vm = NULL;
	char *why = NULL;
	int r;

	*err = NULL;
	qemu_op_host_info(e, &host);
	r = qemu_args_build(qe->binary, spec, &host, &args, err);
	if (r < 0)
		goto out;
	/* A QEMU of this VM that is still running (the daemon lost track of
	 * it) must not get a twin on the same disks and sockets. */
	{
		pid_t old_pid;
		int old_fd;
		char *ignored = NULL;

		if (qemu_find_live(spec, &old_pid, &old_fd, &ignored) == 0) {
			close(old_fd);
			r = -EBUSY;
			qemu_set_err(err, "VM '%s' is already running as QEMU pid %d; attach to "
				     "it or stop it first", spec->name, (int)old_pid);
			free(ignored);
			goto out;
		}
		free(ignored);
	}
	if (host.warning[0])
		log_warn("VM '%s': %s", spec->name, host.warning);
	r = qemu_run_prepare(spec, err);
	if (r < 0)
		goto out;
	r = qemu_vm_new(qe, spec, ev, &vm);
	if (r < 0) {
		qemu_set_err(err, "out of memory starting VM '%s'", spec->name);
		goto out;
	}
	r = qemu_spawn(qe, spec, args, &vm->pid, err);
	if (r < 0)
		goto out;
	vm->child = true;
	for (unsigned i = 0; i < ENGINE_MAX_CGROUPS; i++)
		if (spec->cgroup_procs[i][0])
			qemu_cgroup_join(spec, spec->cgroup_procs[i], vm->pid);
	vm->pidfd = qemu_pidfd_open(vm->pid);
	if (vm->pidfd < 0) {
		r = -errno;
		qemu_set_err(&why, "pidfd_open failed (%s); vessel needs Linux 5.3 or newer",
			     strerror(errno));
		goto fail;
	}
	r = qemu_start_wait_qmp(vm, &why);
	if (r == 0)
		r = qemu_vm_connect(vm, QEMU_START_TIMEOUT_MS, false, &why);
	if (r == 0 && spec->incoming[0])
		r = qemu_block_incoming(vm, spec->incoming, &why);
	if (r == 0)
		r = qemu_vm_command(vm, "cont", NULL, QEMU_CMD_TIMEOUT_MS, NULL, &why);
	if (r < 0)
		goto fail;
	pthread_mutex_lock(&vm->lock);
	vm->state = ENGINE_STATE_RUNNING;
	vm->events_on = true;
	if (vm->exited) {
		r = -ECHILD;
		qemu_set_err(&why, "%s", vm->exit_reason);
	}
	pthread_mutex_unlock(&vm->lock);
	if (r < 0)
		goto fail;
	log_info("VM '%s': QEMU pid %d running (%s)", spec->name, (int)vm->pid, host.accel);
	*out = vm;
	vm = NULL;
	r = 0;
	goto out;
fail:
	qemu_start_cleanup(vm);
	{
		/* QEMU's own error lines say best what was wrong; without any
		 * (it hung, or only warned) our own reason is more useful. */
		char *last = qemu_log_errors(spec, true);
		char *qemu_text = last && last[0] ? qemu_log_errors(spec, false) : NULL;

		qemu_set_err(err, "QEMU could not start VM '%s': %s", spec->name,
			     qemu_text && qemu_text[0] ? qemu_text : (why ? why : "unknown error"));
		free(qemu_text);
		free(last);
	}
	vm->pid = -1;
out:
	qemu_vm_free(vm);
	qemu_args_free(args);
	free(why);
	return r;
}

static int qemu_op_attach(struct engine *e, const struct engine_vm_spec *spec,
			  const struct engine_events *ev, struct engine_vm **out, char **err)
{
	struct qemu_engine *qe = e->priv;
	struct engine_vm *vm = NULL;
	char path[4200], *why = NULL;
	json_t *status = NULL;
	int r, st;

	*err = NULL;
	r = qemu_vm_new(qe, spec, ev, &vm);
	if (r < 0) {
		qemu_set_err(err, "out of memory attaching VM '%s'", spec->name);
		goto out;
	}
	r = qemu_find_live(spec, &vm->pid, &vm->pidfd, err);
	if (r < 0)
		goto out;
	/* Still our child when the same vesseld detached and attaches again. */
	vm->child = waitpid(vm->pid, &st, WNOHANG) == 0;

	qemu_run_path(spec, QEMU_RUN_QMP, path, sizeof(path));
	r = qmp_socket_connect(path, &vm->qmp_fd);
	if (r == 0)
		r = qemu_vm_connect(vm, QEMU_CMD_TIMEOUT_MS, true, &why);
	else
		qemu_set_err(&why, "cannot connect to %s: %s", path, strerror(-r));
	if (r == 0)
		r = qemu_vm_command(vm, "query-status", NULL, QEMU_CMD_TIMEOUT_MS, &status, &why);
	if (r < 0) {
		qemu_set_err(err, "VM '%s': QEMU pid %d is running but cannot be reattached: %s "
			     "(is another vesseld connected to it?)", spec->name, (int)vm->pid,
			     why ? why : strerror(-r));
		goto out;
	}
	pthread_mutex_lock(&vm->lock);
	if (!vm->exited)
		vm->state = json_is_true(json_object_get(status, "running")) ? ENGINE_STATE_RUNNING
									     : ENGINE_STATE_PAUSED;
	vm->events_on = true;
	if (vm->exited) {
		r = -ESRCH;
		qemu_set_err(err, "VM '%s': its QEMU exited while being reattached: %s",
			     spec->name, vm->exit_reason);
	}
	pthread_mutex_unlock(&vm->lock);
	if (r < 0)
		goto out;
	log_info("VM '%s': reattached to QEMU pid %d", spec->name, (int)vm->pid);
	*out = vm;
	vm = NULL;
	r = 0;
out:
	/* A failed attach leaves the process alone: it is not ours to kill. */
	qemu_vm_free(vm);
	json_decref(status);
	free(why);
	return r;
}

static int qemu_op_simple(struct engine_vm *vm, const char *cmd, char **err)
{
	if (err)
		*err = NULL;
	return qemu_vm_command(vm, cmd, NULL, QEMU_CMD_TIMEOUT_MS, NULL, err);
}

static int qemu_op_powerdown(struct engine_vm *vm, char **err)
{
	return qemu_op_simple(vm, "system_powerdown", err);
}

static int qemu_op_pause(struct engine_vm *vm, char **err)
{
	int r = qemu_op_simple(vm, "stop", err);

	/* The STOP event also says so, but callers expect query() to agree
	 * as soon as pause() returns. */
	if (r == 0) {
		pthread_mutex_lock(&vm->lock);
		if (!vm->exited)
			vm->state = ENGINE_STATE_PAUSED;
		pthread_mutex_unlock(&vm->lock);
	}
	return r;
}

static int qemu_op_resume(struct engine_vm *vm, char **err)
{
	int r = qemu_op_simple(vm, "cont", err);

	if (r == 0) {
		pthread_mutex_lock(&vm->lock);
		if (!vm->exited)
			vm->state = ENGINE_STATE_RUNNING;
		pthread_mutex_unlock(&vm->lock);
	}
	return r;
}

static int qemu_op_reset(struct engine_vm *vm, char **err)
{
	return qemu_op_simple(vm, "system_reset", err);
}

/* NIC hot-plug (QEMU docs/system/devices/net.rst, qapi/net.json): hand the
 * tap fd over with getfd, make the netdev from it, then plug virtio-net
 * into the spare root port of that index (qemu_args.c). Each step undone
 * when a later one fails. */
static int qemu_op_nic_add(struct engine_vm *vm, unsigned index, const struct engine_nic *nic,
			   char **err)
{
	char fdname[16], id[16], dev[16], port[16];
	json_t *args;
	int r;

	if (index >= ENGINE_MAX_NICS) {
		qemu_set_err(err, "NIC index %u is out of range", index);
		return -EINVAL;
	}
	snprintf(fdname, sizeof(fdname), "tap%u", index);
	snprintf(id, sizeof(id), "net%u", index);
	snprintf(dev, sizeof(dev), "nic%u", index);
	snprintf(port, sizeof(port), "nicport%u", index);
	args = json_pack("{s:s}", "fdname", fdname);
	r = qemu_vm_command_fd(vm, "getfd", args, nic->fd, QEMU_CMD_TIMEOUT_MS, NULL, err);
	json_decref(args);
	if (r < 0)
		return r;
	args = json_pack("{s:s,s:s,s:s,s:b}", "type", "tap", "id", id, "fd", fdname, "vhost", 0);
	r = qemu_vm_command(vm, "netdev_add", args, QEMU_CMD_TIMEOUT_MS, NULL, err);
	json_decref(args);
	if (r < 0) {
		args = json_pack("{s:s}", "fdname", fdname);
		qemu_vm_command(vm, "closefd", args, QEMU_CMD_TIMEOUT_MS, NULL, NULL);
		json_decref(args);
		return r;
	}
	args = json_pack("{s:s,s:s,s:s,s:s,s:s}", "driver", "virtio-net-pci", "id", dev, "netdev", id,
			 "mac", nic->mac, "bus", port);
	if (nic->mtu)
		json_object_set_new(args, "host_mtu", json_integer(nic->mtu));
	r = qemu_vm_command(vm, "device_add", args, QEMU_CMD_TIMEOUT_MS, NULL, err);
	json_decref(args);
	if (r < 0) {
		args = json_pack("{s:s}", "id", id);
		qemu_vm_command(vm, "netdev_del", args, QEMU_CMD_TIMEOUT_MS, NULL, NULL);
		json_decref(args);
	}
	return r;
}

/* Unplug: device_del only asks the guest (PCIe hot-plug: the guest's pciehp
 * waits 5 s after the attention button before it lets go), so poll until
 * the device is gone, then drop the netdev, which closes the tap. */
static int qemu_op_nic_del(struct engine_vm *vm, unsigned index, int timeout_ms, char **err)
{
	char id[16], dev[24], path[48];
	json_t *args;
	int r;

	snprintf(id, sizeof(id), "net%u", index);
	snprintf(dev, sizeof(dev), "nic%u", index);
	snprintf(path, sizeof(path), "/machine/peripheral/%s", dev);
	args = json_pack("{s:s}", "id", dev);
	r = qemu_vm_command(vm, "device_del", args, QEMU_CMD_TIMEOUT_MS, NULL, err);
	json_decref(args);
	if (r < 0)
		return r;
	for (int waited = 0;; waited += 200) {
		char *perr = NULL;
		args = json_pack("{s:s}", "path", path);
		r = qemu_vm_command(vm, "qom-list", args, QEMU_CMD_TIMEOUT_MS, NULL, &perr);
		json_decref(args);
		free(perr);
		if (r == -EIO)
			break; /* "Device ... not found": unplugged */
		if (r < 0 && r != -EIO) {
			qemu_set_err(err, "QEMU of VM '%s' went away while unplugging NIC %u",
				     vm->spec.name, index);
			return r;
		}
		if (waited >= timeout_ms) {
			qemu_set_err(err, "the guest of VM '%s' did not release NIC %u within %d s "
				     "(does it support PCIe hot-plug?); stop the VM to remove it",
				     vm->spec.name, index, timeout_ms / 1000);
			return -ETIMEDOUT;
		}
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	args = json_pack("{s:s}", "id", id);
	r = qemu_vm_command(vm, "netdev_del", args, QEMU_CMD_TIMEOUT_MS, NULL, err);
	json_decref(args);
	return r;
}

static int qemu_op_force_stop(struct engine_vm *vm, char **err)
{
	char *ignored = NULL;

	if (err)
		*err = NULL;
	pthread_mutex_lock(&vm->lock);
	if (vm->exited) {
		pthread_mutex_unlock(&vm->lock);
		/* Already gone; let its callback finish first, unless this is
		 * that callback calling us. */
		if (!(vm->thread_started && pthread_equal(pthread_self(), vm->thread)))
			qemu_vm_wait_exit(vm, QEMU_KILL_TIMEOUT_MS);
		return 0;
	}
	vm->quit_requested = true;
	pthread_mutex_unlock(&vm->lock);

	/* "quit" lets QEMU flush and close its images; QEMU may close the
	 * socket before the reply arrives, which is fine. */
	qemu_vm_command(vm, "quit", NULL, QEMU_QUIT_TIMEOUT_MS, NULL, &ignored);
	free(ignored);
	if (qemu_vm_wait_exit(vm, QEMU_QUIT_TIMEOUT_MS))
		return 0;
	log_warn("VM '%s': QEMU pid %d ignored 'quit'; killing it", vm->spec.name, (int)vm->pid);
	if (qemu_pidfd_kill(vm->pidfd, SIGKILL) < 0 && errno != ESRCH) {
		int r = -errno;

		qemu_set_err(err, "cannot kill QEMU pid %d of VM '%s': %s", (int)vm->pid,
			     vm->spec.name, strerror(errno));
		return r;
	}
	if (qemu_vm_wait_exit(vm, QEMU_KILL_TIMEOUT_MS))
		return 0;
	qemu_set_err(err, "QEMU pid %d of VM '%s' did not exit after SIGKILL; it may be stuck "
		     "in the kernel (check 'cat /proc/%d/stack')", (int)vm->pid, vm->spec.name,
		     (int)vm->pid);
	return -ETIMEDOUT;
}

static int qemu_op_query(struct engine_vm *vm, enum engine_state *st, char **err)
{
	json_t *ret = NULL;
	const char *s;
	int r;

	if (err)
		*err = NULL;
	pthread_mutex_lock(&vm->lock);
	if (vm->exited) {
		*st = vm->state;
		pthread_mutex_unlock(&vm->lock);
		return 0;
	}
	pthread_mutex_unlock(&vm->lock);
	r = qemu_vm_command(vm, "query-status", NULL, QEMU_CMD_TIMEOUT_MS, &ret, err);
	if (r == -ESRCH) {
		/* It exited meanwhile: the final state is known. */
		pthread_mutex_lock(&vm->lock);
		if (vm->exited) {
			*st = vm->state;
			r = 0;
			free(*err);
			*err = NULL;
		}
		pthread_mutex_unlock(&vm->lock);
		return r;
	}
	if (r < 0)
		return r;
	/* qapi/run-state.json RunState. */
	s = json_string_value(json_object_get(ret, "status"));
	if (json_is_true(json_object_get(ret, "running")))
		*st = ENGINE_STATE_RUNNING;
	else if (s && (strcmp(s, "guest-panicked") == 0 || strcmp(s, "internal-error") == 0))
		*st = ENGINE_STATE_CRASHED;
	else if (s && strcmp(s, "shutdown") == 0)
		*st = ENGINE_STATE_STOPPED;
	else
		*st = ENGINE_STATE_PAUSED;
	json_decref(ret);
	return 0;
}

static pid_t qemu_op_pid(struct engine_vm *vm)
{
	return vm->pid;
}

static int qemu_op_console_read(struct engine_vm *vm, uint64_t since, void *buf, size_t cap,
				size_t *len, uint64_t *start, uint64_t *next)
{
	pthread_mutex_lock(&vm->lock);
	ring_read(vm->console, since, buf, cap, len, start, next);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

static int qemu_op_console_write(struct engine_vm *vm, const void *buf, size_t len)
{
	bool gone;
	int r;

	pthread_mutex_lock(&vm->write_lock);
	pthread_mutex_lock(&vm->lock);
	gone = vm->exited || vm->serial_eof || vm->serial_fd < 0;
	pthread_mutex_unlock(&vm->lock);
	/* The fd stays open until release(), so it is safe to use unlocked;
	 * a guest that does not drain its UART makes this time out rather
	 * than block the API thread. */
	r = gone ? -ESRCH : qmp_socket_write(vm->serial_fd, buf, len, 2000);
	pthread_mutex_unlock(&vm->write_lock);
	return r;
}

static int qemu_op_console_wait(struct engine_vm *vm, uint64_t since, int timeout_ms)
{
	struct timespec ts;
	int r = 0;

	qemu_deadline(&ts, timeout_ms < 0 ? 0 : timeout_ms);
	pthread_mutex_lock(&vm->lock);
	while (ring_end(vm->console) <= since && !vm->exited && !vm->serial_eof) {
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT)
			break;
	}
	if (ring_end(vm->console) <= since && (vm->exited || vm->serial_eof))
		r = -ESRCH;
	pthread_mutex_unlock(&vm->lock);
	return r;
}

static void qemu_op_release(struct engine_vm *vm)
{
	bool exited;

	if (!vm)
		return;
	qemu_vm_stop_thread(vm);
	pthread_mutex_lock(&vm->lock);
	exited = vm->exited;
	pthread_mutex_unlock(&vm->lock);
	if (exited) {
		qemu_run_unlink(&vm->spec, QEMU_RUN_QMP);
		qemu_run_unlink(&vm->spec, QEMU_RUN_SERIAL);
		qemu_run_unlink(&vm->spec, QEMU_RUN_VNC);
		qemu_run_unlink(&vm->spec, QEMU_RUN_PID);
	} else {
		log_info("VM '%s': detached from QEMU pid %d, which keeps running", vm->spec.name,
			 (int)vm->pid);
	}
	qemu_vm_free(vm);
}

static void qemu_op_destroy(struct engine *e)
{
	struct qemu_engine *qe = e->priv;

	if (!qe)
		return;
	pthread_mutex_destroy(&qe->lock);
	free(qe->binary);
	free(qe);
	e->priv = NULL;
}

static int qemu_op_stats(struct engine_vm *vm, struct engine_vm_stats *out, char **err)
{
	static const struct {
		const char *cmd;
		int (*parse)(const json_t *, struct engine_vm_stats *);
	} q[] = {
		{"query-cpus-fast", qemu_stats_parse_cpus},
		{"query-balloon", qemu_stats_parse_balloon},
		{"query-blockstats", qemu_stats_parse_blockstats},
	};
	int r = 0;
	memset(out, 0, sizeof(*out));
	if (err)
		*err = NULL;
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		json_t *ret = NULL;
		char *why = NULL;
		/* A short timeout: a scrape must not hang on a busy monitor. */
		int c = qemu_vm_command(vm, q[i].cmd, NULL, 2000, &ret, &why);
		if (c == 0 && q[i].parse(ret, out) < 0)
			c = -EBADMSG;
		if (c < 0 && r == 0) {
			r = c;
			if (err) {
				*err = why;
				why = NULL;
			}
		}
		free(why);
		json_decref(ret);
		if (c == -ESRCH)
			break;
	}
	return r;
}

static const struct engine_ops qemu_ops = {
	.host_info = qemu_op_host_info,
	.start = qemu_op_start,
	.attach = qemu_op_attach,
	.powerdown = qemu_op_powerdown,
	.force_stop = qemu_op_force_stop,
	.pause = qemu_op_pause,
	.resume = qemu_op_resume,
	.reset = qemu_op_reset,
	.nic_add = qemu_op_nic_add,
	.nic_del = qemu_op_nic_del,
	.query = qemu_op_query,
	.pid = qemu_op_pid,
	.stats = qemu_op_stats,
	.console_read = qemu_op_console_read,
	.console_write = qemu_op_console_write,
	.console_wait = qemu_op_console_wait,
	.release = qemu_op_release,
	.disk_snapshot = qemu_block_disk_snapshot,
	.state_save = qemu_block_state_save,
	.disk_merge = qemu_block_disk_merge,
	.disk_backup = qemu_block_disk_backup,
	.destroy = qemu_op_destroy,
};

int engine_qemu_new(const char *qemu_binary, struct engine **out)
{
	struct engine *e = calloc(1, sizeof(*e));
	struct qemu_engine *qe = calloc(1, sizeof(*qe));

	if (!e || !qe)
		goto fail;
	qe->binary = strdup(qemu_binary ? qemu_binary : "qemu-system-x86_64");
	if (!qe->binary)
		goto fail;
	pthread_mutex_init(&qe->lock, NULL);
	e->name = "qemu";
	e->ops = &qemu_ops;
	e->priv = qe;
	*out = e;
	return 0;
fail:
	free(qe);
	free(e);
	return -ENOMEM;
}
