/* main: vessel-vmm's entry point. Parses the command line, opens the disks
 * and taps, builds the VM and its devices, then serves the control socket
 * and the console on the main thread until the guest powers off, reboots or
 * is told to quit. The exit status says which (see args_usage). */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "block/block.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vmm/args.h"
#include "vmm/control.h"
#include "vmm/sandbox.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/rng.h"
#include "vmm/vm.h"

#define MAIN_MAX_CLIENTS 8
#define MAIN_CONSOLE_BACKLOG (64 * 1024)
/* How long a guest that handles the ACPI power button gets to shut down
 * after a control-socket poweroff before the monitor stops it anyway. */
#define MAIN_POWEROFF_GRACE_S 20
/* Stack size of every thread the monitor starts (I/O, vCPUs, device
 * receive threads). Their deepest paths (exit handling into a device model,
 * the block layer) use a few KiB: the large buffers live in the device
 * structs on the heap. glibc's default of 8 MiB costs no more than what is
 * touched, except where the kernel backs anonymous memory with transparent
 * huge pages (THP "always", the Debian default): a stack that grows into a
 * whole aligned 2 MiB block of its mapping may then get 2 MiB resident at
 * once. A stack smaller than 2 MiB can never contain such a block. */
#define MAIN_THREAD_STACK (256 * 1024)

struct main_client {
	int fd;
	struct control_framer *framer;
};

/* The console: stdout, or a Unix socket with one client at a time and a
 * backlog of recent output replayed to a client when it connects. */
struct main_console {
	pthread_mutex_t lock;
	enum args_console kind;
	int listen_fd;
	int client_fd;
	uint8_t backlog[MAIN_CONSOLE_BACKLOG];
	size_t backlog_head, backlog_len;
};

struct main_ctx {
	struct vm *vm;
	struct args args;
	int epfd;
	int control_fd;
	int poweroff_timer_fd;
	struct main_client clients[MAIN_MAX_CLIENTS];
	struct main_console console;
	bool stdin_tty;
	struct termios saved_tio;
	uint64_t start_ns;
};

/* epoll tags: what an fd is, packed in data.u64 */
enum {
	MAIN_EV_EXIT = 1,
	MAIN_EV_SIGNAL,
	MAIN_EV_CONTROL_LISTEN,
	MAIN_EV_CONSOLE_LISTEN,
	MAIN_EV_CONSOLE_CLIENT,
	MAIN_EV_STDIN,
	MAIN_EV_POWEROFF_TIMER,
	MAIN_EV_CLIENT_BASE = 100,
};

static void main_console_tx(void *opaque, const uint8_t *data, size_t len)
{
	struct main_console *con = opaque;
	if (con->kind == ARGS_CONSOLE_STDIO) {
		/* Blocking on a full stdout would stall the vCPU; it is the
		 * caller's job to read what it asked for. */
		if (util_write_all(STDOUT_FILENO, data, len) < 0)
			con->kind = ARGS_CONSOLE_NONE;
		return;
	}
	if (con->kind != ARGS_CONSOLE_SOCKET)
		return;
	pthread_mutex_lock(&con->lock);
	for (size_t i = 0; i < len; i++) {
		con->backlog[(con->backlog_head + con->backlog_len) % MAIN_CONSOLE_BACKLOG] = data[i];
		if (con->backlog_len < MAIN_CONSOLE_BACKLOG)
			con->backlog_len++;
		else
			con->backlog_head = (con->backlog_head + 1) % MAIN_CONSOLE_BACKLOG;
	}
	if (con->client_fd >= 0 && send(con->client_fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
	    errno != EAGAIN && errno != EWOULDBLOCK) {
		close(con->client_fd);
		con->client_fd = -1;
	}
	pthread_mutex_unlock(&con->lock);
}

static int main_listen_unix(const char *path, const char *what)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("%s socket path '%s' is longer than %zu bytes; use a shorter path", what, path,
			  sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		int ret = -errno;
		log_error("%s socket '%s': %s; check that the directory exists and is writable", what, path,
			  strerror(errno));
		close(fd);
		return ret;
	}
	return fd;
}

