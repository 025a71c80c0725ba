/*
 * Kernel command line lookup: space-separated words "key" or "key=value", values may be
 * double-quoted (key="a b"), as Linux parses them.
 */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include "util.h"

/* Copies the value of key into val: 0, -ENOENT (absent), -E2BIG (value too long, truncated). */
int cmdline_get(const char *cmdline, const char *key, char *val, size_t size);
/* True when key appears, with or without a value. */
bool cmdline_has(const char *cmdline, const char *key);
/* Numeric value of key (decimal or 0x-hex), or def when absent or malformed. */
uint64_t cmdline_u64(const char *cmdline, const char *key, uint64_t def);

#endif
