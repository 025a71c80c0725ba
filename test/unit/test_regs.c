/*
 * The boot vCPU's first state (vcpu_boot_state): the 64-bit entry of the Linux boot protocol
 * and the PVH 32-bit entry, the GDT the selectors point into, and the identity page tables.
 */
#include "core/guest_mem.h"
#include "core/layout.h"
#include "vcpu/vcpu.h"
#include "test/unit/testutil.h"

#include <string.h>

#define CR0_PE	 (1ull << 0)
#define CR0_PG	 (1ull << 31)
#define CR4_PAE	 (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define PTE_P	 (1ull << 0)
#define PTE_RW	 (1ull << 1)
#define PTE_PS	 (1ull << 7)

#define ENTRY	  0x1000000ULL
#define ZERO_PAGE LAYOUT_ZERO_PAGE

static void mem_create(struct guest_mem *m, uint64_t size)
{
	const struct guest_region r[] = {{.gpa = 0, .size = size}};

	ck_assert_int_eq(guest_mem_create_regions(m, r, 1), 0);
}

static uint64_t rd64(const struct guest_mem *m, uint64_t gpa)
{
	uint64_t v;

	ck_assert_int_eq(guest_mem_read(m, gpa, &v, sizeof(v)), 0);
	return v;
}

/* Walks the guest's 4-level tables as the MMU does; -1 when va is not mapped. */
static int64_t translate(const struct guest_mem *m, uint64_t cr3, uint64_t va)
{
	uint64_t pml4e = rd64(m, (cr3 & ~0xfffull) + ((va >> 39) & 511) * 8);
	uint64_t pdpte, pde;

	if (!(pml4e & PTE_P))
		return -1;
	pdpte = rd64(m, (pml4e & 0xffffffffff000ull) + ((va >> 30) & 511) * 8);
	if (!(pdpte & PTE_P) || (pdpte & PTE_PS))
		return -1;
	pde = rd64(m, (pdpte & 0xffffffffff000ull) + ((va >> 21) & 511) * 8);
	if (!(pde & PTE_P) || !(pde & PTE_PS) || !(pde & PTE_RW))
		return -1;
	return (int64_t)((pde & 0xfffffffe00000ull) | (va & 0x1fffff));
}

static void check_flat(const struct kvm_segment *s, uint16_t sel)
{
	ck_assert_uint_eq(s->selector, sel);
	ck_assert_uint_eq(s->base, 0);
	ck_assert_uint_eq(s->limit, 0xffffffff);
	ck_assert_uint_eq(s->present, 1);
	ck_assert_uint_eq(s->dpl, 0);
	ck_assert_uint_eq(s->s, 1);
	ck_assert_uint_eq(s->g, 1);
}

