/*
 * Seccomp policy compiler. policy_parse reads minijail-syntax files into per-syscall rules
 * (a DNF of argument comparisons plus the action taken when it does not match); policy_emit
 * turns those into libseccomp rules (see "emission" below for why that is not one libseccomp
 * rule per clause).
 */
#include "sandbox/policy.h"

#include "core/util.h"
#include "sandbox/policy_consts.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <linux/filter.h>

#define NARGS		      6
#define MAX_ERRNO_VALUE	      4095
#define MAX_STATEMENT	      (64u << 10)
#define MAX_ATOMS_PER_SYSCALL 1024
#define MAX_VALUE_DEPTH	      32
#define MAX_NAME	      64
/* Files read for one policy, counting repeated includes: bounds a fan-out of includes. */
#define MAX_FILES 64
/* Most libseccomp rules one syscall may need. */
#define MAX_RULES 1024

/* ---- parsed representation ---------------------------------------------------------- */

enum act_kind {
	ACT_ALLOW,
	ACT_ERRNO,
	ACT_DENY, /* `kill`: whatever the compile-time default is */
	ACT_KILL_PROCESS,
	ACT_KILL_THREAD,
	ACT_TRAP,
	ACT_LOG,
};

struct action {
	enum act_kind kind;
	uint16_t err;
};

enum atom_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_SET, OP_IN };

struct atom {
	uint8_t arg;
	uint8_t op;
	uint64_t val;
};

struct where {
	uint32_t file; /* index into policy.files */
	uint32_t line;
};

struct rule {
	int nr;
	char name[MAX_NAME];
	struct where first;
	bool uncond;	/* an unconditional statement came; nothing may follow it */
	bool has_final; /* final is what happens when no filter matches */
	struct action final;
	struct where final_at;
	struct atom *atoms;
	size_t natoms, atoms_cap;
	uint32_t *clause_end; /* clause i is atoms[clause_end[i - 1], clause_end[i]) */
	size_t nclauses, clauses_cap;
};

struct policy {
	struct rule *rules;
	size_t nrules, rules_cap;
	char **files;
	size_t nfiles, files_cap;
};

struct errbuf {
	char *buf;
	size_t len;
};

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
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

static void __attribute__((format(printf, 2, 3))) set_err(struct errbuf *e, const char *fmt, ...)
{
	va_list ap;

	if (!e->buf || !e->len)
		return;
	va_start(ap, fmt);
	vsnprintf(e->buf, e->len, fmt, ap);
	va_end(ap);
}

/* Formats "FILE:LINE: message" into the error buffer and returns -EINVAL. */
static int __attribute__((format(printf, 4, 5)))
fail_at(const struct policy *pol, struct errbuf *e, struct where w, const char *fmt, ...)
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

static bool same_action(struct action a, struct action b)
{
	return a.kind == b.kind && (a.kind != ACT_ERRNO || a.err == b.err);
}

/* ---- lexer ------------------------------------------------------------------------------ */

enum tok_type {
	T_END,
	T_IDENT,
	T_NUM,
	T_COLON,
	T_SEMI,
	T_LPAREN,
	T_RPAREN,
	T_TILDE,
	T_BOR,
	T_OR,
	T_AND,
	T_OP,
};

struct tok {
	enum tok_type type;
	const char *s;
	size_t len;
	uint64_t num;
	int num_err; /* T_NUM: 0, -EINVAL (malformed) or -ERANGE */
	uint8_t op;  /* T_OP: enum atom_op */
};

struct parser {
	struct policy *pol;
	const struct policy_opts *opts;
	struct errbuf *err;
	uint32_t stack[POLICY_MAX_INCLUDE_DEPTH + 1]; /* files being read, outermost first */
	unsigned depth;
	struct where at; /* statement being parsed */
	char *stmt;
	size_t stmt_len, stmt_cap;
	struct tok *toks;
	size_t ntoks, toks_cap, pos;
	/* the statement's filter, before it is merged into its rule */
	struct atom *atoms;
	size_t natoms, atoms_cap;
	uint32_t *clause_end;
	size_t nclauses, clauses_cap;
};

static bool is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9') || c == '-';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

/* Numbers as C's strtoull(s, 0) reads them, optionally negated (two's complement). */
static int parse_number(const char *s, size_t len, uint64_t *out)
{
	bool neg = s[0] == '-';
	size_t i = neg ? 1 : 0;
	unsigned base = 10;
	uint64_t v = 0;

	if (len - i >= 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
		base = 16;
		i += 2;
		if (i == len)
			return -EINVAL;
	} else if (len - i >= 2 && s[i] == '0') {
		base = 8;
		i++;
	}
	for (; i < len; i++) {
		unsigned d = (unsigned)digit_value(s[i]);

		if (d >= base)
			return -EINVAL;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
	}
	if (neg) {
		if (v > (UINT64_C(1) << 63))
			return -ERANGE;
		v = (uint64_t)0 - v;
	}
	*out = v;
	return 0;
}

static int push_tok(struct parser *p, struct tok t)
{
	int rc = grow((void **)&p->toks, &p->toks_cap, p->ntoks + 2, sizeof(*p->toks));

	if (rc)
		return rc;
	p->toks[p->ntoks++] = t;
	return 0;
}

