/*
 * Named constants that seccomp policy files may use in argument filters and in
 * `return ERRNO` (O_RDONLY, PROT_EXEC, FIONBIO, ENOENT, ...), with their x86_64 values taken
 * from the system headers, as minijail's constant table is.
 */
#ifndef CROSVM_SANDBOX_POLICY_CONSTS_H
#define CROSVM_SANDBOX_POLICY_CONSTS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Looks up the constant whose name is the len bytes at name (not necessarily NUL-terminated).
 * Negative values (AT_FDCWD) come back as their 64-bit two's complement. Returns 0 or -ENOENT.
 */
int policy_const_lookup(const char *name, size_t len, uint64_t *value);

/* The i-th entry of the table, for enumeration; -ENOENT past the end. */
int policy_const_at(size_t i, const char **name, uint64_t *value);

#endif
