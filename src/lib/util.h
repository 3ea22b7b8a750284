/* util: small helpers every part of vessel uses (array size, cleanup
 * attributes, checked size parsing). Nothing here allocates. */
#ifndef VESSEL_LIB_UTIL_H
#define VESSEL_LIB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define IS_POWER_OF_2(x) ((x) != 0 && (((x) & ((x) - 1)) == 0))

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

/* Parse a size such as "512", "512M", "2G", "64K" (binary units, bytes when no
 * suffix). Returns 0 or -EINVAL (not a number, unknown suffix) or -ERANGE. */
int util_parse_size(const char *s, uint64_t *out);

/* Parse a decimal unsigned integer that must be within [min, max].
 * Returns 0, -EINVAL or -ERANGE. */
int util_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* true when s is a DNS label (RFC 1123): 1..63 chars of [a-z0-9-], not
 * starting or ending with '-'. Uppercase is refused so names stay canonical. */
bool util_is_dns_label(const char *s);

/* Monotonic clock in nanoseconds. */
uint64_t util_now_ns(void);

/* write()/read() the whole buffer, retrying on EINTR and short counts.
 * Return 0 or a negative errno (-EPIPE on EOF for read). */
int util_write_all(int fd, const void *buf, size_t len);
int util_read_all(int fd, void *buf, size_t len);

/* Binary search of an array of n pointers to structs kept sorted by a name
 * (a char array name_off bytes into each struct): the index of name, or -1
 * with *insert_at (when not NULL) where it would go. */
ptrdiff_t util_name_index(void *const *items, size_t n, size_t name_off, const char *name,
			  size_t *insert_at);

#endif