static int lex(struct parser *p)
{
	const char *s = p->stmt;
	int rc;

	p->ntoks = 0;
	p->pos = 0;
	while (*s) {
		struct tok t = {.s = s, .len = 1};
		const char *e = s;

		if (is_space(*s)) {
			s++;
			continue;
		}
		if (is_ident_start(*s)) {
			while (is_ident_char(*e))
				e++;
			t.type = T_IDENT;
		} else if (is_digit(*s) || (*s == '-' && is_digit(s[1]))) {
			/* Take the whole word so "0x1g" is reported as one bad number. */
			e++;
			while (is_ident_char(*e) && *e != '-')
				e++;
			t.type = T_NUM;
			t.num_err = parse_number(s, (size_t)(e - s), &t.num);
		} else {
			static const struct {
				const char *text;
				enum tok_type type;
				uint8_t op;
			} puncts[] = {
				{"||", T_OR, 0},     {"&&", T_AND, 0},	  {"==", T_OP, OP_EQ},
				{"!=", T_OP, OP_NE}, {"<=", T_OP, OP_LE}, {">=", T_OP, OP_GE},
				{"<", T_OP, OP_LT},  {">", T_OP, OP_GT},  {"&", T_OP, OP_SET},
				{"|", T_BOR, 0},     {":", T_COLON, 0},	  {";", T_SEMI, 0},
				{"(", T_LPAREN, 0},  {")", T_RPAREN, 0},  {"~", T_TILDE, 0},
			};
			size_t i;

			for (i = 0; i < ARRAY_SIZE(puncts); i++) {
				size_t n = strlen(puncts[i].text);

				if (strncmp(s, puncts[i].text, n) == 0) {
					e = s + n;
					t.type = puncts[i].type;
					t.op = puncts[i].op;
					break;
				}
			}
			if (i == ARRAY_SIZE(puncts)) {
				unsigned char c = (unsigned char)*s;

				if (c > 0x20 && c < 0x7f)
					return fail_at(p->pol, p->err, p->at,
						       "unexpected character '%c'", c);
				return fail_at(p->pol, p->err, p->at, "unexpected character 0x%02x",
					       c);
			}
		}
		t.len = (size_t)(e - s);
		rc = push_tok(p, t);
		if (rc)
			return rc;
		s = e;
	}
	return push_tok(p, (struct tok){.type = T_END, .s = s, .len = 0});
}

static const struct tok *peek(const struct parser *p)
{
	return &p->toks[p->pos];
}

static const struct tok *next(struct parser *p)
{
	const struct tok *t = &p->toks[p->pos];

	if (t->type != T_END)
		p->pos++;
	return t;
}

static bool tok_is(const struct tok *t, const char *word)
{
	return t->type == T_IDENT && strlen(word) == t->len && memcmp(t->s, word, t->len) == 0;
}

/* A token for messages: quoted and cut to 40 characters, or "end of line". */
struct tok_desc {
	char s[48];
};

static struct tok_desc describe(const struct tok *t)
{
	struct tok_desc d;

	if (t->type == T_END)
		snprintf(d.s, sizeof(d.s), "end of line");
	else
		snprintf(d.s, sizeof(d.s), "'%.*s'", (int)MIN(t->len, 40), t->s);
	return d;
}

/* ---- statements ------------------------------------------------------------------------- */

static int parse_value(struct parser *p, unsigned depth, uint64_t *out);

static int parse_constant(struct parser *p, unsigned depth, uint64_t *out)
{
	const struct tok *t;
	int rc;

	if (depth > MAX_VALUE_DEPTH)
		return fail_at(p->pol, p->err, p->at, "constant expression nested too deeply");
	t = next(p);
	switch (t->type) {
	case T_TILDE:
		rc = parse_constant(p, depth + 1, out);
		if (!rc)
			*out = ~*out;
		return rc;
	case T_LPAREN:
		rc = parse_value(p, depth + 1, out);
		if (rc)
			return rc;
		t = next(p);
		if (t->type != T_RPAREN)
			return fail_at(p->pol, p->err, p->at, "expected ')', found %s",
				       describe(t).s);
		return 0;
	case T_NUM:
		if (t->num_err == -ERANGE)
			return fail_at(p->pol, p->err, p->at, "number '%.*s' out of range",
				       (int)MIN(t->len, 40), t->s);
		if (t->num_err)
			return fail_at(p->pol, p->err, p->at, "invalid number '%.*s'",
				       (int)MIN(t->len, 40), t->s);
		*out = t->num;
		return 0;
	case T_IDENT:
		if (policy_const_lookup(t->s, t->len, out) == 0)
			return 0;
		return fail_at(p->pol, p->err, p->at, "unknown constant '%.*s'",
			       (int)MIN(t->len, 40), t->s);
	default:
		return fail_at(p->pol, p->err, p->at, "expected a value, found %s", describe(t).s);
	}
}

/* value = constant { '|' constant } */
static int parse_value(struct parser *p, unsigned depth, uint64_t *out)
{
	uint64_t v = 0, c = 0;
	int rc;

	for (;;) {
		rc = parse_constant(p, depth, &c);
		if (rc)
			return rc;
		v |= c;
		if (peek(p)->type != T_BOR)
			break;
		next(p);
	}
	*out = v;
	return 0;
}

static int parse_errno(struct parser *p, struct action *act)
{
	const struct tok *t = peek(p);
	uint64_t v = 0;
	int rc;

	if (t->type == T_END)
		return fail_at(p->pol, p->err, p->at, "missing errno after 'return'");
	if (t->type != T_NUM && t->type != T_IDENT)
		return fail_at(p->pol, p->err, p->at, "expected an errno after 'return', found %s",
			       describe(t).s);
	rc = parse_constant(p, 0, &v);
	if (rc)
		return rc;
	if (v > MAX_ERRNO_VALUE)
		return fail_at(p->pol, p->err, p->at, "errno %llu out of range (0 to %d)",
			       (unsigned long long)v, MAX_ERRNO_VALUE);
	*act = (struct action){.kind = ACT_ERRNO, .err = (uint16_t)v};
	return 0;
}

