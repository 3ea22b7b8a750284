/* Unit tests for src/lib/util.c: size and integer parsing, DNS labels. */
#include "lib/util.h"

#include <errno.h>
#include <stddef.h>

#include "harness.h"

TEST(parse_size)
{
	uint64_t v = 0;
	CHECK_EQ_INT(util_parse_size("512", &v), 0);
	CHECK_EQ_INT(v, 512);
	CHECK_EQ_INT(util_parse_size("2G", &v), 0);
	CHECK_EQ_INT(v, 2 * GiB);
	CHECK_EQ_INT(util_parse_size("64KiB", &v), 0);
	CHECK_EQ_INT(v, 64 * KiB);
	CHECK_EQ_INT(util_parse_size("1MB", &v), 0);
	CHECK_EQ_INT(v, MiB);
	CHECK_EQ_INT(util_parse_size("", &v), -EINVAL);
	CHECK_EQ_INT(util_parse_size("-1", &v), -EINVAL);
	CHECK_EQ_INT(util_parse_size("12Q", &v), -EINVAL);
	CHECK_EQ_INT(util_parse_size("12GX", &v), -EINVAL);
	CHECK_EQ_INT(util_parse_size("99999999999999999999", &v), -ERANGE);
	CHECK_EQ_INT(util_parse_size("17179869184T", &v), -ERANGE);
}

TEST(parse_u64)
{
	uint64_t v = 0;
	CHECK_EQ_INT(util_parse_u64("4", 1, 64, &v), 0);
	CHECK_EQ_INT(v, 4);
	CHECK_EQ_INT(util_parse_u64("0", 1, 64, &v), -ERANGE);
	CHECK_EQ_INT(util_parse_u64("65", 1, 64, &v), -ERANGE);
	CHECK_EQ_INT(util_parse_u64("4x", 1, 64, &v), -EINVAL);
	CHECK_EQ_INT(util_parse_u64("+4", 1, 64, &v), -EINVAL);
	CHECK_EQ_INT(util_parse_u64("", 1, 64, &v), -EINVAL);
}

TEST(dns_label)
{
	CHECK(util_is_dns_label("web-1"));
	CHECK(util_is_dns_label("a"));
	CHECK(!util_is_dns_label(""));
	CHECK(!util_is_dns_label("-a"));
	CHECK(!util_is_dns_label("a-"));
	CHECK(!util_is_dns_label("Web"));
	CHECK(!util_is_dns_label("a_b"));
	CHECK(!util_is_dns_label("a.b"));
	CHECK(!util_is_dns_label("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	CHECK(util_is_dns_label("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

struct named {
	int id;
	char name[8];
};

TEST(name_index)
{
	struct named a = {1, "alpha"}, c = {2, "charlie"}, e = {3, "echo"};
	struct named *sorted[] = {&a, &c, &e};
	size_t at = 99;
	size_t off = offsetof(struct named, name);
	CHECK_EQ_INT(util_name_index((void *const *)sorted, 3, off, "alpha", NULL), 0);
	CHECK_EQ_INT(util_name_index((void *const *)sorted, 3, off, "echo", NULL), 2);
	CHECK_EQ_INT(util_name_index((void *const *)sorted, 3, off, "delta", &at), -1);
	CHECK_EQ_INT(at, 2);
	CHECK_EQ_INT(util_name_index((void *const *)sorted, 3, off, "aa", &at), -1);
	CHECK_EQ_INT(at, 0);
	CHECK_EQ_INT(util_name_index((void *const *)sorted, 3, off, "zulu", &at), -1);
	CHECK_EQ_INT(at, 3);
	CHECK_EQ_INT(util_name_index((void *const *)sorted, 0, off, "alpha", &at), -1);
	CHECK_EQ_INT(at, 0);
}

HARNESS_MAIN
