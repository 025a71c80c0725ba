/*
 * Basic types and helpers for the freestanding test guests. Only the compiler's freestanding
 * headers are available here (no libc), so the few errno values the library returns are
 * defined locally with Linux's numbers, which keeps "0 or -errno" readable in guest code.
 */
#ifndef GUEST_UTIL_H
#define GUEST_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EPERM	  1
#define ENOENT	  2
#define EIO	  5
#define E2BIG	  7
#define ENOMEM	  12
#define EFAULT	  14
#define EBUSY	  16
#define EEXIST	  17
#define ENODEV	  19
#define EINVAL	  22
#define ENOSPC	  28
#define ERANGE	  34
#define ENOSYS	  38
#define ENODATA	  61
#define ETIMEDOUT 110

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))
#define KiB(x)	      ((uint64_t)(x) << 10)
#define MiB(x)	      ((uint64_t)(x) << 20)
#define GiB(x)	      ((uint64_t)(x) << 30)

#define ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((uint64_t)(a)-1))

#define NORETURN     __attribute__((noreturn))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PACKED	     __attribute__((packed))

/* Everything the guest touches is identity mapped below this address (entry.S). */
#define GUEST_MAPPED_LIMIT GiB(4)

/* True when [addr, addr+len) lies inside the identity map (and does not wrap). */
static inline bool phys_range_ok(uint64_t addr, uint64_t len)
{
	return addr < GUEST_MAPPED_LIMIT && len <= GUEST_MAPPED_LIMIT - addr;
}

static inline void *phys_to_ptr(uint64_t addr)
{
	return (void *)(uintptr_t)addr;
}

/* Compiler barrier: x86 is TSO, so ordering the compiler is enough for our flag handoffs. */
static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

#define READ_ONCE(x)	 (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

#endif
