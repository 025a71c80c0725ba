/* The steps of a device process's jail, in the order sandbox.c applies them. */
#ifndef CROSVM_SANDBOX_JAIL_H
#define CROSVM_SANDBOX_JAIL_H

#include <stdbool.h>
#include "core/util.h"

struct fd_list;

/* Closes every fd not in keep (stdin/stdout included unless kept). */
int jail_close_fds(const struct fd_list *keep) MUST_CHECK;
/*
 * In a new mount namespace: make mounts private, pivot into dir, detach the old root. With
 * show (an absolute path, or NULL), the new root is a small tmpfs on dir holding that host
 * directory alone, bind-mounted read-only at the same path.
 */
int jail_pivot_root(const char *dir, const char *show) MUST_CHECK;
/* RLIMIT_NOFILE soft and hard limit. */
int jail_limit_fds(unsigned max) MUST_CHECK;
/* Empties the bounding, ambient, permitted, effective and inheritable capability sets. */
int jail_drop_caps(void) MUST_CHECK;
int jail_no_new_privs(void) MUST_CHECK;

#endif