static void main_epoll_add(struct main_ctx *ctx, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		log_error("epoll_ctl: %s", strerror(errno));
}

/* ---- control commands ---- */

static int main_cmd_status(void *opaque, json_t *reply, char *err, size_t errlen)
{
	struct main_ctx *ctx = opaque;
	struct vm *vm = ctx->vm;
	json_object_set_new(reply, "state", json_string(vm_is_paused(vm) ? "paused" : "running"));
	json_object_set_new(reply, "cpus", json_integer(vm->nr_cpus));
	json_object_set_new(reply, "memory_mib", json_integer((json_int_t)(vm->mem_size / MiB)));
	json_object_set_new(reply, "uptime_ms", json_integer((json_int_t)((util_now_ns() - ctx->start_ns) / 1000000)));
	json_t *devs = json_array();
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		json_array_append_new(devs, json_string(vm->virtio[i].name));
	json_object_set_new(reply, "devices", devs);
	return 0;
}

static int main_cmd_pause(void *opaque, json_t *reply, char *err, size_t errlen)
{
	struct main_ctx *ctx = opaque;
	if (vm_is_paused(ctx->vm)) {
		snprintf(err, errlen, "the VM is already paused; send resume to continue it");
		return -EALREADY;
	}
	return vm_pause(ctx->vm);
}

static int main_cmd_resume(void *opaque, json_t *reply, char *err, size_t errlen)
{
	struct main_ctx *ctx = opaque;
	if (!vm_is_paused(ctx->vm)) {
		snprintf(err, errlen, "the VM is not paused");
		return -EALREADY;
	}
	return vm_resume(ctx->vm);
}

static int main_cmd_poweroff(void *opaque, json_t *reply, char *err, size_t errlen)
{
	struct main_ctx *ctx = opaque;
	bool listening = acpi_pm_power_button(&ctx->vm->pm);
	json_object_set_new(reply, "acpi_listening", json_boolean(listening));
	if (!listening) {
		/* The guest never enabled the power-button event (no ACPI
		 * button driver): nothing in it would act, so stop now. */
		json_object_set_new(reply, "action", json_string("stopped"));
		vm_request_exit(ctx->vm, VM_EXIT_POWEROFF);
		return 0;
	}
	/* The guest listens: give it time to shut down cleanly, then stop
	 * it anyway (the caller may also send quit at any time). */
	struct itimerspec its = {.it_value = {.tv_sec = MAIN_POWEROFF_GRACE_S}};
	if (ctx->poweroff_timer_fd >= 0)
		timerfd_settime(ctx->poweroff_timer_fd, 0, &its, NULL);
	json_object_set_new(reply, "action", json_string("acpi_power_button"));
	json_object_set_new(reply, "grace_s", json_integer(MAIN_POWEROFF_GRACE_S));
	return 0;
}

static int main_cmd_quit(void *opaque, json_t *reply, char *err, size_t errlen)
{
	struct main_ctx *ctx = opaque;
	vm_request_exit(ctx->vm, VM_EXIT_POWEROFF);
	return 0;
}

