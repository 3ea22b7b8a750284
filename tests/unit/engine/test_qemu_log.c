/* Unit tests for src/daemon/engine/qemu_log.c: which of QEMU's stderr lines
 * reach the error sentence a person reads. */
#include "daemon/engine/qemu_log.h"

#include <stdlib.h>

#include "harness.h"

static const char SERCON_WARNING[] =
	"qemu-system-x86_64: -fw_cfg name=etc/sercon-port,file=/run/x/sercon-port.bin: warning: "
	"externally provided fw_cfg item names should be prefixed with \"opt/\"\n";

TEST(errors_without_warnings)
{
	char log[1024], *s;

	snprintf(log, sizeof(log), "%sqemu-system-x86_64: -blockdev driver=file: Could not open "
		 "'/x.qcow2': No such file or directory\n", SERCON_WARNING);
	s = qemu_log_summary(log, false);
	CHECK_STR(s, "qemu-system-x86_64: -blockdev driver=file: Could not open '/x.qcow2': No "
		     "such file or directory");
	free(s);
}

TEST(several_errors_joined)
{
	char *s = qemu_log_summary("first error\r\n\r\nsecond error\nthird", false);

	CHECK_STR(s, "first error; second error; third");
	free(s);
	s = qemu_log_summary("first error\r\n\r\nsecond error\nthird\n", true);
	CHECK_STR(s, "third");
	free(s);
}

TEST(only_warnings)
{
	char *s;

	/* A failed start with only a warning: better than nothing. */
	s = qemu_log_summary(SERCON_WARNING, false);
	CHECK(s && strstr(s, "warning: externally provided") != NULL);
	CHECK(s && s[strlen(s) - 1] != '\n');
	free(s);
	/* A crash reason: a start-up warning would mislead, so nothing. */
	s = qemu_log_summary(SERCON_WARNING, true);
	CHECK_STR(s, "");
	free(s);
	s = qemu_log_summary("qemu-system-x86_64: terminating on signal 15 from pid 42 (bash)\n",
			     true);
	CHECK_STR(s, "");
	free(s);
}

TEST(empty)
{
	char *s = qemu_log_summary("", false);

	CHECK_STR(s, "");
	free(s);
	s = qemu_log_summary("\n\n\r\n", true);
	CHECK_STR(s, "");
	free(s);
}

TEST(worst_case_length)
{
	/* Many one-character lines: the output is longer than the input. */
	char log[201], *s;

	for (int i = 0; i < 200; i += 2) {
		log[i] = 'x';
		log[i + 1] = '\n';
	}
	log[200] = '\0';
	s = qemu_log_summary(log, false);
	CHECK(s != NULL);
	CHECK_EQ_INT(strlen(s), 100 + 99 * 2);
	free(s);
}

HARNESS_MAIN