static int parse_action(struct parser *p, struct action *act)
{
	static const struct {
		const char *word;
		enum act_kind kind;
	} words[] = {
		{"allow", ACT_ALLOW},
		{"kill", ACT_DENY},
		{"kill-process", ACT_KILL_PROCESS},
		{"kill-thread", ACT_KILL_THREAD},
		{"trap", ACT_TRAP},
		{"log", ACT_LOG},
	};
	const struct tok *t = next(p);

	if (t->type == T_NUM && !t->num_err && t->num == 1) {
		*act = (struct action){.kind = ACT_ALLOW};
		return 0;
	}
	if (tok_is(t, "return"))
		return parse_errno(p, act);
	for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
		if (tok_is(t, words[i].word)) {
			*act = (struct action){.kind = words[i].kind};
			return 0;
		}
	}
	if (tok_is(t, "trace") || tok_is(t, "user-notify"))
		return fail_at(p->pol, p->err, p->at, "action '%.*s' is not supported", (int)t->len,
			       t->s);
	if (t->type == T_END)
		return fail_at(p->pol, p->err, p->at, "missing action");
	return fail_at(p->pol, p->err, p->at,
		       "invalid action %s (expected 1, allow, return ERRNO, kill, "
		       "kill-process, kill-thread, trap or log)",
		       describe(t).s);
}

/* "arg" followed by digits only. */
static bool is_arg(const struct tok *t)
{
	if (t->type != T_IDENT || t->len < 4 || memcmp(t->s, "arg", 3) != 0)
		return false;
	for (size_t i = 3; i < t->len; i++) {
		if (!is_digit(t->s[i]))
			return false;
	}
	return true;
}

static int parse_atom(struct parser *p)
{
	const struct tok *t = next(p);
	struct atom a = {0};
	int rc;

	if (!is_arg(t))
		return fail_at(p->pol, p->err, p->at,
			       "expected an argument (arg0 to arg5), found %s", describe(t).s);
	if (t->len != 4 || t->s[3] > '5')
		return fail_at(p->pol, p->err, p->at, "argument '%.*s' out of range (arg0 to arg5)",
			       (int)MIN(t->len, 40), t->s);
	a.arg = (uint8_t)(t->s[3] - '0');
	t = next(p);
	if (t->type == T_OP)
		a.op = t->op;
	else if (tok_is(t, "in"))
		a.op = OP_IN;
	else
		return fail_at(p->pol, p->err, p->at, "invalid operator %s", describe(t).s);
	if (peek(p)->type == T_END)
		return fail_at(p->pol, p->err, p->at, "missing value after the operator");
	rc = parse_value(p, 0, &a.val);
	if (rc)
		return rc;
	if (p->natoms >= MAX_ATOMS_PER_SYSCALL)
		return fail_at(p->pol, p->err, p->at, "too many argument comparisons");
	rc = grow((void **)&p->atoms, &p->atoms_cap, p->natoms + 1, sizeof(*p->atoms));
	if (rc)
		return rc;
	p->atoms[p->natoms++] = a;
	return 0;
}

/* filter = clause { '||' clause } [ ';' action ];  clause = atom { '&&' atom } */
static int parse_filter(struct parser *p, bool *has_fallback, struct action *fallback)
{
	int rc;

	p->natoms = 0;
	p->nclauses = 0;
	for (;;) {
		for (;;) {
			rc = parse_atom(p);
			if (rc)
				return rc;
			if (peek(p)->type != T_AND)
				break;
			next(p);
		}
		rc = grow((void **)&p->clause_end, &p->clauses_cap, p->nclauses + 1,
			  sizeof(*p->clause_end));
		if (rc)
			return rc;
		p->clause_end[p->nclauses++] = (uint32_t)p->natoms;
		if (peek(p)->type != T_OR)
			break;
		next(p);
	}
	*has_fallback = false;
	if (peek(p)->type != T_SEMI)
		return 0;
	next(p);
	*has_fallback = true;
	return parse_action(p, fallback);
}

static int find_rule(struct parser *p, int nr, const char *name, struct rule **out)
{
	struct policy *pol = p->pol;
	int rc;

	for (size_t i = 0; i < pol->nrules; i++) {
		if (pol->rules[i].nr == nr) {
			*out = &pol->rules[i];
			return 0;
		}
	}
	rc = grow((void **)&pol->rules, &pol->rules_cap, pol->nrules + 1, sizeof(*pol->rules));
	if (rc)
		return rc;
	*out = &pol->rules[pol->nrules++];
	**out = (struct rule){.nr = nr, .first = p->at};
	snprintf((*out)->name, sizeof((*out)->name), "%s", name);
	return 0;
}

/* Adds one statement to its syscall's rule (see policy.h for how statements combine). */
static int merge_statement(struct parser *p, struct rule *r, bool is_filter, bool has_final,
			   struct action final)
{
	const struct policy *pol = p->pol;
	size_t base;
	int rc;

	if (r->uncond)
		return fail_at(pol, p->err, p->at,
			       "syscall '%s' already has an unconditional rule at %s:%u", r->name,
			       pol->files[r->final_at.file], r->final_at.line);
	if (has_final) {
		if (r->has_final && !same_action(r->final, final))
			return fail_at(
				pol, p->err, p->at,
				"syscall '%s' already has a different fallback action at %s:%u",
				r->name, pol->files[r->final_at.file], r->final_at.line);
		if (!r->has_final) {
			r->has_final = true;
			r->final = final;
			r->final_at = p->at;
		}
	}
	if (!is_filter) {
		r->uncond = true;
		r->final_at = p->at;
		return 0;
	}
	if (r->natoms + p->natoms > MAX_ATOMS_PER_SYSCALL)
		return fail_at(pol, p->err, p->at, "too many argument comparisons for syscall '%s'",
			       r->name);
	rc = grow((void **)&r->atoms, &r->atoms_cap, r->natoms + p->natoms, sizeof(*r->atoms));
	if (rc)
		return rc;
	rc = grow((void **)&r->clause_end, &r->clauses_cap, r->nclauses + p->nclauses,
		  sizeof(*r->clause_end));
	if (rc)
		return rc;
	base = r->natoms;
	memcpy(r->atoms + base, p->atoms, p->natoms * sizeof(*p->atoms));
	r->natoms += p->natoms;
	for (size_t i = 0; i < p->nclauses; i++)
		r->clause_end[r->nclauses++] = (uint32_t)(base + p->clause_end[i]);
	return 0;
}

