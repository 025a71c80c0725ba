/*
 * policy_emit: turns the rule list into libseccomp rules, one decision tree per syscall (the
 * comment below says why it is not one libseccomp rule per clause), with limits so that a
 * hostile policy cannot cost unbounded time, memory or filter size.
 */
#include "sandbox/policy_internal.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <linux/filter.h>

#define NARGS 6
/* Most libseccomp rules one syscall may need. */
#define MAX_RULES 1024

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
	return policy_fail_at(
		e->pol, e->err, e->rule->first,
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
	rc = policy_grow((void **)&l->pieces, &l->pieces_cap, l->npieces + 1, sizeof(*l->pieces));
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
	rc = policy_grow((void **)&l->group, &l->group_cap, l->ngroup + 1, sizeof(*l->group));
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
			return policy_fail_at(e->pol, e->err, e->rule->first,
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
			rc = policy_grow((void **)&l->atoms, &l->atoms_cap, l->natoms + 1,
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
		policy_set_err(err, "%s: cannot measure the compiled filter: %s", pol->files[0],
			       strerror(-rc));
		return rc;
	}
	rc = seccomp_export_bpf(ctx, fd);
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = -errno;
	if (rc != 0) {
		policy_set_err(err, "%s: cannot export the compiled filter: %s", pol->files[0],
			       strerror(-rc));
		goto out;
	}
	if ((uint64_t)st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
		policy_set_err(
			err,
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
		policy_set_err(&eb, "policy_emit: invalid arguments");
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
		policy_set_err(&eb, "%s: cannot set up the libseccomp context: %s", pol->files[0],
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
		policy_set_err(&eb, "%s: out of memory", pol->files[0]);
	if (ctx)
		seccomp_release(ctx);
	return rc;
}