static int main_cmd_stats(void *opaque, json_t *reply, char *err, size_t errlen)
{
	struct main_ctx *ctx = opaque;
	struct vm *vm = ctx->vm;
	struct vm_stats *st = &vm->stats;
	json_t *exits = json_object();
	for (unsigned r = 0; r < VM_EXIT_REASONS; r++) {
		uint64_t n = __atomic_load_n(&st->exits[r], __ATOMIC_RELAXED);
		if (!n)
			continue;
		const char *name = vm_exit_reason_name(r);
		char buf[32];
		if (!name) {
			snprintf(buf, sizeof(buf), "reason_%u", r);
			name = buf;
		}
		json_object_set_new(exits, name, json_integer((json_int_t)n));
	}
	json_object_set_new(reply, "exits", exits);
	json_object_set_new(reply, "io", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		"uart", (json_int_t)st->pio_uart, "pci_config", (json_int_t)st->pio_pci,
		"rtc", (json_int_t)st->pio_rtc, "acpi_pm", (json_int_t)st->pio_pm,
		"i8042", (json_int_t)st->pio_i8042, "other_ports", (json_int_t)st->pio_other,
		"pci_mmio", (json_int_t)st->mmio_pci, "other_mmio", (json_int_t)st->mmio_other));
	json_object_set_new(reply, "console", json_pack("{s:I,s:I}", "tx_bytes", (json_int_t)vm->uart.tx_bytes,
							"rx_bytes", (json_int_t)vm->uart.rx_bytes));
	json_t *devs = json_array();
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		struct virtio_pci *vp = vm->virtio[i].vp;
		json_array_append_new(devs, json_pack("{s:s,s:I,s:I,s:i}", "name", vm->virtio[i].name,
			"notifies", (json_int_t)vp->stat_notifies, "interrupts", (json_int_t)vp->stat_interrupts,
			"status", (int)vp->dev->status));
	}
	json_object_set_new(reply, "devices", devs);
	return 0;
}

static const struct control_ops main_control_ops = {
	.status = main_cmd_status,
	.pause = main_cmd_pause,
	.resume = main_cmd_resume,
	.poweroff = main_cmd_poweroff,
	.quit = main_cmd_quit,
	.stats = main_cmd_stats,
};

struct main_line_ctx {
	struct main_ctx *ctx;
	struct main_client *client;
};

static void main_send_reply(struct main_client *cl, char *reply)
{
	if (!reply)
		return;
	if (util_write_all(cl->fd, reply, strlen(reply)) < 0)
		log_debug("control client went away before its reply");
	free(reply);
}

static void main_on_line(void *opaque, const char *line, size_t len)
{
	struct main_line_ctx *lc = opaque;
	main_send_reply(lc->client, control_handle_line(line, len, &main_control_ops, lc->ctx));
}

static void main_on_oversize(void *opaque)
{
	struct main_line_ctx *lc = opaque;
	char msg[128];
	snprintf(msg, sizeof(msg), "request is longer than %d bytes; send one command per line", CONTROL_LINE_MAX);
	main_send_reply(lc->client, control_reply_error(msg));
}

static void main_client_close(struct main_ctx *ctx, struct main_client *cl)
{
	epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	cl->fd = -1;
	free(cl->framer);
	cl->framer = NULL;
}

static void main_control_accept(struct main_ctx *ctx)
{
	int fd = accept4(ctx->control_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (unsigned i = 0; i < MAIN_MAX_CLIENTS; i++) {
		struct main_client *cl = &ctx->clients[i];
		if (cl->fd >= 0)
			continue;
		cl->framer = malloc(sizeof(*cl->framer));
		if (!cl->framer)
			break;
		control_framer_init(cl->framer);
		cl->fd = fd;
		/* A client that stops reading must not block the monitor. */
		struct timeval tv = {.tv_sec = 1};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		main_epoll_add(ctx, fd, MAIN_EV_CLIENT_BASE + i);
		return;
	}
	char *r = control_reply_error("too many control connections; close one and retry");
	if (r) {
		if (util_write_all(fd, r, strlen(r)) < 0)
			log_debug("refused control client went away");
		free(r);
	}
	close(fd);
}

static void main_control_read(struct main_ctx *ctx, struct main_client *cl)
{
	char buf[4096];
	ssize_t n = read(cl->fd, buf, sizeof(buf));
	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		main_client_close(ctx, cl);
		return;
	}
	struct main_line_ctx lc = {ctx, cl};
	control_framer_feed(cl->framer, buf, (size_t)n, main_on_line, main_on_oversize, &lc);
}

/* ---- console input ---- */

