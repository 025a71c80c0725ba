/*
 * policy_parse: reads policy files into the rule list. The text is split into statements
 * (comments removed, continuation lines joined); '@' directives are handled here, @include by
 * reading the named file in place, and every other statement goes to the rule grammar.
 */
#include "sandbox/policy_parser.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>

#define MAX_STATEMENT (64u << 10)
/* Files read for one policy, counting repeated includes: bounds a fan-out of includes. */
#define MAX_FILES 64

static int parse_file(struct parser *p, char *name, const struct where *from);

/* An include path relative to the including file's directory, as minijail's compiler does. */
static int include_name(const char *cur, const char *path, size_t len, char **out)
{
	const char *slash = strrchr(cur, '/');
	size_t dirlen = 0;

	if (path[0] != '/') {
		while (len >= 2 && path[0] == '.' && path[1] == '/') {
			path += 2;
			len -= 2;
			while (len && path[0] == '/') {
				path++;
				len--;
			}
		}
		if (slash)
			dirlen = (size_t)(slash - cur) + 1;
	}
	if (!len)
		return -EINVAL;
	*out = malloc(dirlen + len + 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, cur, dirlen);
	memcpy(*out + dirlen, path, len);
	(*out)[dirlen + len] = '\0';
	return 0;
}

static int do_include(struct parser *p, const char *path, size_t len)
{
	const char *cur = p->pol->files[p->at.file];
	struct where at = p->at;
	char *name;
	int rc;

	if (p->depth > POLICY_MAX_INCLUDE_DEPTH)
		return policy_fail_at(p->pol, p->err, at,
				      "@include nested more than %d levels deep",
				      POLICY_MAX_INCLUDE_DEPTH);
	if (p->pol->nfiles >= MAX_FILES)
		return policy_fail_at(p->pol, p->err, at, "more than %d files included", MAX_FILES);
	rc = include_name(cur, path, len, &name);
	if (rc == -EINVAL)
		return policy_fail_at(p->pol, p->err, at, "invalid @include path '%.*s'", (int)len,
				      path);
	if (rc)
		return rc;
	for (unsigned i = 0; i < p->depth; i++) {
		if (strcmp(p->pol->files[p->stack[i]], name) == 0) {
			rc = policy_fail_at(p->pol, p->err, at,
					    "@include cycle: '%s' includes itself", name);
			free(name);
			return rc;
		}
	}
	rc = parse_file(p, name, &at);
	p->at = at;
	return rc;
}

/* '@' directives: include, and frequency (a hint for minijail's optimiser, ignored). */
static int parse_directive(struct parser *p, const char *s)
{
	const char *word = s + 1, *arg, *end;
	size_t wlen = 0, alen;

	while (policy_lex_is_ident_char(word[wlen]))
		wlen++;
	arg = word + wlen;
	while (policy_lex_is_space(*arg))
		arg++;
	alen = 0;
	while (arg[alen] && !policy_lex_is_space(arg[alen]))
		alen++;
	end = arg + alen;
	while (policy_lex_is_space(*end))
		end++;
	if (wlen == 7 && memcmp(word, "include", 7) == 0) {
		if (!alen)
			return policy_fail_at(p->pol, p->err, p->at, "@include needs a file name");
		if (*end)
			return policy_fail_at(p->pol, p->err, p->at,
					      "unexpected '%.*s' after the @include path",
					      (int)MIN(strlen(end), 40), end);
		return do_include(p, arg, alen);
	}
	if (wlen == 9 && memcmp(word, "frequency", 9) == 0) {
		if (!alen)
			return policy_fail_at(p->pol, p->err, p->at,
					      "@frequency needs a file name");
		return 0;
	}
	if ((wlen == 7 && memcmp(word, "default", 7) == 0) ||
	    (wlen == 8 && memcmp(word, "denylist", 8) == 0))
		return policy_fail_at(p->pol, p->err, p->at, "'@%.*s' is not supported", (int)wlen,
				      word);
	return policy_fail_at(p->pol, p->err, p->at, "unknown directive '@%.*s'",
			      (int)MIN(wlen, 40), word);
}

static int parse_statement(struct parser *p)
{
	const char *s = p->stmt;
	int rc;

	if (!s)
		return 0;
	while (policy_lex_is_space(*s))
		s++;
	if (!*s)
		return 0;
	if (*s == '@')
		return parse_directive(p, s);
	rc = policy_lex(p);
	if (rc)
		return rc;
	return policy_rule_parse(p);
}

