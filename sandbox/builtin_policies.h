/* The seccomp policy files of policies/ compiled into the binary (generated: policies_builtin.c).
 */
#ifndef CROSVM_SANDBOX_BUILTIN_POLICIES_H
#define CROSVM_SANDBOX_BUILTIN_POLICIES_H

#include "sandbox/policy.h"

/* Terminated by an entry with a NULL name. */
extern const struct policy_text builtin_policies[];

#endif
