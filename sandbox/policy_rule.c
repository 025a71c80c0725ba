/*
 * Rule grammar of the policy compiler: one statement's tokens (`syscall: action` or
 * `syscall: filter [; action]`) parsed and merged into its syscall's rule.
 */
#include "sandbox/policy_parser.h"

#include "core/util.h"
#include "sandbox/policy_consts.h"

#include <stdio.h>
#include <string.h>

#define MAX_ERRNO_VALUE	      4095
#define MAX_ATOMS_PER_SYSCALL 1024
#define MAX_VALUE_DEPTH	      32

static bool same_action(struct action a, struct action b)
{
	return a.kind == b.kind && (a.kind != ACT_ERRNO || a.err == b.err);
}

static int parse_value(struct parser *p, unsigned depth, uint64_t *out);

static int parse_constant(struct parser *p, unsigned depth, uint64_t *out)
{
	const struct tok *t;
	int rc;

	if (depth > MAX_VALUE_DEPTH)
		return policy_fail_at(p->pol, p->err, p->at,
				      "constant expression nested too deeply");
	t = policy_lex_next(p);
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
		t = policy_lex_next(p);
		if (t->type != T_RPAREN)
			return policy_fail_at(p->pol, p->err, p->at, "expected ')', found %s",
					      policy_lex_describe(t).s);
		return 0;
	case T_NUM:
		if (t->num_err == -ERANGE)
			return policy_fail_at(p->pol, p->err, p->at, "number '%.*s' out of range",
					      (int)MIN(t->len, 40), t->s);
		if (t->num_err)
			return policy_fail_at(p->pol, p->err, p->at, "invalid number '%.*s'",
					      (int)MIN(t->len, 40), t->s);
		*out = t->num;
		return 0;
	case T_IDENT:
		if (policy_const_lookup(t->s, t->len, out) == 0)
			return 0;
		return policy_fail_at(p->pol, p->err, p->at, "unknown constant '%.*s'",
				      (int)MIN(t->len, 40), t->s);
	default:
		return policy_fail_at(p->pol, p->err, p->at, "expected a value, found %s",
				      policy_lex_describe(t).s);
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
		if (policy_lex_peek(p)->type != T_BOR)
			break;
		policy_lex_next(p);
	}
	*out = v;
	return 0;
}

static int parse_errno(struct parser *p, struct action *act)
{
	const struct tok *t = policy_lex_peek(p);
	uint64_t v = 0;
	int rc;

	if (t->type == T_END)
		return policy_fail_at(p->pol, p->err, p->at, "missing errno after 'return'");
	if (t->type != T_NUM && t->type != T_IDENT)
		return policy_fail_at(p->pol, p->err, p->at,
				      "expected an errno after 'return', found %s",
				      policy_lex_describe(t).s);
	rc = parse_constant(p, 0, &v);
	if (rc)
		return rc;
	if (v > MAX_ERRNO_VALUE)
		return policy_fail_at(p->pol, p->err, p->at, "errno %llu out of range (0 to %d)",
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
	const struct tok *t = policy_lex_next(p);

	if (t->type == T_NUM && !t->num_err && t->num == 1) {
		*act = (struct action){.kind = ACT_ALLOW};
		return 0;
	}
	if (policy_lex_is_word(t, "return"))
		return parse_errno(p, act);
	for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
		if (policy_lex_is_word(t, words[i].word)) {
			*act = (struct action){.kind = words[i].kind};
			return 0;
		}
	}
	if (policy_lex_is_word(t, "trace") || policy_lex_is_word(t, "user-notify"))
		return policy_fail_at(p->pol, p->err, p->at, "action '%.*s' is not supported",
				      (int)t->len, t->s);
	if (t->type == T_END)
		return policy_fail_at(p->pol, p->err, p->at, "missing action");
	return policy_fail_at(p->pol, p->err, p->at,
			      "invalid action %s (expected 1, allow, return ERRNO, kill, "
			      "kill-process, kill-thread, trap or log)",
			      policy_lex_describe(t).s);
}

/* "arg" followed by digits only. */
static bool is_arg(const struct tok *t)
{
	if (t->type != T_IDENT || t->len < 4 || memcmp(t->s, "arg", 3) != 0)
		return false;
	for (size_t i = 3; i < t->len; i++) {
		if (!policy_lex_is_digit(t->s[i]))
			return false;
	}
	return true;
}