static void main_console_input(struct main_ctx *ctx, int fd, bool is_socket)
{
	uint8_t buf[256];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, fd, NULL);
		if (is_socket) {
			pthread_mutex_lock(&ctx->console.lock);
			close(ctx->console.client_fd);
			ctx->console.client_fd = -1;
			pthread_mutex_unlock(&ctx->console.lock);
		}
		return;
	}
	/* What does not fit in the UART's buffer is dropped, like typing
	 * into a full FIFO. */
	uart_receive(&ctx->vm->uart, buf, (size_t)n);
}

static void main_console_accept(struct main_ctx *ctx)
{
	int fd = accept4(ctx->console.listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct main_console *con = &ctx->console;
	pthread_mutex_lock(&con->lock);
	if (con->client_fd >= 0) {
		epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, con->client_fd, NULL);
		close(con->client_fd);
	}
	con->client_fd = fd;
	/* Replay what the guest printed before anyone was listening. */
	for (size_t i = 0; i < con->backlog_len;) {
		size_t start = (con->backlog_head + i) % MAIN_CONSOLE_BACKLOG;
		size_t chunk = MIN(con->backlog_len - i, MAIN_CONSOLE_BACKLOG - start);
		if (util_write_all(fd, con->backlog + start, chunk) < 0)
			break;
		i += chunk;
	}
	pthread_mutex_unlock(&con->lock);
	main_epoll_add(ctx, fd, MAIN_EV_CONSOLE_CLIENT);
}

static struct main_ctx *main_tty_ctx;

static void main_restore_tty(void)
{
	if (main_tty_ctx && main_tty_ctx->stdin_tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &main_tty_ctx->saved_tio);
}

static int main_setup_console(struct main_ctx *ctx)
{
	struct main_console *con = &ctx->console;
	pthread_mutex_init(&con->lock, NULL);
	con->kind = ctx->args.console;
	con->listen_fd = con->client_fd = -1;
	if (con->kind == ARGS_CONSOLE_SOCKET) {
		con->listen_fd = main_listen_unix(ctx->args.console_path, "console");
		if (con->listen_fd < 0)
			return con->listen_fd;
		main_epoll_add(ctx, con->listen_fd, MAIN_EV_CONSOLE_LISTEN);
	} else if (con->kind == ARGS_CONSOLE_STDIO) {
		if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &ctx->saved_tio) == 0) {
			/* Raw mode so keys reach the guest as typed; ^C is
			 * the guest's. Restored at exit. */
			struct termios raw = ctx->saved_tio;
			cfmakeraw(&raw);
			raw.c_oflag |= OPOST | ONLCR;
			ctx->stdin_tty = true;
			main_tty_ctx = ctx;
			atexit(main_restore_tty);
			tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		}
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = MAIN_EV_STDIN};
		/* stdin may be /dev/null or a file, which epoll refuses:
		 * then there is simply no console input. */
		if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0)
			log_debug("console input disabled: %s", strerror(errno));
	}
	ctx->vm->console_tx = main_console_tx;
	ctx->vm->console_opaque = con;
	return 0;
}

/* ---- memory footprint ---- */

/* Keep the monitor's own memory small (it runs once per microVM), before
 * any thread exists. One malloc arena instead of one per thread: the few
 * allocations after start-up (control replies, queue notifiers) do not
 * contend, and every extra arena is a 64 MiB reservation whose touched
 * pages stay resident. Smaller thread stacks: see MAIN_THREAD_STACK. */
static void main_limit_memory(void)
{
	pthread_attr_t attr;

	if (mallopt(M_ARENA_MAX, 1) != 1)
		log_debug("cannot limit malloc to one arena; each thread may get its own");
	if (pthread_attr_init(&attr) != 0)
		return;
	if (pthread_attr_setstacksize(&attr, MAIN_THREAD_STACK) != 0 || pthread_setattr_default_np(&attr) != 0)
		log_debug("cannot set the default thread stack size; threads keep glibc's default");
	pthread_attr_destroy(&attr);
}

/* ---- devices ---- */

