/*
 * Seccomp policy compiler. policy_parse reads minijail-syntax files into per-syscall rules
 * (a DNF of argument comparisons plus the action taken when it does not match); policy_emit
 * turns those into libseccomp rules (see policy_emit.c for why that is not one libseccomp
 * rule per clause).
 *
 *   policy.c          policy_compile, the policy's lifetime, helpers both halves share
 *   policy_parse.c    files, statements, directives and @include
 *   policy_lex.c      a statement's tokens
 *   policy_rule.c     the rule grammar: actions and filters, merged per syscall
 *   policy_emit.c     the rule list into libseccomp rules
 *   policy_resolve.c  the ready-made resolvers
 *   policy_consts.c   the named constants
 */
#include "sandbox/policy_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int policy_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	while (ncap < need)
		ncap *= 2;
	p = reallocarray(*arr, ncap, elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

void policy_set_err(struct errbuf *e, const char *fmt, ...)
{
	va_list ap;

	if (!e->buf || !e->len)
		return;
	va_start(ap, fmt);
	vsnprintf(e->buf, e->len, fmt, ap);
	va_end(ap);
}

int policy_fail_at(const struct policy *pol, struct errbuf *e, struct where w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!e->buf || !e->len)
		return -EINVAL;
	n = snprintf(e->buf, e->len, "%s:%u: ", pol->files[w.file], w.line);
	if (n < 0 || (size_t)n >= e->len)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(e->buf + n, e->len - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void policy_free(struct policy *pol)
{
	if (!pol)
		return;
	for (size_t i = 0; i < pol->nrules; i++) {
		free(pol->rules[i].atoms);
		free(pol->rules[i].clause_end);
	}
	for (size_t i = 0; i < pol->nfiles; i++)
		free(pol->files[i]);
	free(pol->rules);
	free(pol->files);
	free(pol);
}

size_t policy_syscall_count(const struct policy *pol)
{
	return pol->nrules;
}

int policy_compile(const char *name, const struct policy_opts *opts, scmp_filter_ctx *out,
		   char *err, size_t errlen)
{
	struct policy *pol = NULL;
	int rc;

	rc = policy_parse(name, opts, &pol, err, errlen);
	if (rc)
		return rc;
	rc = policy_emit(pol, opts->def, out, err, errlen);
	policy_free(pol);
	return rc;
}