/* rule = syscall ':' ( action | filter ) */
static int parse_rule(struct parser *p)
{
	const struct tok *t = next(p);
	char name[MAX_NAME];
	struct action act = {0};
	bool is_filter, has_final;
	struct rule *r;
	int nr, rc;

	if (t->type != T_IDENT)
		return fail_at(p->pol, p->err, p->at, "expected a syscall name, found %s",
			       describe(t).s);
	if (t->len >= sizeof(name))
		return fail_at(p->pol, p->err, p->at, "unknown syscall '%.*s'", 40, t->s);
	memcpy(name, t->s, t->len);
	name[t->len] = '\0';
	nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name);
	if (nr == __NR_SCMP_ERROR)
		return fail_at(p->pol, p->err, p->at, "unknown syscall '%s'", name);
	if (nr < 0)
		return fail_at(p->pol, p->err, p->at, "syscall '%s' does not exist on x86_64",
			       name);
	t = next(p);
	if (t->type != T_COLON)
		return fail_at(p->pol, p->err, p->at, "expected ':' after '%s', found %s", name,
			       describe(t).s);
	t = peek(p);
	if (t->type == T_END)
		return fail_at(p->pol, p->err, p->at, "missing action or filter after '%s:'", name);
	is_filter = is_arg(t);
	if (is_filter) {
		rc = parse_filter(p, &has_final, &act);
	} else {
		has_final = true;
		rc = parse_action(p, &act);
	}
	if (rc)
		return rc;
	t = peek(p);
	if (t->type != T_END)
		return fail_at(p->pol, p->err, p->at, "unexpected %s after the rule for '%s'",
			       describe(t).s, name);
	rc = find_rule(p, nr, name, &r);
	if (rc)
		return rc;
	return merge_statement(p, r, is_filter, has_final, act);
}