static int main_add_devices(struct main_ctx *ctx)
{
	struct args *a = &ctx->args;
	static char names[ARGS_MAX_DISKS + ARGS_MAX_NETS + 1][16];
	unsigned nn = 0;
	int ret;

	for (unsigned i = 0; i < a->nr_disks; i++) {
		struct args_disk *d = &a->disks[i];
		struct block_dev *bd = NULL;
		unsigned flags = d->ro ? BLOCK_OPEN_READ_ONLY : 0;
		char what[32];
		snprintf(what, sizeof(what), "fd %d", d->fd);
		if (d->path)
			ret = block_open_path(d->path, d->format, flags, &bd);
		else
			ret = block_open_fd(d->fd, d->format, flags, what, &bd);
		if (ret < 0) {
			log_error("disk '%s': cannot open: %s; check the path, its permissions and the format",
				  d->path ? d->path : what, strerror(-ret));
			return ret;
		}
		struct virtio_dev *dev;
		ret = virtio_blk_new(bd, d->ro, &dev);
		if (ret < 0) {
			block_free(bd);
			return ret;
		}
		snprintf(names[nn], sizeof(names[nn]), "blk%u", i);
		ret = vm_add_virtio(ctx->vm, dev, names[nn++]);
		if (ret < 0)
			return ret;
	}
	for (unsigned i = 0; i < a->nr_nets; i++) {
		struct args_net *n = &a->nets[i];
		int fd = n->fd;
		if (n->tap) {
			ret = virtio_net_tap_open(n->tap, &fd);
			if (ret < 0) {
				log_error("net: cannot open tap '%s': %s; create it first or run with CAP_NET_ADMIN",
					  n->tap, strerror(-ret));
				return ret;
			}
		}
		uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + i)};
		if (n->has_mac)
			memcpy(mac, n->mac, 6);
		struct virtio_dev *dev;
		ret = virtio_net_new(fd, mac, VIRTIO_NET_BACKEND_TAP, &dev);
		if (ret < 0) {
			log_error("net %u: cannot create the device: %s", i, strerror(-ret));
			return ret;
		}
		snprintf(names[nn], sizeof(names[nn]), "net%u", i);
		ret = vm_add_virtio(ctx->vm, dev, names[nn++]);
		if (ret < 0)
			return ret;
	}
	if (a->rng) {
		struct virtio_dev *dev;
		ret = virtio_rng_new(&dev);
		if (ret < 0)
			return ret;
		snprintf(names[nn], sizeof(names[nn]), "rng0");
		ret = vm_add_virtio(ctx->vm, dev, names[nn++]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int main_loop(struct main_ctx *ctx)
{
	struct epoll_event evs[16];
	for (;;) {
		int n = epoll_wait(ctx->epfd, evs, ARRAY_SIZE(evs), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait: %s", strerror(errno));
			return VM_EXIT_ERROR;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == MAIN_EV_EXIT) {
				pthread_mutex_lock(&ctx->vm->state_lock);
				int code = ctx->vm->exit_code;
				pthread_mutex_unlock(&ctx->vm->state_lock);
				return code;
			} else if (tag == MAIN_EV_SIGNAL) {
				log_info("stopping on signal");
				vm_request_exit(ctx->vm, VM_EXIT_POWEROFF);
			} else if (tag == MAIN_EV_CONTROL_LISTEN) {
				main_control_accept(ctx);
			} else if (tag == MAIN_EV_CONSOLE_LISTEN) {
				main_console_accept(ctx);
			} else if (tag == MAIN_EV_CONSOLE_CLIENT) {
				main_console_input(ctx, ctx->console.client_fd, true);
			} else if (tag == MAIN_EV_POWEROFF_TIMER) {
				log_info("guest did not power off within %d s of the power button; stopping it",
					 MAIN_POWEROFF_GRACE_S);
				vm_request_exit(ctx->vm, VM_EXIT_POWEROFF);
			} else if (tag == MAIN_EV_STDIN) {
				main_console_input(ctx, STDIN_FILENO, false);
			} else if (tag >= MAIN_EV_CLIENT_BASE && tag < MAIN_EV_CLIENT_BASE + MAIN_MAX_CLIENTS) {
				struct main_client *cl = &ctx->clients[tag - MAIN_EV_CLIENT_BASE];
				if (cl->fd >= 0)
					main_control_read(ctx, cl);
			}
		}
	}
}

int main(int argc, char **argv)
{
	static struct main_ctx ctx;
	char err[512];
	int code = VM_EXIT_ERROR;

	log_init("vessel-vmm", LOG_LEVEL_INFO);
	if (args_parse(argc, argv, &ctx.args, err, sizeof(err)) < 0) {
		fprintf(stderr, "vessel-vmm: %s\n", err);
		return VM_EXIT_ERROR;
	}
	if (ctx.args.help) {
		fputs(args_usage, stdout);
		return 0;
	}
	if (ctx.args.version) {
		puts("vessel-vmm 0.1.0");
		return 0;
	}
	if (ctx.args.log_level) {
		enum log_level lvl;
		if (log_level_parse(ctx.args.log_level, &lvl) < 0) {
			fprintf(stderr, "vessel-vmm: --log-level '%s': use error, warn, info or debug\n",
				ctx.args.log_level);
			return VM_EXIT_ERROR;
		}
		log_set_level(lvl);
	}
	main_limit_memory();
	ctx.control_fd = -1;
	for (unsigned i = 0; i < MAIN_MAX_CLIENTS; i++)
		ctx.clients[i].fd = -1;
	ctx.start_ns = util_now_ns();

	/* Signals: SIGTERM/SIGINT stop the VM through the main loop; the
	 * vCPU kick signal is blocked everywhere but in vCPU threads. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigdelset(&set, SIGUSR1);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

	ctx.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ctx.epfd < 0 || sfd < 0) {
		log_error("cannot set up the event loop: %s", strerror(errno));
		return VM_EXIT_ERROR;
	}
	main_epoll_add(&ctx, sfd, MAIN_EV_SIGNAL);
	ctx.poweroff_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ctx.poweroff_timer_fd >= 0)
		main_epoll_add(&ctx, ctx.poweroff_timer_fd, MAIN_EV_POWEROFF_TIMER);

	if (vm_new(ctx.args.cpus, ctx.args.memory, &ctx.vm) < 0)
		return VM_EXIT_ERROR;
	main_epoll_add(&ctx, ctx.vm->exit_efd, MAIN_EV_EXIT);
	if (main_setup_console(&ctx) < 0)
		goto out;
	if (ctx.args.control) {
		ctx.control_fd = main_listen_unix(ctx.args.control, "control");
		if (ctx.control_fd < 0)
			goto out;
		main_epoll_add(&ctx, ctx.control_fd, MAIN_EV_CONTROL_LISTEN);
	}
	if (main_add_devices(&ctx) < 0)
		goto out;
	if (vm_load(ctx.vm, ctx.args.kernel, ctx.args.initrd, ctx.args.cmdline) < 0)
		goto out;
	if (vm_start(ctx.vm) < 0)
		goto out;
	/* Everything is open now: drop privileges and narrow the syscalls. */
	if (sandbox_enter(ctx.args.user, ctx.args.seccomp) < 0) {
		vm_request_exit(ctx.vm, VM_EXIT_ERROR);
		goto out;
	}
	/* Set-up is over: hand back the heap that parsing, device creation
	 * and building the seccomp filter used and freed (brk and madvise are
	 * on the allow-list). */
	malloc_trim(0);
	code = main_loop(&ctx);
	if (code < 0)
		code = VM_EXIT_ERROR;
	log_info("exiting with status %d (%s)", code,
		 code == VM_EXIT_POWEROFF ? "powered off" : code == VM_EXIT_REBOOT ? "reboot" : "error");
out:
	main_restore_tty();
	if (ctx.args.control)
		unlink(ctx.args.control);
	if (ctx.args.console == ARGS_CONSOLE_SOCKET)
		unlink(ctx.args.console_path);
	/* The vCPU and device threads may be mid-I/O; exiting the process
	 * stops them all at once, which is what a VM exit means. */
	fflush(stdout);
	_exit(code);
}
