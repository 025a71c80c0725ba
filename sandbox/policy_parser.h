/*
 * Private to policy_parse: the parser state shared by the file reader (policy_parse.c), the
 * tokenizer (policy_lex.c) and the rule grammar (policy_rule.c).
 */
#ifndef CROSVM_SANDBOX_POLICY_PARSER_H
#define CROSVM_SANDBOX_POLICY_PARSER_H

#include "sandbox/policy_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* policy_lex.c: p->stmt into p->toks, ending with a T_END token. */
int policy_lex(struct parser *p);
const struct tok *policy_lex_peek(const struct parser *p);
const struct tok *policy_lex_next(struct parser *p);
bool policy_lex_is_word(const struct tok *t, const char *word);
bool policy_lex_is_ident_char(char c);
bool policy_lex_is_digit(char c);
bool policy_lex_is_space(char c);

/* A token for messages: quoted and cut to 40 characters, or "end of line". */
struct tok_desc {
	char s[48];
};

struct tok_desc policy_lex_describe(const struct tok *t);

/* policy_rule.c: the tokens of one statement, merged into its syscall's rule in p->pol. */
int policy_rule_parse(struct parser *p);

#endif