static int parse_atom(struct parser *p)
{
	const struct tok *t = policy_lex_next(p);
	struct atom a = {0};
	int rc;

	if (!is_arg(t))
		return policy_fail_at(p->pol, p->err, p->at,
				      "expected an argument (arg0 to arg5), found %s",
				      policy_lex_describe(t).s);
	if (t->len != 4 || t->s[3] > '5')
		return policy_fail_at(p->pol, p->err, p->at,
				      "argument '%.*s' out of range (arg0 to arg5)",
				      (int)MIN(t->len, 40), t->s);
	a.arg = (uint8_t)(t->s[3] - '0');
	t = policy_lex_next(p);
	if (t->type == T_OP)
		a.op = t->op;
	else if (policy_lex_is_word(t, "in"))
		a.op = OP_IN;
	else
		return policy_fail_at(p->pol, p->err, p->at, "invalid operator %s",
				      policy_lex_describe(t).s);
	if (policy_lex_peek(p)->type == T_END)
		return policy_fail_at(p->pol, p->err, p->at, "missing value after the operator");
	rc = parse_value(p, 0, &a.val);
	if (rc)
		return rc;
	if (p->natoms >= MAX_ATOMS_PER_SYSCALL)
		return policy_fail_at(p->pol, p->err, p->at, "too many argument comparisons");
	rc = policy_grow((void **)&p->atoms, &p->atoms_cap, p->natoms + 1, sizeof(*p->atoms));
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
			if (policy_lex_peek(p)->type != T_AND)
				break;
			policy_lex_next(p);
		}
		rc = policy_grow((void **)&p->clause_end, &p->clauses_cap, p->nclauses + 1,
				 sizeof(*p->clause_end));
		if (rc)
			return rc;
		p->clause_end[p->nclauses++] = (uint32_t)p->natoms;
		if (policy_lex_peek(p)->type != T_OR)
			break;
		policy_lex_next(p);
	}
	*has_fallback = false;
	if (policy_lex_peek(p)->type != T_SEMI)
		return 0;
	policy_lex_next(p);
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
	rc = policy_grow((void **)&pol->rules, &pol->rules_cap, pol->nrules + 1,
			 sizeof(*pol->rules));
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
		return policy_fail_at(pol, p->err, p->at,
				      "syscall '%s' already has an unconditional rule at %s:%u",
				      r->name, pol->files[r->final_at.file], r->final_at.line);
	if (has_final) {
		if (r->has_final && !same_action(r->final, final))
			return policy_fail_at(
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
		return policy_fail_at(pol, p->err, p->at,
				      "too many argument comparisons for syscall '%s'", r->name);
	rc = policy_grow((void **)&r->atoms, &r->atoms_cap, r->natoms + p->natoms,
			 sizeof(*r->atoms));
	if (rc)
		return rc;
	rc = policy_grow((void **)&r->clause_end, &r->clauses_cap, r->nclauses + p->nclauses,
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
int policy_rule_parse(struct parser *p)
{
	const struct tok *t = policy_lex_next(p);
	char name[MAX_NAME];
	struct action act = {0};
	bool is_filter, has_final;
	struct rule *r;
	int nr, rc;

	if (t->type != T_IDENT)
		return policy_fail_at(p->pol, p->err, p->at, "expected a syscall name, found %s",
				      policy_lex_describe(t).s);
	if (t->len >= sizeof(name))
		return policy_fail_at(p->pol, p->err, p->at, "unknown syscall '%.*s'", 40, t->s);
	memcpy(name, t->s, t->len);
	name[t->len] = '\0';
	nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name);
	if (nr == __NR_SCMP_ERROR)
		return policy_fail_at(p->pol, p->err, p->at, "unknown syscall '%s'", name);
	if (nr < 0)
		return policy_fail_at(p->pol, p->err, p->at,
				      "syscall '%s' does not exist on x86_64", name);
	t = policy_lex_next(p);
	if (t->type != T_COLON)
		return policy_fail_at(p->pol, p->err, p->at, "expected ':' after '%s', found %s",
				      name, policy_lex_describe(t).s);
	t = policy_lex_peek(p);
	if (t->type == T_END)
		return policy_fail_at(p->pol, p->err, p->at, "missing action or filter after '%s:'",
				      name);
	is_filter = is_arg(t);
	if (is_filter) {
		rc = parse_filter(p, &has_final, &act);
	} else {
		has_final = true;
		rc = parse_action(p, &act);
	}
	if (rc)
		return rc;
	t = policy_lex_peek(p);
	if (t->type != T_END)
		return policy_fail_at(p->pol, p->err, p->at,
				      "unexpected %s after the rule for '%s'",
				      policy_lex_describe(t).s, name);
	rc = find_rule(p, nr, name, &r);
	if (rc)
		return rc;
	return merge_statement(p, r, is_filter, has_final, act);
}
