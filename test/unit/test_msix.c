/*
 * MSI-X table and PBA emulation with fake KVM hooks: when a vector's irqfd is attached to its
 * GSI, what route it carries, and the pending bits a guest sees while it is masked.
 */
#include "core/msix.h"
#include "test/unit/testutil.h"

#include <string.h>
#include <sys/eventfd.h>

#define NVEC	 4
#define MSI_ADDR 0xfee00000u
#define GSI(i)	 (100u + (i))

struct fake_kvm {
	unsigned routes, attaches, detaches;
	int attach_ret; /* what the attach hook returns */
	bool attached[NVEC];
	bool valid[NVEC];
	uint64_t addr[NVEC];
	uint32_t data[NVEC];
	bool route_before_attach; /* the vector's route was set before its last attach */
	bool routed_since_attach[NVEC];
};

static int fake_route(void *ctx, uint32_t gsi, bool valid, uint64_t addr, uint32_t data)
{
	struct fake_kvm *k = ctx;
	unsigned i = gsi - GSI(0);

	ck_assert_uint_lt(i, NVEC);
	k->routes++;
	k->valid[i] = valid;
	k->addr[i] = addr;
	k->data[i] = data;
	k->routed_since_attach[i] = true;
	return 0;
}

static int fake_attach(void *ctx, int fd, uint32_t gsi, bool attach)
{
	struct fake_kvm *k = ctx;
	unsigned i = gsi - GSI(0);

	ck_assert_uint_lt(i, NVEC);
	ck_assert_int_ge(fd, 0);
	if (k->attach_ret)
		return k->attach_ret;
	if (attach) {
		ck_assert(!k->attached[i]);
		k->attaches++;
		k->route_before_attach = k->routed_since_attach[i];
		k->routed_since_attach[i] = false;
	} else {
		ck_assert(k->attached[i]);
		k->detaches++;
	}
	k->attached[i] = attach;
	return 0;
}

static const struct msix_ops fake_ops = {.route = fake_route, .attach = fake_attach};

struct env {
	struct msix m;
	struct fake_kvm k;
	int fds[NVEC];
	uint32_t gsis[NVEC];
};

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	for (unsigned i = 0; i < NVEC; i++) {
		e->fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ck_assert_int_ge(e->fds[i], 0);
		e->gsis[i] = GSI(i);
	}
	msix_init(&e->m, NVEC, e->fds, e->gsis, &fake_ops, &e->k);
}

static void env_destroy(struct env *e)
{
	for (unsigned i = 0; i < NVEC; i++)
		close(e->fds[i]);
}

static uint32_t tbl_rd(struct env *e, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	ck_assert_int_eq(msix_table_access(&e->m, off, &v, 4, false), 0);
	return v;
}

static void tbl_wr(struct env *e, uint64_t off, uint32_t v)
{
	ck_assert_int_eq(msix_table_access(&e->m, off, &v, 4, true), 0);
}

/* Programs vector i as Linux does: address, data, then unmask. */
static void program(struct env *e, unsigned i, uint32_t addr, uint32_t data, bool unmask)
{
	tbl_wr(e, i * 16 + 0, addr);
	tbl_wr(e, i * 16 + 4, 0);
	tbl_wr(e, i * 16 + 8, data);
	if (unmask)
		tbl_wr(e, i * 16 + 12, 0);
}

static uint8_t pba(struct env *e)
{
	uint64_t v = ~0ull;

	ck_assert_int_eq(msix_pba_access(&e->m, 0, &v, 8, false), 0);
	ck_assert_uint_eq(v >> 8, 0);
	return (uint8_t)v;
}

START_TEST(vectors_start_masked)
{
	struct env e;

	env_init(&e);
	ck_assert_uint_eq(msix_table_size(&e.m), NVEC * 16);
	ck_assert_uint_eq(msix_pba_size(&e.m), 8);
	for (unsigned i = 0; i < NVEC; i++) {
		ck_assert_uint_eq(tbl_rd(&e, i * 16 + 0), 0);
		ck_assert_uint_eq(tbl_rd(&e, i * 16 + 4), 0);
		ck_assert_uint_eq(tbl_rd(&e, i * 16 + 8), 0);
		ck_assert_uint_eq(tbl_rd(&e, i * 16 + 12), MSIX_CTRL_MASKBIT);
	}
	/* Enabling MSI-X alone attaches nothing: every vector is still masked. */
	msix_set_control(&e.m, true, false);
	ck_assert_uint_eq(e.k.attaches, 0);
	ck_assert_uint_eq(pba(&e), 0);
	env_destroy(&e);
}
END_TEST