START_TEST(long_mode_entry)
{
	struct vcpu_boot boot = {.mode = VCPU_BOOT_LONG64, .entry = ENTRY, .zero_page = ZERO_PAGE};
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct guest_mem m;

	mem_create(&m, 0x200000);
	memset(&regs, 0xcc, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	ck_assert_int_eq(vcpu_boot_state(&m, &boot, &regs, &sregs), 0);

	ck_assert_uint_eq(sregs.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
	ck_assert_uint_eq(sregs.cr4 & CR4_PAE, CR4_PAE);
	ck_assert_uint_eq(sregs.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
	ck_assert_uint_eq(sregs.cr3, LAYOUT_PML4);

	/* __BOOT_CS: 64-bit code (L=1, D=0); __BOOT_DS: flat data. */
	check_flat(&sregs.cs, 0x10);
	ck_assert_uint_eq(sregs.cs.l, 1);
	ck_assert_uint_eq(sregs.cs.db, 0);
	ck_assert_uint_eq(sregs.cs.type & 0x8, 0x8); /* code */
	ck_assert_uint_eq(sregs.cs.type & 0x2, 0x2); /* readable */
	check_flat(&sregs.ds, 0x18);
	ck_assert_uint_eq(sregs.ds.type & 0xa, 0x2); /* writable data */
	ck_assert_uint_eq(sregs.ss.selector, 0x18);
	ck_assert_uint_eq(sregs.es.selector, 0x18);
	ck_assert_uint_eq(sregs.fs.selector, 0x18);
	ck_assert_uint_eq(sregs.gs.selector, 0x18);
	ck_assert_uint_eq(sregs.tr.present, 1);
	ck_assert_uint_eq(sregs.tr.s, 0);
	ck_assert_uint_eq(sregs.tr.type, 0xb); /* busy TSS */

	ck_assert_uint_eq(sregs.gdt.base, LAYOUT_GDT);
	ck_assert_uint_ge(sregs.gdt.limit, 0x1f);
	ck_assert_uint_eq(sregs.idt.base, LAYOUT_IDT);

	ck_assert_uint_eq(regs.rip, ENTRY);
	ck_assert_uint_eq(regs.rsi, ZERO_PAGE);
	ck_assert_uint_eq(regs.rsp, LAYOUT_BOOT_STACK);
	ck_assert_uint_eq(regs.rflags, 0x2); /* interrupts off */
	ck_assert_uint_eq(regs.rax, 0);
	ck_assert_uint_eq(regs.rbx, 0);
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(pvh_entry)
{
	struct vcpu_boot boot = {
		.mode = VCPU_BOOT_PVH32, .entry = 0x1000040, .start_info = LAYOUT_PVH_START_INFO};
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct guest_mem m;

	mem_create(&m, 0x200000);
	memset(&regs, 0xcc, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	ck_assert_int_eq(vcpu_boot_state(&m, &boot, &regs, &sregs), 0);

	/* Protected mode, paging off, no long mode (PVH ABI). */
	ck_assert_uint_eq(sregs.cr0 & CR0_PE, CR0_PE);
	ck_assert_uint_eq(sregs.cr0 & CR0_PG, 0);
	ck_assert_uint_eq(sregs.cr4 & CR4_PAE, 0);
	ck_assert_uint_eq(sregs.efer & (EFER_LME | EFER_LMA), 0);

	/* Flat 32-bit segments at the same selectors. */
	check_flat(&sregs.cs, 0x10);
	ck_assert_uint_eq(sregs.cs.db, 1);
	ck_assert_uint_eq(sregs.cs.l, 0);
	ck_assert_uint_eq(sregs.cs.type & 0x8, 0x8);
	check_flat(&sregs.ds, 0x18);
	ck_assert_uint_eq(sregs.ds.db, 1);
	ck_assert_uint_eq(sregs.ss.selector, 0x18);
	ck_assert_uint_eq(sregs.ss.db, 1);
	/* A 32-bit busy TSS (the ABI requires TR to be valid). */
	ck_assert_uint_eq(sregs.tr.type, 0xb);
	ck_assert_uint_eq(sregs.tr.limit, 0x67);
	ck_assert_uint_eq(sregs.tr.present, 1);

	ck_assert_uint_eq(regs.rip, 0x1000040);
	ck_assert_uint_eq(regs.rbx, LAYOUT_PVH_START_INFO);
	ck_assert_uint_eq(regs.rflags, 0x2);
	ck_assert_uint_eq(regs.rsi, 0);
	guest_mem_destroy(&m);
}
END_TEST

/* The descriptors in guest memory are what sregs claims (the guest reloads them). */
START_TEST(gdt_in_guest_memory)
{
	struct vcpu_boot boot = {.mode = VCPU_BOOT_LONG64, .entry = ENTRY, .zero_page = ZERO_PAGE};
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct guest_mem m;

	mem_create(&m, 0x200000);
	ck_assert_int_eq(guest_mem_fill(&m, LAYOUT_GDT, 0xee, 0x40), 0);
	ck_assert_int_eq(vcpu_boot_state(&m, &boot, &regs, &sregs), 0);
	ck_assert_uint_eq(rd64(&m, LAYOUT_GDT + 0x00), 0); /* the null descriptor */
	/* The values of Linux's own boot GDT (GDT_ENTRY(0xa09b/0xc093, 0, 0xfffff)). */
	ck_assert_uint_eq(rd64(&m, LAYOUT_GDT + 0x10), 0x00af9b000000ffffULL);
	ck_assert_uint_eq(rd64(&m, LAYOUT_GDT + 0x18), 0x00cf93000000ffffULL);
	/* An empty IDT: any exception before the kernel sets one up is a triple fault. */
	ck_assert_uint_eq(sregs.idt.limit, 7);
	ck_assert_uint_eq(rd64(&m, sregs.idt.base), 0);

	boot = (struct vcpu_boot){.mode = VCPU_BOOT_PVH32, .entry = ENTRY};
	ck_assert_int_eq(vcpu_boot_state(&m, &boot, &regs, &sregs), 0);
	ck_assert_uint_eq(rd64(&m, LAYOUT_GDT + 0x10), 0x00cf9b000000ffffULL);
	ck_assert_uint_eq(rd64(&m, LAYOUT_GDT + 0x18), 0x00cf93000000ffffULL);
	guest_mem_destroy(&m);
}
END_TEST

/*
 * BUG (vcpu/regs.c, vcpu_boot_state): the GDT has five entries (40 bytes) at LAYOUT_GDT =
 * 0x500, i.e. up to 0x527, but the IDT is written at LAYOUT_IDT = 0x520, so the 8 zero bytes
 * of the IDT overwrite GDT entry 4, the TSS descriptor that selector 0x20 in TR refers to.
 * Expected: the descriptor at gdt.base + tr.selector is the present, busy TSS that sregs.tr
 * describes, and the GDT and IDT do not overlap; actual: that descriptor is all zeroes and
 * the two tables share 0x520..0x527. (crosvm has four GDT entries, 0x500..0x51f.)
 */
START_TEST(tss_descriptor_and_idt_do_not_overlap)
{
	struct vcpu_boot boot = {.mode = VCPU_BOOT_LONG64, .entry = ENTRY, .zero_page = ZERO_PAGE};
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct guest_mem m;
	uint64_t tss;

	mem_create(&m, 0x200000);
	ck_assert_int_eq(vcpu_boot_state(&m, &boot, &regs, &sregs), 0);
	ck_assert_uint_ge(sregs.gdt.limit, sregs.tr.selector + 7u);
	ck_assert(sregs.gdt.base + sregs.gdt.limit < sregs.idt.base ||
		  sregs.idt.base + sregs.idt.limit < sregs.gdt.base);
	tss = rd64(&m, sregs.gdt.base + sregs.tr.selector);
	ck_assert_uint_eq((tss >> 40) & 0xff, 0x8b); /* present, DPL 0, busy TSS */
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(identity_page_tables)
{
	static const uint64_t vas[] = {0,	   0x1000,     ENTRY,	   ZERO_PAGE,  0x3fffffff,
				       0x40000000, 0xd0000000, 0xfec00000, 0xfee00000, 0xffffffff};
	struct vcpu_boot boot = {.mode = VCPU_BOOT_LONG64, .entry = ENTRY, .zero_page = ZERO_PAGE};
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct guest_mem m;

	mem_create(&m, 0x200000);
	/* Old contents of the table pages must not leak into the new tables. */
	ck_assert_int_eq(guest_mem_fill(&m, LAYOUT_PML4, 0xff, 0x6000), 0);
	ck_assert_int_eq(vcpu_boot_state(&m, &boot, &regs, &sregs), 0);
	for (unsigned i = 0; i < ARRAY_SIZE(vas); i++)
		ck_assert_msg(translate(&m, sregs.cr3, vas[i]) == (int64_t)vas[i],
			      "va 0x%llx -> 0x%llx", (unsigned long long)vas[i],
			      (long long)translate(&m, sregs.cr3, vas[i]));
	/* Exactly the low 4 GiB: nothing above, and the upper half is empty. */
	ck_assert_int_eq(translate(&m, sregs.cr3, 0x100000000ULL), -1);
	ck_assert_int_eq(translate(&m, sregs.cr3, 0x8000000000ULL), -1);
	ck_assert_int_eq(translate(&m, sregs.cr3, 0xffffffff80000000ULL), -1);
	/* A few PDEs by hand: 2 MiB pages, present, writable, at gpa == va. */
	ck_assert_uint_eq(rd64(&m, LAYOUT_PD), PTE_P | PTE_RW | PTE_PS);
	ck_assert_uint_eq(rd64(&m, LAYOUT_PD + 8), 0x200000 | PTE_P | PTE_RW | PTE_PS);
	ck_assert_uint_eq(rd64(&m, LAYOUT_PD + 0x1000 + 8), 0x40200000 | PTE_P | PTE_RW | PTE_PS);
	ck_assert_uint_eq(rd64(&m, LAYOUT_PD + 0x3ff8), 0xffe00000 | PTE_P | PTE_RW | PTE_PS);
	guest_mem_destroy(&m);
}
END_TEST

/* Guest memory too small for the boot tables: an error, nothing written out of bounds. */
START_TEST(too_little_memory)
{
	struct vcpu_boot boot = {.mode = VCPU_BOOT_LONG64, .entry = ENTRY, .zero_page = ZERO_PAGE};
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct guest_mem m;
	static const struct guest_region hole[] = {{.gpa = 0x100000, .size = 0x100000}};

	mem_create(&m, 0xa000); /* the PDs at 0xb000 do not fit */
	ck_assert_int_eq(vcpu_boot_state(&m, &boot, &regs, &sregs), -EFAULT);
	guest_mem_destroy(&m);
	ck_assert_int_eq(guest_mem_create_regions(&m, hole, 1), 0);
	ck_assert_int_eq(vcpu_boot_state(&m, &boot, &regs, &sregs), -EFAULT);
	boot.mode = VCPU_BOOT_PVH32;
	ck_assert_int_eq(vcpu_boot_state(&m, &boot, &regs, &sregs), -EFAULT);
	guest_mem_destroy(&m);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("regs");
	TCase *tc = tcase_create("core"), *bugs;

	tcase_add_test(tc, long_mode_entry);
	tcase_add_test(tc, pvh_entry);
	tcase_add_test(tc, gdt_in_guest_memory);
	tcase_add_test(tc, identity_page_tables);
	tcase_add_test(tc, too_little_memory);
	suite_add_tcase(s, tc);
	/* Tests that fail until the bug they describe is fixed (see their comments). */
	bugs = tcase_create("bugs");
	tcase_add_test(bugs, tss_descriptor_and_idt_do_not_overlap);
	suite_add_tcase(s, bugs);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
