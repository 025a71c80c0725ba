/*
 * The memory and string functions. GCC may emit calls to memcpy/memset/memmove/memcmp even
 * in freestanding code, so they must exist under those names.
 */
#ifndef GUEST_STR_H
#define GUEST_STR_H

#include "util.h"

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
/* Copies at most size-1 bytes and always terminates (size > 0); returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t size);
bool str_starts_with(const char *s, const char *prefix);
/* Parses an unsigned decimal or 0x-hex number that fills all of s. -EINVAL or -ERANGE. */
int str_to_u64(const char *s, uint64_t *out);

#endif