START_TEST(enable_and_unmask_attaches_with_route)
{
	struct env e;

	env_init(&e);
	program(&e, 1, MSI_ADDR | 0x1000, 0x4041, true);
	/* Not enabled yet: programmed and unmasked, still detached. */
	ck_assert_uint_eq(e.k.attaches, 0);
	msix_set_control(&e.m, true, false);
	ck_assert_uint_eq(e.k.attaches, 1);
	ck_assert(e.k.attached[1]);
	ck_assert(e.k.route_before_attach);
	ck_assert(e.k.valid[1]);
	ck_assert_uint_eq(e.k.addr[1], MSI_ADDR | 0x1000);
	ck_assert_uint_eq(e.k.data[1], 0x4041);
	ck_assert(!e.k.attached[0] && !e.k.attached[2] && !e.k.attached[3]);

	/* Disabling MSI-X detaches. */
	msix_set_control(&e.m, false, false);
	ck_assert(!e.k.attached[1]);
	ck_assert_uint_eq(e.k.detaches, 1);
	env_destroy(&e);
}
END_TEST

/* Linux programs the vector while masked and unmasks it last (enabled already). */
START_TEST(unmask_after_enable_attaches)
{
	struct env e;

	env_init(&e);
	msix_set_control(&e.m, true, false);
	program(&e, 0, MSI_ADDR, 0x30, false);
	ck_assert(!e.k.attached[0]);
	tbl_wr(&e, 12, 0);
	ck_assert(e.k.attached[0]);
	ck_assert(e.k.route_before_attach);
	ck_assert_uint_eq(e.k.data[0], 0x30);
	env_destroy(&e);
}
END_TEST

START_TEST(only_valid_msi_addresses_attach)
{
	static const struct {
		uint32_t lo, hi;
	} bad[] = {{0, 0}, {0xfed00000u, 0}, {0xfef00000u, 0}, {MSI_ADDR, 1}, {0x12345678u, 0}};
	struct env e;

	env_init(&e);
	msix_set_control(&e.m, true, false);
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		tbl_wr(&e, 0, bad[i].lo);
		tbl_wr(&e, 4, bad[i].hi);
		tbl_wr(&e, 8, 0x41);
		tbl_wr(&e, 12, 0);
		ck_assert_msg(!e.k.attached[0], "address 0x%x:%x attached", bad[i].hi, bad[i].lo);
		ck_assert(!e.k.valid[0]);
		tbl_wr(&e, 12, 1);
	}
	/* Fixing the address of an unmasked vector attaches it. */
	tbl_wr(&e, 12, 0);
	tbl_wr(&e, 4, 0);
	tbl_wr(&e, 0, MSI_ADDR | 0xff000);
	ck_assert(e.k.attached[0]);
	ck_assert(e.k.valid[0]);
	/* and breaking it again detaches it */
	tbl_wr(&e, 0, 0);
	ck_assert(!e.k.attached[0]);
	ck_assert(!e.k.valid[0]);
	env_destroy(&e);
}
END_TEST

START_TEST(function_mask_detaches_all)
{
	struct env e;

	env_init(&e);
	for (unsigned i = 0; i < NVEC; i++)
		program(&e, i, MSI_ADDR, 0x40 + i, true);
	msix_set_control(&e.m, true, false);
	ck_assert_uint_eq(e.k.attaches, NVEC);
	msix_set_control(&e.m, true, true);
	for (unsigned i = 0; i < NVEC; i++)
		ck_assert(!e.k.attached[i]);
	/* Per-vector masks are untouched by the function mask. */
	ck_assert_uint_eq(tbl_rd(&e, 12), 0);
	msix_set_control(&e.m, true, false);
	for (unsigned i = 0; i < NVEC; i++)
		ck_assert(e.k.attached[i]);
	ck_assert_uint_eq(e.k.attaches, 2 * NVEC);
	env_destroy(&e);
}
END_TEST

