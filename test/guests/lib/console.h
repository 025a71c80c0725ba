/*
 * Printing on COM1 from any CPU, and the result protocol the host reads:
 *     INFO <key>=<value>
 *     PASS <name>
 *     FAIL <name>: <reason>
 *     DONE
 * with \n line endings. A line is written under the console lock, so lines from several CPUs
 * never interleave.
 */
#ifndef GUEST_CONSOLE_H
#define GUEST_CONSOLE_H

#include "guest.h"

void con_printf(struct guest *g, const char *fmt, ...) PRINTF(2, 3);
void con_vprintf(struct guest *g, const char *fmt, va_list ap);
void con_write(struct guest *g, const char *s, size_t len);
void report_info(struct guest *g, const char *fmt, ...) PRINTF(2, 3);
void report_pass(struct guest *g, const char *fmt, ...) PRINTF(2, 3);
void report_fail(struct guest *g, const char *name, const char *fmt, ...) PRINTF(3, 4);
/* PASS name when ok, else FAIL name: <reason>. Returns 0 or -EINVAL. */
int report_check(struct guest *g, bool ok, const char *name, const char *fmt, ...) PRINTF(4, 5);
/* Copies s into out with control characters, backslash and non-ASCII as \xNN. */
void con_escape(char *out, size_t size, const char *s);
/* True when the calling CPU holds the console lock (an interrupt must not print then). */
bool con_held_here(struct guest *g);
/* For the exception path: releases the console lock if the calling CPU holds it. */
void con_break_own_lock(struct guest *g);

#endif
