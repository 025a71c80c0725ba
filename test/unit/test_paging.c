/*
 * Guest virtual to physical addresses through page tables built here in guest RAM
 * (vcpu/paging.c): every paging mode, every page size, and every way a walk fails.
 */
#include "test/unit/testutil.h"

#include "core/guest_mem.h"
#include "vcpu/paging.h"

#define P    0x1ull
#define RW   0x2ull
#define PS   0x80ull
#define NX   (1ull << 63)
#define SOFT (0x7full << 52) /* software-available bits, not address bits */

#define CR0_PG	 (1ull << 31)
#define CR4_PSE	 (1ull << 4)
#define CR4_PAE	 (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

static struct guest_mem mem;

static void setup(void)
{
	const struct guest_region l[] = {{.gpa = 0, .size = 16ull << 20}};

	ck_assert_int_eq(guest_mem_create_regions(&mem, l, 1), 0);
}

static void teardown(void)
{
	guest_mem_destroy(&mem);
}

static void put64(uint64_t gpa, uint64_t v)
{
	ck_assert_int_eq(guest_mem_write(&mem, gpa, &v, 8), 0);
}

static void put32(uint64_t gpa, uint32_t v)
{
	ck_assert_int_eq(guest_mem_write(&mem, gpa, &v, 4), 0);
}

static void expect(const struct paging_regs *r, uint64_t gva, uint64_t gpa, uint64_t left)
{
	uint64_t got = 0, l = 0;

	ck_assert_msg(paging_translate(&mem, r, gva, &got, &l) == 0,
		      "gva 0x%llx does not translate", (unsigned long long)gva);
	ck_assert_msg(got == gpa, "gva 0x%llx: 0x%llx, not 0x%llx", (unsigned long long)gva,
		      (unsigned long long)got, (unsigned long long)gpa);
	ck_assert_uint_eq(l, left);
}

static void fails(const struct paging_regs *r, uint64_t gva)
{
	uint64_t got, l;

	ck_assert_msg(paging_translate(&mem, r, gva, &got, &l) == -EFAULT,
		      "gva 0x%llx translated to 0x%llx", (unsigned long long)gva,
		      (unsigned long long)got);
}

START_TEST(no_paging)
{
	const struct paging_regs r = {.cr0 = 1 /* PE */};

	expect(&r, 0x1234, 0x1234, 0x1000 - 0x234);
	expect(&r, 0xfffff000, 0xfffff000, 0x1000);
	fails(&r, 0x100000000ull);
}
END_TEST

START_TEST(four_levels)
{
	const struct paging_regs r = {.cr0 = CR0_PG | 1,
				      .cr3 = 0x10000 | 0x18 /* PCD, PWT: not address bits */,
				      .cr4 = CR4_PAE,
				      .efer = EFER_LME | EFER_LMA};

	/* 0xffffffff8xxxxxxx: PML4 511, PDPT 510. */
	put64(0x10000 + 511 * 8, 0x11000 | P | RW | SOFT);
	put64(0x11000 + 510 * 8, 0x12000 | P | RW);
	put64(0x12000 + 8 * 8, 0x13000 | P | RW);	    /* a table of 4 KiB pages */
	put64(0x13000 + 5 * 8, 0x200000 | P | NX | SOFT);   /* high bits are not address */
	put64(0x12000 + 9 * 8, 0x400000 | P | PS | 0x1000); /* 2 MiB page, PAT bit set */
	put64(0x10000 + 0 * 8, 0x14000 | P | RW);
	put64(0x14000 + 1 * 8, 0x80000000ull | P | PS | NX); /* 1 GiB page at 1 GiB */
	put64(0x10000 + 2 * 8, 0x15000 | P | PS);	     /* PS in a PML4 entry: reserved */
	put64(0x14000 + 2 * 8, 0x16000 | P);		     /* a directory outside RAM... */
	put64(0x16000 + 0, 0xd0000000ull | P);		     /* ...is where this one points */

	expect(&r, 0xffffffff81005123ull, 0x200123, 0x1000 - 0x123);
	expect(&r, 0xffffffff81234567ull, 0x434567, 0x200000 - 0x34567);
	expect(&r, 0x7fe01234, 0x80000000ull + 0x3fe01234, 0x40000000 - 0x3fe01234);
	/* Not present at each level. */
	fails(&r, 0x0000008000000000ull);     /* PML4 1 */
	fails(&r, 0xffffffff41000000ull);     /* PDPT 509 */
	fails(&r, 0xffffffff81400000ull);     /* PD 10 */
	fails(&r, 0xffffffff81006000ull);     /* PT 6 */
	fails(&r, 0x0000010000000000ull);     /* PS in the PML4 */
	fails(&r, 0x0000000080000000ull + 1); /* a page table outside RAM */
	fails(&r, 0x0000000080000000ull + 0x1000);
	/* Not canonical. */
	fails(&r, 0x0000800000000000ull);
	fails(&r, 0xffff7fffffffffffull);
}
END_TEST