START_TEST(per_vector_mask)
{
	struct env e;

	env_init(&e);
	msix_set_control(&e.m, true, false);
	program(&e, 0, MSI_ADDR, 0x40, true);
	program(&e, 2, MSI_ADDR, 0x42, true);
	ck_assert(e.k.attached[0] && e.k.attached[2]);
	tbl_wr(&e, 2 * 16 + 12, MSIX_CTRL_MASKBIT);
	ck_assert(e.k.attached[0]);
	ck_assert(!e.k.attached[2]);
	ck_assert_uint_eq(tbl_rd(&e, 2 * 16 + 12), MSIX_CTRL_MASKBIT);
	/* Only the mask bit of vector control is writable. */
	tbl_wr(&e, 12, 0xfffffffe);
	ck_assert_uint_eq(tbl_rd(&e, 12), 0);
	ck_assert(e.k.attached[0]);
	tbl_wr(&e, 12, 0xffffffff);
	ck_assert_uint_eq(tbl_rd(&e, 12), MSIX_CTRL_MASKBIT);
	ck_assert(!e.k.attached[0]);
	env_destroy(&e);
}
END_TEST

START_TEST(route_follows_address_and_data)
{
	struct env e;

	env_init(&e);
	msix_set_control(&e.m, true, false);
	program(&e, 3, MSI_ADDR, 0x40, true);
	ck_assert_uint_eq(e.k.data[3], 0x40);
	/* An attached vector retargeted (irq affinity change) gets the new route at once. */
	tbl_wr(&e, 3 * 16 + 8, 0x51);
	ck_assert_uint_eq(e.k.data[3], 0x51);
	tbl_wr(&e, 3 * 16 + 0, MSI_ADDR | (2u << 12));
	ck_assert_uint_eq(e.k.addr[3], MSI_ADDR | (2u << 12));
	ck_assert(e.k.attached[3]);
	/* A masked vector's new message is what it delivers once unmasked. */
	tbl_wr(&e, 3 * 16 + 12, 1);
	tbl_wr(&e, 3 * 16 + 8, 0x62);
	tbl_wr(&e, 3 * 16 + 12, 0);
	ck_assert(e.k.attached[3]);
	ck_assert_uint_eq(e.k.data[3], 0x62);
	ck_assert_uint_eq(tbl_rd(&e, 3 * 16 + 8), 0x62);
	env_destroy(&e);
}
END_TEST

/* A device interrupt on a masked vector is pending, and delivered (attached) at unmask. */
START_TEST(pba_shows_pending_while_masked)
{
	struct env e;
	uint8_t b = 0xff;

	env_init(&e);
	msix_set_control(&e.m, true, false);
	program(&e, 0, MSI_ADDR, 0x40, false);
	program(&e, 2, MSI_ADDR, 0x42, false);
	ck_assert_uint_eq(pba(&e), 0);
	ck_assert_int_eq(eventfd_signal(e.fds[0]), 0);
	ck_assert_int_eq(eventfd_signal(e.fds[2]), 0);
	ck_assert_uint_eq(pba(&e), 0x05);
	/* Byte reads of the PBA work too. */
	ck_assert_int_eq(msix_pba_access(&e.m, 0, &b, 1, false), 0);
	ck_assert_uint_eq(b, 0x05);
	/* The PBA is read-only. */
	b = 0;
	ck_assert_int_eq(msix_pba_access(&e.m, 0, &b, 1, true), 0);
	ck_assert_uint_eq(pba(&e), 0x05);
	/* Unmasking vector 2 hands its eventfd to KVM (which then delivers it). */
	tbl_wr(&e, 2 * 16 + 12, 0);
	ck_assert(e.k.attached[2]);
	ck_assert_uint_eq(pba(&e), 0x01);
	/* With the function masked, the pending interrupt stays visible. */
	msix_set_control(&e.m, true, true);
	ck_assert_uint_eq(pba(&e), 0x05);
	env_destroy(&e);
}
END_TEST

