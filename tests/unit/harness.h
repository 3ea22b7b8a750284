/* harness: a minimal unit-test harness. A test file defines cases with
 * TEST(name) { ... } and checks with CHECK()/CHECK_EQ_INT()/CHECK_STR();
 * it ends with HARNESS_MAIN. Each case runs in order; a failed check prints
 * the file, line and expression and marks the case failed but goes on, so
 * one run shows every failure. Exit code: 0 all passed, 1 any failed,
 * 77 (meson's "skipped") when every case called SKIP(). */
#ifndef VESSEL_TESTS_HARNESS_H
#define VESSEL_TESTS_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct harness_case {
	const char *name;
	void (*fn)(void);
	struct harness_case *next;
};

extern struct harness_case *harness_cases_head;
extern int harness_case_failed;
extern int harness_case_skipped;

#define TEST(name)                                                          \
	static void test_##name(void);                                      \
	static struct harness_case harness_case_##name = {#name, test_##name, NULL}; \
	__attribute__((constructor)) static void harness_reg_##name(void)   \
	{                                                                   \
		struct harness_case **pp = &harness_cases_head;             \
		while (*pp)                                                 \
			pp = &(*pp)->next;                                  \
		*pp = &harness_case_##name;                                 \
	}                                                                   \
	static void test_##name(void)

#define CHECK(expr)                                                         \
	do {                                                                \
		if (!(expr)) {                                              \
			fprintf(stderr, "  %s:%d: check failed: %s\n",      \
				__FILE__, __LINE__, #expr);                 \
			harness_case_failed = 1;                            \
		}                                                           \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                  \
	do {                                                                \
		long long a_ = (long long)(a), b_ = (long long)(b);         \
		if (a_ != b_) {                                             \
			fprintf(stderr, "  %s:%d: %s == %s: %lld != %lld\n", \
				__FILE__, __LINE__, #a, #b, a_, b_);        \
			harness_case_failed = 1;                            \
		}                                                           \
	} while (0)

#define CHECK_STR(a, b)                                                     \
	do {                                                                \
		const char *a_ = (a), *b_ = (b);                            \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                    \
			fprintf(stderr, "  %s:%d: %s == %s: \"%s\" != \"%s\"\n", \
				__FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)", \
				b_ ? b_ : "(null)");                        \
			harness_case_failed = 1;                            \
		}                                                           \
	} while (0)

/* Stop the current case as skipped, with the reason printed. */
#define SKIP(reason)                                                        \
	do {                                                                \
		printf("SKIP %s\n", reason);                                \
		harness_case_skipped = 1;                                   \
		return;                                                     \
	} while (0)

#define HARNESS_MAIN                                                        \
	struct harness_case *harness_cases_head;                            \
	int harness_case_failed;                                            \
	int harness_case_skipped;                                           \
	int main(int argc, char **argv)                                     \
	{                                                                   \
		int failed = 0, passed = 0, skipped = 0;                    \
		for (struct harness_case *c = harness_cases_head; c; c = c->next) { \
			if (argc > 1 && strcmp(argv[1], c->name) != 0)      \
				continue;                                   \
			harness_case_failed = 0;                            \
			harness_case_skipped = 0;                           \
			c->fn();                                            \
			if (harness_case_failed) {                          \
				printf("FAIL %s\n", c->name);               \
				failed++;                                   \
			} else if (harness_case_skipped) {                  \
				skipped++;                                  \
			} else {                                            \
				printf("ok   %s\n", c->name);               \
				passed++;                                   \
			}                                                   \
		}                                                           \
		printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped); \
		if (failed)                                                 \
			return 1;                                           \
		return (passed == 0 && skipped > 0) ? 77 : 0;               \
	}

#endif