static int stmt_append(struct parser *p, const char *s, size_t n)
{
	int rc;

	if (p->stmt_len + n + 2 > MAX_STATEMENT)
		return policy_fail_at(p->pol, p->err, p->at, "statement longer than %u bytes",
				      MAX_STATEMENT);
	rc = policy_grow((void **)&p->stmt, &p->stmt_cap, p->stmt_len + n + 2, 1);
	if (rc)
		return rc;
	memcpy(p->stmt + p->stmt_len, s, n);
	p->stmt_len += n;
	p->stmt[p->stmt_len++] = ' ';
	p->stmt[p->stmt_len] = '\0';
	return 0;
}

/* Splits the text into statements: comments removed, '\' at the end of a line continuing it. */
static int parse_text(struct parser *p, uint32_t file, const char *text)
{
	const char *s = text;
	uint32_t line = 0;
	bool pending = false;
	int rc;

	p->stmt_len = 0;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		const char *hash = memchr(s, '#', n);
		size_t m = hash ? (size_t)(hash - s) : n;
		bool cont;

		if (line == UINT32_MAX)
			return policy_fail_at(p->pol, p->err, p->at, "too many lines");
		line++;
		if (!pending)
			p->at = (struct where){.file = file, .line = line};
		while (m && policy_lex_is_space(s[m - 1]))
			m--;
		cont = m && s[m - 1] == '\\';
		if (cont)
			m--;
		rc = stmt_append(p, s, m);
		if (rc)
			return rc;
		pending = cont;
		if (!cont) {
			rc = parse_statement(p);
			if (rc)
				return rc;
			p->stmt_len = 0;
		}
		s = nl ? nl + 1 : s + n;
	}
	if (pending)
		return policy_fail_at(p->pol, p->err, p->at,
				      "'\\' continues the last line past the end of the file");
	return 0;
}

static int add_file(struct policy *pol, char *name, uint32_t *idx)
{
	int rc = policy_grow((void **)&pol->files, &pol->files_cap, pol->nfiles + 1,
			     sizeof(*pol->files));

	if (rc) {
		free(name);
		return rc;
	}
	*idx = (uint32_t)pol->nfiles;
	pol->files[pol->nfiles++] = name;
	return 0;
}

/* Takes ownership of name. from is the @include statement, NULL for the top-level file. */
static int parse_file(struct parser *p, char *name, const struct where *from)
{
	char *text = NULL;
	uint32_t idx;
	int rc;

	rc = add_file(p->pol, name, &idx);
	if (rc)
		return rc;
	rc = p->opts->resolve(p->opts->resolve_ctx, name, &text);
	if (rc >= 0 && !text)
		rc = -EIO;
	if (rc < 0) {
		if (from)
			policy_fail_at(p->pol, p->err, *from,
				       "cannot read included policy '%s': %s", name, strerror(-rc));
		else
			policy_set_err(p->err, "%s: cannot read the policy: %s", name,
				       strerror(-rc));
		goto out;
	}
	if (strlen(text) > POLICY_MAX_FILE_SIZE) {
		policy_set_err(p->err, "%s: larger than %u bytes", name, POLICY_MAX_FILE_SIZE);
		rc = -EINVAL;
		goto out;
	}
	p->stack[p->depth++] = idx;
	rc = parse_text(p, idx, text);
	p->depth--;
out:
	free(text);
	return rc;
}

int policy_parse(const char *name, const struct policy_opts *opts, struct policy **out, char *err,
		 size_t errlen)
{
	struct errbuf e = {.buf = err, .len = errlen};
	struct parser p = {.opts = opts, .err = &e};
	char *top;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!name || !opts || !opts->resolve || !out) {
		policy_set_err(&e, "policy_parse: invalid arguments");
		return -EINVAL;
	}
	p.pol = calloc(1, sizeof(*p.pol));
	top = strdup(name);
	if (!p.pol || !top) {
		free(top);
		rc = -ENOMEM;
		goto fail;
	}
	rc = parse_file(&p, top, NULL);
	if (rc)
		goto fail;
	*out = p.pol;
	p.pol = NULL;
fail:
	if (rc == -ENOMEM)
		policy_set_err(&e, "%s: out of memory", name);
	policy_free(p.pol);
	free(p.stmt);
	free(p.toks);
	free(p.atoms);
	free(p.clause_end);
	return rc;
}
