/*
 * The kernel command line, built from parts (crosvm's base, generated console/root options,
 * the user's -p). Bounded by the kernel's limit; a part that does not fit is an error, never
 * silently cut off.
 */
#ifndef CROSVM_CORE_BOOT_CMDLINE_H
#define CROSVM_CORE_BOOT_CMDLINE_H

#include <stddef.h>
#include "core/util.h"

struct cmdline {
	char *buf;	 /* NUL-terminated; "" when empty */
	size_t len, cap; /* cap: size of buf, so at most cap - 1 characters */
};

/* Allocates a buffer of cap bytes (at least 1: the NUL), e.g. LAYOUT_CMDLINE_MAX. */
int cmdline_init(struct cmdline *c, size_t cap) MUST_CHECK;
void cmdline_free(struct cmdline *c);
/*
 * Appends s, separated from what is there by one space. -E2BIG (and c unchanged) if it would
 * not fit; -EINVAL if s holds a control character (a newline would split the line in /proc).
 * An empty s is a no-op.
 */
int cmdline_append(struct cmdline *c, const char *s) MUST_CHECK;

#endif
