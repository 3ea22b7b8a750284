/* Unit test for src/vmm/sandbox.c: in a child process, install the seccomp
 * allow-list exactly as vessel-vmm does after setup, then run the work the
 * monitor's main thread does afterwards (control requests through jansson,
 * logging, UART/PM/RTC register accesses, eventfd and epoll use, large
 * allocations). A call missing from the list ends the child with status 2
 * and names the call; the test fails then. A forbidden call (openat) must
 * still be caught, or the filter proves nothing. */
#include "vmm/control.h"
#include "vmm/hw/legacy.h"
#include "vmm/hw/uart.h"
#include "vmm/sandbox.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "lib/log.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

static int ok_cmd(void *o, json_t *reply, char *err, size_t errlen)
{
	json_object_set_new(reply, "state", json_string("running"));
	return 0;
}

static const struct control_ops ops = {ok_cmd, ok_cmd, ok_cmd, ok_cmd, ok_cmd, ok_cmd};

static void tx(void *o, const uint8_t *d, size_t n)
{
}

static int run_child(bool forbidden)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (sandbox_enter(NULL, true) < 0)
			_exit(3);
		static const char *const lines[] = {
			"{\"cmd\":\"hello\"}", "{\"cmd\":\"status\"}", "{\"cmd\":\"stats\"}", "{\"cmd\":\"pause\"}",
			"{\"cmd\":\"poweroff\"}", "not json", "{\"cmd\":\"nope\"}",
		};
		for (unsigned i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
			char *r = control_handle_line(lines[i], strlen(lines[i]), &ops, NULL);
			if (!r)
				_exit(4);
			free(r);
		}
		log_warn("a warning from inside the sandbox");
		struct uart u;
		uart_init(&u, tx, NULL, NULL);
		uart_write(&u, 0, 'x');
		struct rtc rtc;
		rtc_init(&rtc);
		uint8_t v = 0;
		rtc_io(&rtc, 0x71, &v, false);
		struct acpi_pm pm;
		acpi_pm_init(&pm, NULL, NULL);
		uint32_t t;
		acpi_pm_io(&pm, 8, &t, 4, false);
		int efd = eventfd(0, EFD_NONBLOCK);
		uint64_t one = 1;
		if (efd >= 0 && write(efd, &one, 8) != 8)
			_exit(5);
		void *big = malloc(8 << 20);
		free(big);
		if (forbidden)
			open("/etc/hostname", O_RDONLY);
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(allow_list_covers_main_thread_work)
{
#ifdef SANITIZED
	SKIP("the sanitizer runtime makes system calls the monitor does not");
#endif
	CHECK_EQ_INT(run_child(false), 0);
}

TEST(forbidden_call_is_caught)
{
#ifdef SANITIZED
	SKIP("the sanitizer runtime makes system calls the monitor does not");
#endif
	/* open() is for setup only: the SIGSYS handler exits with 2 */
	CHECK_EQ_INT(run_child(true), 2);
}

HARNESS_MAIN