/* If KVM refuses the attach, the vector stays detached and its interrupts stay pending. */
START_TEST(failed_attach_keeps_vector_detached)
{
	struct env e;

	env_init(&e);
	e.k.attach_ret = -EBADF;
	msix_set_control(&e.m, true, false);
	program(&e, 1, MSI_ADDR, 0x40, true);
	ck_assert(!e.k.attached[1]);
	ck_assert_int_eq(eventfd_signal(e.fds[1]), 0);
	ck_assert_uint_eq(pba(&e), 0x02);
	/* The next change retries. */
	e.k.attach_ret = 0;
	tbl_wr(&e, 16 + 8, 0x41);
	ck_assert(e.k.attached[1]);
	ck_assert_uint_eq(pba(&e), 0);
	env_destroy(&e);
}
END_TEST

START_TEST(dword_and_qword_accesses_only)
{
	struct env e;
	uint64_t q;
	uint16_t w = 0xffff;
	uint8_t b = 0xff;

	env_init(&e);
	/* A qword write covers address low and high; a qword read returns both. */
	q = ((uint64_t)0 << 32) | MSI_ADDR;
	ck_assert_int_eq(msix_table_access(&e.m, 16, &q, 8, true), 0);
	q = ((uint64_t)MSIX_CTRL_MASKBIT << 32) | 0x77;
	ck_assert_int_eq(msix_table_access(&e.m, 16 + 8, &q, 8, true), 0);
	ck_assert_uint_eq(tbl_rd(&e, 16), MSI_ADDR);
	ck_assert_uint_eq(tbl_rd(&e, 16 + 8), 0x77);
	q = 0;
	ck_assert_int_eq(msix_table_access(&e.m, 16, &q, 8, false), 0);
	ck_assert_uint_eq(q, MSI_ADDR);
	/* Byte and word writes are dropped; reads of those sizes give 0. */
	ck_assert_int_eq(msix_table_access(&e.m, 16 + 8, &w, 2, true), 0);
	ck_assert_int_eq(msix_table_access(&e.m, 16 + 8, &b, 1, true), 0);
	ck_assert_uint_eq(tbl_rd(&e, 16 + 8), 0x77);
	ck_assert_int_eq(msix_table_access(&e.m, 16 + 8, &w, 2, false), 0);
	ck_assert_uint_eq(w, 0);
	ck_assert_int_eq(msix_table_access(&e.m, 16 + 8, &b, 1, false), 0);
	ck_assert_uint_eq(b, 0);
	/* Misaligned dwords are dropped too. */
	tbl_wr(&e, 16 + 6, 0xffffffff);
	ck_assert_uint_eq(tbl_rd(&e, 16 + 6), 0);
	ck_assert_uint_eq(tbl_rd(&e, 16 + 4), 0);
	ck_assert_uint_eq(tbl_rd(&e, 16 + 8), 0x77);
	env_destroy(&e);
}
END_TEST

/* Offsets past the table read as 0 and writes there change nothing. */
START_TEST(out_of_range_offsets)
{
	static const uint64_t offs[] = {NVEC * 16, NVEC * 16 + 4, 0x1000, 0xfffffff0};
	struct env e;

	env_init(&e);
	for (unsigned i = 0; i < ARRAY_SIZE(offs); i++) {
		uint32_t v = 0xffffffff;

		ck_assert_int_eq(msix_table_access(&e.m, offs[i], &v, 4, true), 0);
		ck_assert_int_eq(msix_table_access(&e.m, offs[i], &v, 4, false), 0);
		ck_assert_msg(v == 0, "read at 0x%llx gave 0x%x", (unsigned long long)offs[i], v);
	}
	/* A qword straddling the table end is refused as a whole. */
	{
		uint64_t q = ~0ull;

		ck_assert_int_eq(msix_table_access(&e.m, NVEC * 16 - 4, &q, 8, true), 0);
		ck_assert_uint_eq(tbl_rd(&e, NVEC * 16 - 4), MSIX_CTRL_MASKBIT);
	}
	for (unsigned i = 0; i < NVEC; i++)
		ck_assert_uint_eq(tbl_rd(&e, i * 16 + 12), MSIX_CTRL_MASKBIT);
	ck_assert_uint_eq(e.k.routes + e.k.attaches, 0);
	/* PBA bytes past the vectors read 0 even with every vector pending. */
	for (unsigned i = 0; i < NVEC; i++)
		ck_assert_int_eq(eventfd_signal(e.fds[i]), 0);
	{
		uint64_t v = ~0ull;

		ck_assert_int_eq(msix_pba_access(&e.m, 8, &v, 8, false), 0);
		ck_assert_uint_eq(v, 0);
	}
	ck_assert_uint_eq(pba(&e), 0x0f);
	env_destroy(&e);
}
END_TEST

