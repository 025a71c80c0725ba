/* Small helpers shared by every module: sizes, alignment, checked arithmetic. */
#ifndef CROSVM_CORE_UTIL_H
#define CROSVM_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <errno.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define KiB(x) ((uint64_t)(x) << 10)
#define MiB(x) ((uint64_t)(x) << 20)
#define GiB(x) ((uint64_t)(x) << 30)

#define ALIGN_UP(x, a)	 (((x) + ((a)-1)) & ~((uint64_t)(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a)-1))
#define IS_ALIGNED(x, a) (((x) & ((uint64_t)(a)-1)) == 0)

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define BIT(n) (1ULL << (n))

#define MUST_CHECK __attribute__((warn_unused_result))
#define UNUSED	   __attribute__((unused))

/* Returns true when [base, base+len) wraps around the 64-bit space. */
static inline bool range_wraps(uint64_t base, uint64_t len)
{
	return len != 0 && base + len - 1 < base;
}

/*
 * True when [a, a+alen) and [b, b+blen) overlap (non-empty, non-wrapping ranges). Compares
 * last bytes, so a range that ends exactly at 2^64 works too.
 */
static inline bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a <= b + (blen - 1) && b <= a + (alen - 1);
}

/* True when [inner, inner+ilen) lies inside [outer, outer+olen). */
static inline bool range_contains(uint64_t outer, uint64_t olen, uint64_t inner, uint64_t ilen)
{
	return inner >= outer && ilen <= olen && inner - outer <= olen - ilen;
}

/*
 * Little-endian fields of n (1..8) bytes at p, whatever the host's byte order: the layouts
 * a guest sees (PCI and virtio registers, boot headers, CMOS) are little-endian.
 */
static inline uint64_t get_le(const void *p, unsigned n)
{
	const uint8_t *b = p;
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static inline void put_le(void *p, uint64_t v, unsigned n)
{
	uint8_t *b = p;

	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

/* The value of one hexadecimal digit (either case), or -1. */
static inline int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Full read/write loops over EINTR and short transfers; return 0 or -errno (-EIO on EOF). */
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int pread_full(int fd, void *buf, size_t len, off_t off);
int pwrite_full(int fd, const void *buf, size_t len, off_t off);

/* Close fd if it is valid and set it to -1. */
void close_fd(int *fd);

/* Replaces the string *dst (freed; may be NULL) with a copy of v. */
int str_set(char **dst, const char *v) MUST_CHECK;

/* Parse an unsigned decimal/hex (0x) number with no trailing garbage. */
int parse_u64(const char *s, uint64_t *out);

/*
 * True when epoll can watch fd. Regular files and some character devices (/dev/null) are
 * refused, and never block: read or write them whenever there is work.
 */
bool fd_pollable(int fd);

/* eventfd helpers: signal adds 1; drain reads the counter (0 if none). */
int eventfd_signal(int fd);
int eventfd_drain(int fd, uint64_t *count);

#endif