/* ---- files and includes ----------------------------------------------------------------- */

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
		return fail_at(p->pol, p->err, at, "@include nested more than %d levels deep",
			       POLICY_MAX_INCLUDE_DEPTH);
	if (p->pol->nfiles >= MAX_FILES)
		return fail_at(p->pol, p->err, at, "more than %d files included", MAX_FILES);
	rc = include_name(cur, path, len, &name);
	if (rc == -EINVAL)
		return fail_at(p->pol, p->err, at, "invalid @include path '%.*s'", (int)len, path);
	if (rc)
		return rc;
	for (unsigned i = 0; i < p->depth; i++) {
		if (strcmp(p->pol->files[p->stack[i]], name) == 0) {
			rc = fail_at(p->pol, p->err, at, "@include cycle: '%s' includes itself",
				     name);
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

	while (is_ident_char(word[wlen]))
		wlen++;
	arg = word + wlen;
	while (is_space(*arg))
		arg++;
	alen = 0;
	while (arg[alen] && !is_space(arg[alen]))
		alen++;
	end = arg + alen;
	while (is_space(*end))
		end++;
	if (wlen == 7 && memcmp(word, "include", 7) == 0) {
		if (!alen)
			return fail_at(p->pol, p->err, p->at, "@include needs a file name");
		if (*end)
			return fail_at(p->pol, p->err, p->at,
				       "unexpected '%.*s' after the @include path",
				       (int)MIN(strlen(end), 40), end);
		return do_include(p, arg, alen);
	}
	if (wlen == 9 && memcmp(word, "frequency", 9) == 0) {
		if (!alen)
			return fail_at(p->pol, p->err, p->at, "@frequency needs a file name");
		return 0;
	}
	if ((wlen == 7 && memcmp(word, "default", 7) == 0) ||
	    (wlen == 8 && memcmp(word, "denylist", 8) == 0))
		return fail_at(p->pol, p->err, p->at, "'@%.*s' is not supported", (int)wlen, word);
	return fail_at(p->pol, p->err, p->at, "unknown directive '@%.*s'", (int)MIN(wlen, 40),
		       word);
}

static int parse_statement(struct parser *p)
{
	const char *s = p->stmt;
	int rc;

	if (!s)
		return 0;
	while (is_space(*s))
		s++;
	if (!*s)
		return 0;
	if (*s == '@')
		return parse_directive(p, s);
	rc = lex(p);
	if (rc)
		return rc;
	return parse_rule(p);
}

static int stmt_append(struct parser *p, const char *s, size_t n)
{
	int rc;

	if (p->stmt_len + n + 2 > MAX_STATEMENT)
		return fail_at(p->pol, p->err, p->at, "statement longer than %u bytes",
			       MAX_STATEMENT);
	rc = grow((void **)&p->stmt, &p->stmt_cap, p->stmt_len + n + 2, 1);
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
			return fail_at(p->pol, p->err, p->at, "too many lines");
		line++;
		if (!pending)
			p->at = (struct where){.file = file, .line = line};
		while (m && is_space(s[m - 1]))
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
		return fail_at(p->pol, p->err, p->at,
			       "'\\' continues the last line past the end of the file");
	return 0;
}

static int add_file(struct policy *pol, char *name, uint32_t *idx)
{
	int rc = grow((void **)&pol->files, &pol->files_cap, pol->nfiles + 1, sizeof(*pol->files));

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
			fail_at(p->pol, p->err, *from, "cannot read included policy '%s': %s", name,
				strerror(-rc));
		else
			set_err(p->err, "%s: cannot read the policy: %s", name, strerror(-rc));
		goto out;
	}
	if (strlen(text) > POLICY_MAX_FILE_SIZE) {
		set_err(p->err, "%s: larger than %u bytes", name, POLICY_MAX_FILE_SIZE);
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
		set_err(&e, "policy_parse: invalid arguments");
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
		set_err(&e, "%s: out of memory", name);
	policy_free(p.pol);
	free(p.stmt);
	free(p.toks);
	free(p.atoms);
	free(p.clause_end);
	return rc;
}

size_t policy_syscall_count(const struct policy *pol)
{
	return pol->nrules;
}

/* ---- emission --------------------------------------------------------------------------- */

/*
 * libseccomp takes at most one comparison per argument in a rule, has no "some bit set" and
 * cannot say "otherwise" for one syscall. Version 2.5 also drops rules when it merges == and
 * != nodes of overlapping rules, takes exponential time to insert overlapping ranges, and
 * loops forever on two rules that share a <= or >= node and then differ in the high half of a
 * later argument.
 *
 * So a filter becomes a decision tree over arg0..arg5. At each level the argument's values
 * are cut into pieces on which every comparison of that argument is constant, and pieces that
 * leave the same clauses alive share one subtree. A root-to-leaf path is one libseccomp rule
 * (one comparison per argument, in argument order) whose action is allow or the fallback;
 * the rules of a syscall never overlap, != is never emitted, <= and >= only end a rule, and
 * other ranges become aligned blocks of values compared with masked ==.
 */

/* One libseccomp comparison; op is an enum scmp_compare, or LIT_TRUE for "no condition". */
#define LIT_TRUE 0xff
struct lit {
	uint8_t op;
	uint64_t a, b;
};

/*
 * A piece of one argument's values on which every comparison of that argument is constant:
 * an interval [lo, hi] when the argument only has ordering comparisons, else a cube (lit).
 */
struct piece {
	uint64_t lo, hi;
	struct lit lit;
};

/* The comparisons of one level that lead to the same subtree. */
struct litlist {
	struct lit *v;
	size_t n;
};

#define MAX_PIECES     2048
#define MAX_LEVEL_LITS 8192
#define MAX_NODES      (1u << 16)
#define MAX_WORK       (1u << 25) /* comparisons evaluated while building one syscall's tree */

struct emitter {
	const struct policy *pol;
	struct errbuf *err;
	const struct rule *rule;
	scmp_filter_ctx ctx;
	uint32_t deny, on_match, on_miss;
	size_t words;		    /* clause bitmap size in 64-bit words */
	uint8_t *clause_top;	    /* highest argument a clause compares, per clause */
	struct litlist path[NARGS]; /* n == 0: no condition at that level */
	size_t nodes, rules, work;
};

/* What a level works on; freed before returning from it. */
struct level {
	bool ranges; /* pieces are intervals, not cubes */
	struct atom *atoms;
	size_t natoms, atoms_cap;
	struct piece *pieces;
	size_t npieces, pieces_cap;
	uint64_t *alive; /* npieces bitmaps of e->words */
	size_t *order;
	struct lit *group;
	size_t ngroup, group_cap;
};

static void level_free(struct level *l)
{
	free(l->atoms);
	free(l->pieces);
	free(l->alive);
	free(l->order);
	free(l->group);
}

static int too_complex(struct emitter *e)
{
	return fail_at(e->pol, e->err, e->rule->first,
		       "the filter for syscall '%s' is too complex to express with libseccomp",
		       e->rule->name);
}

static bool eval_atom(const struct atom *a, uint64_t x)
{
	switch (a->op) {
	case OP_EQ:
		return x == a->val;
	case OP_NE:
		return x != a->val;
	case OP_LT:
		return x < a->val;
	case OP_LE:
		return x <= a->val;
	case OP_GT:
		return x > a->val;
	case OP_GE:
		return x >= a->val;
	case OP_SET:
		return (x & a->val) != 0;
	default:
		return (x & ~a->val) == 0;
	}
}

static int add_piece(struct emitter *e, struct level *l, struct piece pc)
{
	int rc;

	if (l->npieces >= MAX_PIECES)
		return too_complex(e);
	rc = grow((void **)&l->pieces, &l->pieces_cap, l->npieces + 1, sizeof(*l->pieces));
	if (rc)
		return rc;
	l->pieces[l->npieces++] = pc;
	return 0;
}

/* (arg & mask) == val as one comparison. */
static struct lit cube_lit(uint64_t mask, uint64_t val)
{
	if (mask == 0)
		return (struct lit){.op = LIT_TRUE};
	if (mask == UINT64_MAX)
		return (struct lit){.op = SCMP_CMP_EQ, .a = val};
	return (struct lit){.op = SCMP_CMP_MASKED_EQ, .a = mask, .b = val};
}

static int group_add(struct emitter *e, struct level *l, struct lit lt)
{
	int rc;

	if (l->ngroup >= MAX_LEVEL_LITS)
		return too_complex(e);
	rc = grow((void **)&l->group, &l->group_cap, l->ngroup + 1, sizeof(*l->group));
	if (rc)
		return rc;
	l->group[l->ngroup++] = lt;
	return 0;
}

/*
 * [lo, hi] as comparisons: one value, a bound when the interval reaches an end and nothing is
 * compared after it, else aligned power-of-two blocks (at most two per bit).
 */
static int group_add_interval(struct emitter *e, struct level *l, uint64_t lo, uint64_t hi,
			      bool last)
{
	uint64_t a = lo, end;
	int rc;

	if (lo == 0 && hi == UINT64_MAX)
		return group_add(e, l, (struct lit){.op = LIT_TRUE});
	if (lo == hi)
		return group_add(e, l, (struct lit){.op = SCMP_CMP_EQ, .a = lo});
	if (last && lo == 0)
		return group_add(e, l, (struct lit){.op = SCMP_CMP_LE, .a = hi});
	if (last && hi == UINT64_MAX)
		return group_add(e, l, (struct lit){.op = SCMP_CMP_GE, .a = lo});
	for (;;) {
		unsigned k = a ? (unsigned)__builtin_ctzll(a) : 63;

		while ((a | ((UINT64_C(1) << k) - 1)) > hi)
			k--;
		end = a | ((UINT64_C(1) << k) - 1);
		rc = group_add(e, l, cube_lit(~((UINT64_C(1) << k) - 1), a));
		if (rc || end >= hi)
			return rc;
		a = end + 1;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Only ordering comparisons: the pieces are the intervals between their boundaries. */
static int pieces_by_interval(struct emitter *e, struct level *l)
{
	uint64_t *starts = calloc(2 * l->natoms + 1, sizeof(*starts));
	size_t n = 0;
	int rc = 0;

	if (!starts)
		return -ENOMEM;
	starts[n++] = 0;
	for (size_t i = 0; i < l->natoms; i++) {
		const struct atom *a = &l->atoms[i];
		bool at_v = a->op == OP_EQ || a->op == OP_NE || a->op == OP_LT || a->op == OP_GE;
		bool after_v = a->op == OP_EQ || a->op == OP_NE || a->op == OP_LE || a->op == OP_GT;

		if (at_v)
			starts[n++] = a->val;
		if (after_v && a->val != UINT64_MAX)
			starts[n++] = a->val + 1;
	}
	qsort(starts, n, sizeof(*starts), cmp_u64);
	for (size_t i = 0; i < n && !rc; i++) {
		if (i + 1 < n && starts[i + 1] == starts[i])
			continue;
		rc = add_piece(e, l,
			       (struct piece){.lo = starts[i],
					      .hi = i + 1 < n ? starts[i + 1] - 1 : UINT64_MAX});
	}
	free(starts);
	return rc;
}

/*
 * With bit-mask comparisons: split the cube (arg & mask) == val on one free bit at a time
 * until every comparison is constant on it.
 */
static int pieces_by_bits(struct emitter *e, struct level *l, uint64_t mask, uint64_t val)
{
	const uint64_t max = val | ~mask;
	uint64_t split = 0;
	int rc;

	for (size_t i = 0; i < l->natoms && !split; i++) {
		const struct atom *a = &l->atoms[i];
		uint64_t v = a->val, bits;

		switch (a->op) {
		case OP_SET:
			bits = (val & v) ? 0 : v & ~mask;
			break;
		case OP_IN:
			bits = (val & ~v) ? 0 : ~v & ~mask;
			break;
		case OP_EQ:
		case OP_NE:
			bits = (v & mask) != val ? 0 : ~mask;
			break;
		case OP_LT:
		case OP_GE:
			bits = (max < v || val >= v) ? 0 : ~mask;
			break;
		default: /* LE, GT */
			bits = (max <= v || val > v) ? 0 : ~mask;
			break;
		}
		if (bits)
			split = UINT64_C(1) << (63 - __builtin_clzll(bits));
	}
	if (!split)
		return add_piece(e, l, (struct piece){.lo = val, .lit = cube_lit(mask, val)});
	rc = pieces_by_bits(e, l, mask | split, val);
	return rc ? rc : pieces_by_bits(e, l, mask | split, val | split);
}

static bool clause_alive(const uint64_t *alive, size_t c)
{
	return alive[c / 64] >> (c % 64) & 1;
}

/* A rule for every combination of the comparisons chosen along the path to this leaf. */
static int leaf(struct emitter *e, unsigned depth, bool match)
{
	uint32_t act = match ? e->on_match : e->on_miss;
	struct scmp_arg_cmp cmps[NARGS];
	size_t idx[NARGS] = {0};
	int rc;

	if (act == e->deny)
		return 0;
	for (;;) {
		unsigned n = 0;

		for (unsigned k = 0; k < depth; k++) {
			const struct lit *lt;

			if (!e->path[k].n)
				continue;
			lt = &e->path[k].v[idx[k]];
			if (lt->op == LIT_TRUE)
				continue;
			cmps[n++] = (struct scmp_arg_cmp){.arg = k,
							  .op = (enum scmp_compare)lt->op,
							  .datum_a = lt->a,
							  .datum_b = lt->b};
		}
		if (++e->rules > MAX_RULES)
			return too_complex(e);
		rc = seccomp_rule_add_exact_array(e->ctx, act, e->rule->nr, n, cmps);
		if (rc < 0)
			return fail_at(e->pol, e->err, e->rule->first,
				       "libseccomp rejected a rule for syscall '%s': %s",
				       e->rule->name, strerror(-rc));
		for (unsigned k = 0;; k++) {
			if (k == depth)
				return 0;
			if (e->path[k].n && ++idx[k] < e->path[k].n)
				break;
			idx[k] = 0;
		}
	}
}

static int cmp_alive(const void *a, const void *b, void *ctx)
{
	const struct level *l = ((void **)ctx)[0];
	const struct emitter *e = ((void **)ctx)[1];
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = memcmp(l->alive + x * e->words, l->alive + y * e->words, e->words * 8);

	/* Within a group, keep the pieces in order of value. */
	return c ? c : (x > y) - (x < y);
}

/* Whether the subtree for these surviving clauses compares nothing more (see build). */
static bool ends_here(const struct emitter *e, unsigned k, const uint64_t *alive)
{
	for (size_t c = 0; c < e->rule->nclauses; c++) {
		if (clause_alive(alive, c) && e->clause_top[c] <= k)
			return true;
	}
	for (size_t c = 0; c < e->rule->nclauses; c++) {
		if (clause_alive(alive, c))
			return false;
	}
	return true;
}

/* The comparisons for the pieces order[from, to) of one group. */
static int make_group(struct emitter *e, struct level *l, size_t from, size_t to, bool last)
{
	int rc = 0;

	l->ngroup = 0;
	for (size_t i = from; i < to && !rc; i++) {
		const struct piece *pc = &l->pieces[l->order[i]];
		uint64_t hi = pc->hi;

		if (!l->ranges) {
			rc = group_add(e, l, pc->lit);
			continue;
		}
		/* Adjacent intervals of one group are one interval. */
		while (i + 1 < to && hi != UINT64_MAX && l->pieces[l->order[i + 1]].lo == hi + 1)
			hi = l->pieces[l->order[++i]].hi;
		rc = group_add_interval(e, l, pc->lo, hi, last);
	}
	return rc;
}

static int build(struct emitter *e, unsigned k, const uint64_t *alive);

/* Cuts argument k into pieces and builds one subtree per distinct set of surviving clauses. */
static int split_level(struct emitter *e, unsigned k, const uint64_t *alive, struct level *l)
{
	const struct rule *r = e->rule;
	void *sort_ctx[2] = {l, e};
	int rc;

	l->ranges = true;
	for (size_t c = 0, start = 0; c < r->nclauses; start = r->clause_end[c++]) {
		if (!clause_alive(alive, c))
			continue;
		for (size_t i = start; i < r->clause_end[c]; i++) {
			if (r->atoms[i].arg != k)
				continue;
			rc = grow((void **)&l->atoms, &l->atoms_cap, l->natoms + 1,
				  sizeof(*l->atoms));
			if (rc)
				return rc;
			l->atoms[l->natoms++] = r->atoms[i];
			if (r->atoms[i].op == OP_SET || r->atoms[i].op == OP_IN)
				l->ranges = false;
		}
	}
	if (!l->natoms) {
		e->path[k].n = 0;
		return build(e, k + 1, alive);
	}
	rc = l->ranges ? pieces_by_interval(e, l) : pieces_by_bits(e, l, 0, 0);
	if (rc)
		return rc;
	e->work += l->npieces * r->natoms;
	if (e->work > MAX_WORK)
		return too_complex(e);
	l->alive = calloc(l->npieces * e->words, sizeof(*l->alive));
	l->order = calloc(l->npieces, sizeof(*l->order));
	if (!l->alive || !l->order)
		return -ENOMEM;
	for (size_t p = 0; p < l->npieces; p++) {
		uint64_t *out = l->alive + p * e->words;

		l->order[p] = p;
		for (size_t c = 0, start = 0; c < r->nclauses; start = r->clause_end[c++]) {
			bool keep = clause_alive(alive, c);

			for (size_t i = start; i < r->clause_end[c] && keep; i++)
				keep = r->atoms[i].arg != k ||
				       eval_atom(&r->atoms[i], l->pieces[p].lo);
			if (keep)
				out[c / 64] |= UINT64_C(1) << (c % 64);
		}
	}
	qsort_r(l->order, l->npieces, sizeof(*l->order), cmp_alive, sort_ctx);
	for (size_t g = 0, end; g < l->npieces; g = end) {
		const uint64_t *child = l->alive + l->order[g] * e->words;

		for (end = g + 1; end < l->npieces; end++) {
			if (memcmp(child, l->alive + l->order[end] * e->words, e->words * 8) != 0)
				break;
		}
		/* libseccomp 2.5 loops forever on two rules that share a <= or >= node and then
		 * differ in the high half of a later argument: bounds only end a rule. */
		rc = make_group(e, l, g, end, ends_here(e, k, child));
		if (rc)
			return rc;
		e->path[k] = (struct litlist){.v = l->group, .n = l->ngroup};
		rc = build(e, k + 1, child);
		if (rc)
			return rc;
	}
	return 0;
}

static int build(struct emitter *e, unsigned k, const uint64_t *alive)
{
	const struct rule *r = e->rule;
	struct level l = {0};
	bool any = false;
	int rc;

	if (++e->nodes > MAX_NODES)
		return too_complex(e);
	for (size_t c = 0; c < r->nclauses; c++) {
		if (!clause_alive(alive, c))
			continue;
		/* Every comparison of this clause held on the way here. */
		if (e->clause_top[c] < k)
			return leaf(e, k, true);
		any = true;
	}
	if (!any)
		return leaf(e, k, false);
	rc = split_level(e, k, alive, &l);
	level_free(&l);
	return rc;
}

static uint32_t action_value(struct action a, uint32_t deny)
{
	switch (a.kind) {
	case ACT_ALLOW:
		return SCMP_ACT_ALLOW;
	case ACT_ERRNO:
		return SCMP_ACT_ERRNO(a.err);
	case ACT_KILL_PROCESS:
		return SCMP_ACT_KILL_PROCESS;
	case ACT_KILL_THREAD:
		return SCMP_ACT_KILL_THREAD;
	case ACT_TRAP:
		return SCMP_ACT_TRAP;
	case ACT_LOG:
		return SCMP_ACT_LOG;
	default:
		return deny;
	}
}

static int emit_rule(struct emitter *e)
{
	const struct rule *r = e->rule;
	uint64_t *alive;
	int rc = -ENOMEM;

	e->on_match = SCMP_ACT_ALLOW;
	e->on_miss = r->has_final ? action_value(r->final, e->deny) : e->deny;
	e->nodes = 0;
	e->rules = 0;
	e->work = 0;
	e->words = (r->nclauses + 63) / 64;
	if (r->nclauses == 0 || e->on_miss == SCMP_ACT_ALLOW) {
		/* libseccomp refuses a rule whose action is the default; it changes nothing. */
		if (e->on_miss == e->deny)
			return 0;
		e->on_match = e->on_miss;
		return leaf(e, 0, true);
	}
	alive = calloc(e->words, sizeof(*alive));
	e->clause_top = calloc(r->nclauses, sizeof(*e->clause_top));
	if (!alive || !e->clause_top)
		goto out;
	for (size_t c = 0, start = 0; c < r->nclauses; start = r->clause_end[c++]) {
		alive[c / 64] |= UINT64_C(1) << (c % 64);
		for (size_t i = start; i < r->clause_end[c]; i++)
			e->clause_top[c] = MAX(e->clause_top[c], r->atoms[i].arg);
	}
	rc = build(e, 0, alive);
out:
	free(alive);
	free(e->clause_top);
	e->clause_top = NULL;
	return rc;
}

/* The kernel refuses filters longer than BPF_MAXINSNS; find out now rather than in the child. */
static int check_size(const struct policy *pol, struct errbuf *err, scmp_filter_ctx ctx)
{
	struct stat st;
	int fd, rc;

	fd = memfd_create("crosvm-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		set_err(err, "%s: cannot measure the compiled filter: %s", pol->files[0],
			strerror(-rc));
		return rc;
	}
	rc = seccomp_export_bpf(ctx, fd);
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = -errno;
	if (rc != 0) {
		set_err(err, "%s: cannot export the compiled filter: %s", pol->files[0],
			strerror(-rc));
		goto out;
	}
	if ((uint64_t)st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
		set_err(err,
			"%s: the compiled filter has %llu instructions, more than the kernel's %d",
			pol->files[0], (unsigned long long)st.st_size / sizeof(struct sock_filter),
			BPF_MAXINSNS);
		rc = -EINVAL;
	}
out:
	close(fd);
	return rc;
}

int policy_emit(const struct policy *pol, enum policy_default def, scmp_filter_ctx *out, char *err,
		size_t errlen)
{
	static const uint32_t deny_actions[] = {
		[POLICY_DEFAULT_KILL] = SCMP_ACT_KILL_PROCESS,
		[POLICY_DEFAULT_LOG] = SCMP_ACT_LOG,
		[POLICY_DEFAULT_TRAP] = SCMP_ACT_TRAP,
	};
	struct errbuf eb = {.buf = err, .len = errlen};
	struct emitter e = {.pol = pol, .err = &eb};
	scmp_filter_ctx ctx = NULL;
	int rc = -ENOMEM;

	if (err && errlen)
		err[0] = '\0';
	if (!pol || !out || (unsigned)def >= ARRAY_SIZE(deny_actions)) {
		set_err(&eb, "policy_emit: invalid arguments");
		return -EINVAL;
	}
	e.deny = deny_actions[def];
	ctx = seccomp_init(e.deny);
	if (!ctx)
		goto out;
	/* 32-bit and x32 syscalls get around every rule below; never let them through. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (!rc && seccomp_arch_native() != SCMP_ARCH_X86_64) {
		rc = seccomp_arch_add(ctx, SCMP_ARCH_X86_64);
		if (!rc)
			rc = seccomp_arch_remove(ctx, SCMP_ARCH_NATIVE);
	}
	if (rc) {
		set_err(&eb, "%s: cannot set up the libseccomp context: %s", pol->files[0],
			strerror(-rc));
		goto out;
	}
	e.ctx = ctx;
	for (size_t i = 0; i < pol->nrules; i++) {
		e.rule = &pol->rules[i];
		rc = emit_rule(&e);
		if (rc)
			goto out;
	}
	rc = check_size(pol, &eb, ctx);
	if (rc)
		goto out;
	*out = ctx;
	ctx = NULL;
out:
	if (rc == -ENOMEM)
		set_err(&eb, "%s: out of memory", pol->files[0]);
	if (ctx)
		seccomp_release(ctx);
	return rc;
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

/* ---- resolvers -------------------------------------------------------------------------- */

static const char *last_component(const char *name)
{
	const char *slash = strrchr(name, '/');

	return slash ? slash + 1 : name;
}

int policy_resolve_table(void *ctx, const char *name, char **text)
{
	const struct policy_text *t = ctx;
	const char *base = last_component(name);

	for (; t && t->name; t++) {
		if (strcmp(t->name, base) == 0) {
			*text = strdup(t->text);
			return *text ? 0 : -ENOMEM;
		}
	}
	return -ENOENT;
}

int policy_resolve_dir(void *ctx, const char *name, char **text)
{
	const char *dir = ctx, *base = last_component(name);
	int dfd = -1, fd = -1, rc;
	struct stat st;
	char *buf = NULL;

	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return -ENOENT;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	/* O_NONBLOCK: a FIFO planted in the directory must not hang the VMM. */
	fd = openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if (st.st_size > POLICY_MAX_FILE_SIZE) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	rc = read_full(fd, buf, (size_t)st.st_size);
	if (rc)
		goto out;
	buf[st.st_size] = '\0';
	*text = buf;
	buf = NULL;
out:
	free(buf);
	close_fd(&fd);
	close_fd(&dfd);
	return rc;
}
