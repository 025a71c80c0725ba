/*
 * Seccomp policy compiler: minijail's policy syntax (the one crosvm's policy files use) turned
 * into a libseccomp filter context for x86_64.
 *
 *   # comment                      read: 1                 open: return ENOENT
 *   @include ./common.policy       mmap: arg2 in ~PROT_EXEC
 *   @frequency ./x.frequency       ioctl: arg1 == FIONBIO || arg1 == TCGETS; return ENOTTY
 *
 * Statements may continue over lines ending in '\'. Actions: `1`/`allow`, `return ERRNO`
 * (number or name), `kill` (the compile-time default: kill the process, or log / trap),
 * `kill-process`, `kill-thread`, `trap`, `log`. Filters are a disjunction (`||`) of
 * conjunctions (`&&`) of `argN OP VALUE` with OP one of == != < <= > >= & (some bit of VALUE
 * set) and `in` (no bit outside VALUE set); VALUE is a number (decimal, 0x hex, 0 octal,
 * negative) or named constant, combined with `|`, `~` and parentheses. `; ACTION` after a
 * filter is what happens when it does not match (the default otherwise).
 *
 * A syscall may appear in several filter statements (crosvm's policies extend an included
 * file's rules this way, as minijail's policy compiler allows): their filters are OR'ed. An
 * unconditional statement for a syscall must be its last one and then acts as the fallback of
 * the filters before it; two unconditional statements, or differing fallbacks, are errors.
 */
#ifndef CROSVM_SANDBOX_POLICY_H
#define CROSVM_SANDBOX_POLICY_H

#include <seccomp.h>
#include <stddef.h>

/* Deepest @include nesting accepted below the top-level policy. */
#define POLICY_MAX_INCLUDE_DEPTH 8
/* Largest policy file accepted, from a resolver or a directory. */
#define POLICY_MAX_FILE_SIZE (1u << 20)

/* What happens to a syscall the policy does not allow (and to `kill`). */
enum policy_default {
	POLICY_DEFAULT_KILL, /* SCMP_ACT_KILL_PROCESS: the parent sees SIGSYS */
	POLICY_DEFAULT_LOG,  /* SCMP_ACT_LOG, for --seccomp-log-failures */
	POLICY_DEFAULT_TRAP, /* SCMP_ACT_TRAP */
};

/*
 * Returns the text of a policy file by name: 0 and a malloc'd NUL-terminated buffer (the
 * caller frees), or -errno. Names are the top-level name given to policy_parse/compile, and
 * @include paths as written, except that a relative path ("./x.policy" or "x.policy") is
 * taken relative to the directory part of the including file's name.
 */
typedef int (*policy_resolve_fn)(void *ctx, const char *name, char **text);

struct policy_opts {
	enum policy_default def;
	policy_resolve_fn resolve;
	void *resolve_ctx;
};

/* A parsed policy: the rules of every file it includes, merged per syscall. */
struct policy;

/*
 * Compiles the named policy into a new libseccomp filter context for x86_64 (*out; the caller
 * releases it with seccomp_release). Errors: -EINVAL for a malformed or inexpressible policy,
 * the resolver's -errno for a file it cannot supply, -ENOMEM; err receives
 * "FILE:LINE: what is wrong" (or "FILE: what is wrong").
 */
int policy_compile(const char *name, const struct policy_opts *opts, scmp_filter_ctx *out,
		   char *err, size_t errlen);

/* The two halves of policy_compile: reading and checking the files, then building the filter.
 * Only opts->resolve and opts->resolve_ctx matter to policy_parse. */
int policy_parse(const char *name, const struct policy_opts *opts, struct policy **out, char *err,
		 size_t errlen);
int policy_emit(const struct policy *pol, enum policy_default def, scmp_filter_ctx *out, char *err,
		size_t errlen);
void policy_free(struct policy *pol);

/* Number of distinct syscalls the policy mentions. */
size_t policy_syscall_count(const struct policy *pol);

/*
 * Ready-made resolvers. Both look up only the last component of the name, so that crosvm's
 * absolute includes (@include /usr/share/policy/crosvm/common_device.policy) find the file
 * among the built-in policies or in a --seccomp-policy-dir, and no name reaches outside them.
 *
 * policy_resolve_table: ctx is an array of struct policy_text ending with a NULL name.
 * policy_resolve_dir: ctx is the directory path (a NUL-terminated string).
 */
struct policy_text {
	const char *name;
	const char *text;
};
int policy_resolve_table(void *ctx, const char *name, char **text);
int policy_resolve_dir(void *ctx, const char *name, char **text);

#endif
