/* sandbox: privilege drop and the seccomp allow-list (libseccomp). Each
 * allowed system call says which part of the monitor needs it after setup;
 * everything done only during setup (opening /dev/kvm, files, taps, sockets,
 * creating vCPUs and threads' stacks aside) is not on the list. */
#include "vmm/sandbox.h"

#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <linux/kvm.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

static int sandbox_drop_user(const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		log_error("--user '%s': no such user; create it or pass an existing one", user);
		return -ENOENT;
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		int ret = -errno;
		log_error("--user '%s': cannot switch user: %s; vessel-vmm must start as root to use --user",
			  user, strerror(errno));
		return ret;
	}
	/* setuid() must not be reversible. */
	if (setuid(0) == 0) {
		log_error("--user '%s': could regain root after dropping it; refusing to run", user);
		return -EPERM;
	}
	return 0;
}

/* A system call outside the list: say which one (so the list can be fixed)
 * and exit with the crash status. Only async-signal-safe calls here. */
static void sandbox_sigsys(int sig, siginfo_t *si, void *uctx)
{
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "vessel-vmm: seccomp blocked system call %d; exiting\n",
			 si->si_syscall);
	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0)
		_exit(2);
	_exit(2);
}

struct sandbox_rule {
	int nr;
	const char *why;
};

#define RULE(name, why) {SCMP_SYS(name), why}

/* Allowed without argument checks. */
static const struct sandbox_rule sandbox_rules[] = {
	RULE(read, "eventfds, control and console sockets, stdin, disk image reads"),
	RULE(write, "eventfds (irqfd, exit), console output, control replies, taps"),
	RULE(readv, "network backend receives frames into guest buffers"),
	RULE(writev, "network backend sends frames from guest buffers"),
	RULE(pread64, "raw and qcow2 disk reads"),
	RULE(pwrite64, "raw and qcow2 disk writes"),
	RULE(preadv, "disk reads into scattered guest buffers"),
	RULE(pwritev, "disk writes from scattered guest buffers"),
	RULE(fdatasync, "virtio-blk flush"),
	RULE(fsync, "virtio-blk flush on filesystems without fdatasync"),
	RULE(fallocate, "virtio-blk discard and write-zeroes"),
	RULE(lseek, "block drivers sizing images"),
	RULE(fstat, "block drivers and stdio"),
	RULE(newfstatat, "glibc's fstat"),
	RULE(close, "closing clients, notifiers after a device reset"),
	RULE(epoll_wait, "main loop and I/O thread"),
	RULE(epoll_pwait, "glibc's epoll_wait on some architectures"),
	RULE(epoll_ctl, "adding control clients and queue notifiers"),
	RULE(eventfd2, "queue notifiers are created when the driver starts a device"),
	RULE(poll, "network receive thread"),
	RULE(ppoll, "glibc's poll"),
	RULE(accept4, "control and console socket connections"),
	RULE(setsockopt, "send timeout on control clients"),
	RULE(sendto, "console socket output (send)"),
	RULE(recvfrom, "socket reads (recv)"),
	RULE(futex, "mutexes and condition variables"),
	RULE(mmap, "malloc"),
	RULE(munmap, "free"),
	RULE(mprotect, "malloc arenas"),
	RULE(madvise, "free returning memory"),
	RULE(brk, "malloc"),
	RULE(clock_gettime, "timestamps, PM timer, rate limits (when not in the vDSO)"),
	RULE(clock_nanosleep, "short waits"),
	RULE(nanosleep, "short waits"),
	RULE(getrandom, "virtio-rng"),
	RULE(rt_sigreturn, "returning from the vCPU kick handler"),
	RULE(rt_sigprocmask, "glibc around thread exit"),
	RULE(tgkill, "kicking vCPU threads (pthread_kill)"),
	RULE(getpid, "pthread_kill"),
	RULE(gettid, "glibc"),
	RULE(sched_yield, "glibc locks"),
	RULE(restart_syscall, "interrupted sleeps"),
	RULE(exit, "thread exit"),
	RULE(exit_group, "process exit"),
	RULE(timerfd_settime, "arming the poweroff grace timer"),
	RULE(unlink, "removing our sockets at exit"),
	RULE(unlinkat, "glibc's unlink"),
};

/* ioctl is allowed only for the requests the monitor makes at run time. */
static const unsigned long sandbox_ioctls[] = {
	KVM_RUN,               /* vCPU threads */
	KVM_IRQ_LINE,          /* UART and SCI interrupt lines */
	KVM_SET_GSI_ROUTING,   /* the guest programs MSI-X tables */
	KVM_IOEVENTFD,         /* queue notifiers at DRIVER_OK / reset */
	FIONBIO,               /* glibc / network backend */
	TCSETS,                /* restoring the terminal at exit */
	TCGETS,                /* isatty() */
};

int sandbox_enter(const char *user, bool seccomp)
{
	int ret = 0;
	scmp_filter_ctx f = NULL;

	if (user) {
		ret = sandbox_drop_user(user);
		if (ret < 0)
			return ret;
	}
	if (!seccomp)
		return 0;
	/* Libraries that open files lazily must do it now: glibc reads the
	 * time zone on the first strftime() (our log), jansson seeds its
	 * hash tables from /dev/urandom on the first object. */
	tzset();
	json_object_seed(0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		ret = -errno;
		log_error("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return ret;
	}
	/* SIGSYS rather than a silent kill, so the log names the call. The
	 * handler itself only uses write and exit_group, both allowed. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sandbox_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);
	f = seccomp_init(SCMP_ACT_TRAP);
	if (!f)
		return -ENOMEM;
	for (unsigned i = 0; i < ARRAY_SIZE(sandbox_rules); i++) {
		if (sandbox_rules[i].nr < 0)
			continue; /* not a system call on this architecture */
		ret = seccomp_rule_add(f, SCMP_ACT_ALLOW, sandbox_rules[i].nr, 0);
		if (ret < 0) {
			log_error("seccomp: cannot allow syscall %d (%s): %s", sandbox_rules[i].nr,
				  sandbox_rules[i].why, strerror(-ret));
			goto out;
		}
	}
	for (unsigned i = 0; i < ARRAY_SIZE(sandbox_ioctls); i++) {
		ret = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_EQ, sandbox_ioctls[i]));
		if (ret < 0)
			goto out;
	}
	ret = seccomp_load(f);
	if (ret < 0)
		log_error("seccomp: cannot load the filter: %s; run with --no-seccomp to debug", strerror(-ret));
out:
	seccomp_release(f);
	return ret;
}
