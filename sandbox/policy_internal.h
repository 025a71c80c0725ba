/*
 * Private to the policy compiler (sandbox/policy*.c): the parsed representation that
 * policy_parse builds and policy_emit reads, and the helpers both halves use.
 */
#ifndef CROSVM_SANDBOX_POLICY_INTERNAL_H
#define CROSVM_SANDBOX_POLICY_INTERNAL_H

#include "sandbox/policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_NAME 64

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

/* Grows *arr (of *cap elements of elem bytes) to hold at least need elements. */
int policy_grow(void **arr, size_t *cap, size_t need, size_t elem);

void policy_set_err(struct errbuf *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats "FILE:LINE: message" into the error buffer and returns -EINVAL. */
int policy_fail_at(const struct policy *pol, struct errbuf *e, struct where w, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
