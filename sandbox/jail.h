/* The steps of a device process's jail, in the order sandbox.c applies them. */
#ifndef CROSVM_SANDBOX_JAIL_H
#define CROSVM_SANDBOX_JAIL_H

#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

struct fd_list;

/* Closes every fd not in keep (stdin/stdout included unless kept). */
int jail_close_fds(const struct fd_list *keep) MUST_CHECK;
/*
 * In a new mount namespace: make mounts private, pivot into root (with the mounts below it)
 * by way of mountpoint, an empty directory, and detach the old root. With root the empty
 * directory itself (the default jail) it is then made read-only; a device's own root keeps
 * its flags, less device nodes and setuid. With show (an absolute path, or NULL; only with
 * the default jail), the new root is a small tmpfs on mountpoint holding that host directory
 * alone, bind-mounted read-only at the same path.
 */
int jail_pivot_root(const char *root, const char *mountpoint, const char *show) MUST_CHECK;
/* An O_PATH descriptor of /proc/self/fd in a new, unattached proc of this PID namespace. */
int jail_private_proc(int *proc_self_fd) MUST_CHECK;
/* In a new user namespace whose maps are written: become its root, if the maps have one. */
int jail_become_ns_root(void) MUST_CHECK;
/* RLIMIT_NOFILE soft and hard limit (at most the hard limit when it cannot be raised). */
int jail_limit_fds(unsigned max) MUST_CHECK;
/*
 * Keeps only the capabilities in keep (bit n: capability n) in the bounding, permitted and
 * effective sets; empties the ambient and inheritable ones.
 */
int jail_keep_caps(uint64_t keep) MUST_CHECK;
/* jail_keep_caps(0): no capability at all. */
int jail_drop_caps(void) MUST_CHECK;
int jail_no_new_privs(void) MUST_CHECK;

#endif
