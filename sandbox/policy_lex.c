/*
 * Tokenizer of the policy compiler: one statement (its lines joined, comments removed) into
 * tokens for the rule grammar (policy_rule.c).
 */
#include "sandbox/policy_parser.h"

#include "core/util.h"

#include <stdio.h>
#include <string.h>

static bool is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool policy_lex_is_ident_char(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9') || c == '-';
}

bool policy_lex_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool policy_lex_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
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
		/* -1 (not a digit) becomes larger than any base. */
		unsigned d = (unsigned)hex_digit((unsigned char)s[i]);

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
	int rc = policy_grow((void **)&p->toks, &p->toks_cap, p->ntoks + 2, sizeof(*p->toks));

	if (rc)
		return rc;
	p->toks[p->ntoks++] = t;
	return 0;
}

int policy_lex(struct parser *p)
{
	const char *s = p->stmt;
	int rc;

	p->ntoks = 0;
	p->pos = 0;
	while (*s) {
		struct tok t = {.s = s, .len = 1};
		const char *e = s;

		if (policy_lex_is_space(*s)) {
			s++;
			continue;
		}
		if (is_ident_start(*s)) {
			while (policy_lex_is_ident_char(*e))
				e++;
			t.type = T_IDENT;
		} else if (policy_lex_is_digit(*s) || (*s == '-' && policy_lex_is_digit(s[1]))) {
			/* Take the whole word so "0x1g" is reported as one bad number. */
			e++;
			while (policy_lex_is_ident_char(*e) && *e != '-')
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
					return policy_fail_at(p->pol, p->err, p->at,
							      "unexpected character '%c'", c);
				return policy_fail_at(p->pol, p->err, p->at,
						      "unexpected character 0x%02x", c);
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

const struct tok *policy_lex_peek(const struct parser *p)
{
	return &p->toks[p->pos];
}

const struct tok *policy_lex_next(struct parser *p)
{
	const struct tok *t = &p->toks[p->pos];

	if (t->type != T_END)
		p->pos++;
	return t;
}

bool policy_lex_is_word(const struct tok *t, const char *word)
{
	return t->type == T_IDENT && strlen(word) == t->len && memcmp(t->s, word, t->len) == 0;
}

struct tok_desc policy_lex_describe(const struct tok *t)
{
	struct tok_desc d;

	if (t->type == T_END)
		snprintf(d.s, sizeof(d.s), "end of line");
	else
		snprintf(d.s, sizeof(d.s), "'%.*s'", (int)MIN(t->len, 40), t->s);
	return d;
}