START_TEST(table_outside_ram)
{
	const struct paging_regs r = {
		.cr0 = CR0_PG, .cr3 = 0x10000, .cr4 = CR4_PAE, .efer = EFER_LMA};

	put64(0x10000, 0x11000 | P);
	put64(0x11000, 0xe0000000ull | P); /* the directory would be in the PCI hole */
	fails(&r, 0x1000);
	put64(0x11000, 0xfff000ull | P); /* the last page of RAM: entries read fine */
	put64(0xfff000, 0x5000 | P | PS);
	expect(&r, 0x1000, 0x1000, 0x200000 - 0x1000);
}
END_TEST

START_TEST(five_levels)
{
	const struct paging_regs r = {
		.cr0 = CR0_PG, .cr3 = 0x20000, .cr4 = CR4_PAE | CR4_LA57, .efer = EFER_LMA};

	/* 0x0000800000000000 is canonical with 57 bits: PML5 0, PML4 256, PDPT 0. */
	put64(0x20000, 0x21000 | P);
	put64(0x21000 + 256 * 8, 0x22000 | P);
	put64(0x22000, 0x23000 | P);
	put64(0x23000, 0x600000 | P | PS);
	expect(&r, 0x0000800000012345ull, 0x612345, 0x200000 - 0x12345);
	/* The top: PML5 511 (0xff...), then the same tables. */
	put64(0x20000 + 511 * 8, 0x21000 | P);
	expect(&r, 0xffff800000000042ull, 0x600042, 0x200000 - 0x42);
	fails(&r, 0x0100000000000000ull);
	fails(&r, 0xfeffffffffffffffull);
}
END_TEST

START_TEST(pae)
{
	const struct paging_regs r = {.cr0 = CR0_PG | 1, .cr3 = 0x30020, .cr4 = CR4_PAE};

	put64(0x30020 + 2 * 8, 0x31000 | P);
	put64(0x31000 + 3 * 8, 0x600000 | P | PS);
	put64(0x31000 + 4 * 8, 0x32000 | P);
	put64(0x32000 + 7 * 8, 0x5000 | P | NX);
	expect(&r, 0x80601234, 0x601234, 0x200000 - 0x1234);
	expect(&r, 0x80807abc, 0x5abc, 0x1000 - 0xabc);
	fails(&r, 0x80808000); /* PT 8 */
	fails(&r, 0xc0000000); /* PDPTE 3 */
	fails(&r, 0x100000000ull);
}
END_TEST

START_TEST(thirty_two_bit)
{
	struct paging_regs r = {.cr0 = CR0_PG | 1, .cr3 = 0x40000, .cr4 = CR4_PSE};

	put32(0x40000 + 1 * 4, 0x00400000 | P | PS);
	put32(0x40000 + 2 * 4, 0x00800000 | (1u << 13) | P | PS); /* PSE-36: above 4 GiB */
	put32(0x40000 + 3 * 4, 0x41000 | P);
	put32(0x41000 + 4 * 4, 0x7000 | P);
	expect(&r, 0x00412345, 0x412345, 0x400000 - 0x12345);
	expect(&r, 0x00812345, 0x100812345ull, 0x400000 - 0x12345);
	expect(&r, 0x00c04abc, 0x7abc, 0x1000 - 0xabc);
	fails(&r, 0x00c05000);
	fails(&r, 0x01000000);
	fails(&r, 0x100000000ull);
	/* Without CR4.PSE the PS bit means nothing: the entry points to a page table. */
	r.cr4 = 0;
	put32(0x00400000 + 0x12 * 4, 0x9000 | P);
	expect(&r, 0x00412345, 0x9345, 0x1000 - 0x345);
}
END_TEST

START_TEST(from_sregs)
{
	struct kvm_sregs s = {.cr0 = 1, .cr3 = 2, .cr4 = 3, .efer = 4};
	struct paging_regs r;

	paging_regs_from_sregs(&s, &r);
	ck_assert_uint_eq(r.cr0, 1);
	ck_assert_uint_eq(r.cr3, 2);
	ck_assert_uint_eq(r.cr4, 3);
	ck_assert_uint_eq(r.efer, 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("paging");
	TCase *tc = tcase_create("walk");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, no_paging);
	tcase_add_test(tc, four_levels);
	tcase_add_test(tc, table_outside_ram);
	tcase_add_test(tc, five_levels);
	tcase_add_test(tc, pae);
	tcase_add_test(tc, thirty_two_bit);
	tcase_add_test(tc, from_sregs);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
