/*
 * printf-style formatting into any sink: %s %c %d %i %u %x %X %p %%, the '0' and '-' flags, a
 * field width, a precision for %s (.N or .*), and the l/ll/z length modifiers. No floating
 * point (the guests build with -mgeneral-regs-only).
 */
#ifndef GUEST_FMT_H
#define GUEST_FMT_H

#include "util.h"

typedef void (*fmt_put_fn)(void *arg, char c);

/* Returns the number of characters produced. An unknown conversion is copied literally. */
int fmt_vformat(fmt_put_fn put, void *arg, const char *fmt, va_list ap);
/* Like snprintf: always terminates when size > 0; returns the untruncated length. */
int fmt_snprintf(char *buf, size_t size, const char *fmt, ...) PRINTF(3, 4);
int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