/*
 * BUG (core/msix.c, msix_table_access): the bound check `off + len > msix_table_size(m)`
 * wraps for an offset near 2^64 (e.g. off = 0xfffffffffffffffc, len = 4: off + len == 0), so
 * the access goes to m->vec[off / 16], far outside the table (SIGBUS here; UBSan: index
 * 1152921504606846975 out of bounds). Not reachable through core/pci.c today (bar_handler
 * checks the range first), but the function's contract is to refuse out-of-range offsets.
 * Expected: reads give 0, writes are dropped.
 */
START_TEST(offset_near_top_refused)
{
	static const uint64_t offs[] = {UINT64_MAX - 3, UINT64_MAX - 7};
	struct env e;

	env_init(&e);
	for (unsigned i = 0; i < ARRAY_SIZE(offs); i++) {
		uint64_t q = ~0ull;
		uint32_t v = 0xffffffff;

		ck_assert_int_eq(msix_table_access(&e.m, offs[i], &v, 4, false), 0);
		ck_assert_uint_eq(v, 0);
		ck_assert_int_eq(msix_table_access(&e.m, offs[i], &q, 8, false), 0);
		ck_assert_uint_eq(q, 0);
		ck_assert_int_eq(msix_table_access(&e.m, offs[i], &v, 4, true), 0);
	}
	env_destroy(&e);
}
END_TEST

/* More vectors than PCI_MAX_VECTORS are clamped, never indexed past the array. */
START_TEST(vector_count_clamped)
{
	int fds[PCI_MAX_VECTORS + 8];
	uint32_t gsis[PCI_MAX_VECTORS + 8];
	struct fake_kvm k = {0};
	struct msix m;

	for (unsigned i = 0; i < ARRAY_SIZE(fds); i++) {
		fds[i] = -1;
		gsis[i] = GSI(0);
	}
	msix_init(&m, ARRAY_SIZE(fds), fds, gsis, &fake_ops, &k);
	ck_assert_uint_eq(m.nr, PCI_MAX_VECTORS);
	ck_assert_uint_eq(msix_table_size(&m), PCI_MAX_VECTORS * 16);
	ck_assert_uint_eq(msix_pba_size(&m), PCI_MAX_VECTORS / 8);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("msix");
	TCase *tc = tcase_create("core"), *bugs;

	tcase_add_test(tc, vectors_start_masked);
	tcase_add_test(tc, enable_and_unmask_attaches_with_route);
	tcase_add_test(tc, unmask_after_enable_attaches);
	tcase_add_test(tc, only_valid_msi_addresses_attach);
	tcase_add_test(tc, function_mask_detaches_all);
	tcase_add_test(tc, per_vector_mask);
	tcase_add_test(tc, route_follows_address_and_data);
	tcase_add_test(tc, pba_shows_pending_while_masked);
	tcase_add_test(tc, failed_attach_keeps_vector_detached);
	tcase_add_test(tc, dword_and_qword_accesses_only);
	tcase_add_test(tc, out_of_range_offsets);
	tcase_add_test(tc, vector_count_clamped);
	suite_add_tcase(s, tc);
	/* Tests that fail until the bug they describe is fixed (see their comments). */
	bugs = tcase_create("bugs");
	tcase_add_test(bugs, offset_near_top_refused);
	suite_add_tcase(s, bugs);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
