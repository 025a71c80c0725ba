/*
 * Initial register state and the tables it points at. The GDT follows the Linux 64-bit boot
 * protocol (__BOOT_CS = 0x10, __BOOT_DS = 0x18); for PVH the same selectors hold flat 32-bit
 * segments. Long mode gets an identity map of the first 4 GiB with 2 MiB pages, so the guest
 * can reach RAM, the PCI windows, the IOAPIC and the LAPIC before it builds its own tables.
 */
#include "vcpu/vcpu.h"
#include "core/guest_mem.h"
#include "core/layout.h"

#include <string.h>

#define SEL_CODE 0x10
#define SEL_DATA 0x18
#define SEL_TSS	 0x20

#define CR0_PE	 (1ull << 0)
#define CR0_ET	 (1ull << 4)
#define CR0_PG	 (1ull << 31)
#define CR4_PAE	 (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

#define PTE_P  (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_PS (1ull << 7)

/* Packs a GDT descriptor from flags (type/S/DPL/P in bits 0-7, AVL/L/DB/G in bits 12-15). */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (uint64_t)(limit & 0x0000ffffu);
}

/* Unpacks a descriptor into the segment KVM expects in sregs. */
static struct kvm_segment segment_from(uint64_t d, uint16_t sel)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
	bool g = (d >> 55) & 1;

	return (struct kvm_segment){
		.base = (uint32_t)(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000)),
		.limit = g ? (limit << 12) | 0xfff : limit,
		.selector = sel,
		.type = (d >> 40) & 0xf,
		.present = (d >> 47) & 1,
		.dpl = (d >> 45) & 3,
		.db = (d >> 54) & 1,
		.s = (d >> 44) & 1,
		.l = (d >> 53) & 1,
		.g = g,
		.avl = (d >> 52) & 1,
	};
}

static int write_page_tables(const struct guest_mem *m)
{
	uint64_t pml4e = LAYOUT_PDPT | PTE_P | PTE_RW;
	int ret;

	ret = guest_mem_fill(m, LAYOUT_PML4, 0, 0x6000);
	if (ret < 0)
		return ret;
	ret = guest_mem_write(m, LAYOUT_PML4, &pml4e, sizeof(pml4e));
	for (uint64_t i = 0; ret == 0 && i < 4; i++) {
		uint64_t pdpte = (LAYOUT_PD + i * 0x1000) | PTE_P | PTE_RW;

		ret = guest_mem_write(m, LAYOUT_PDPT + i * 8, &pdpte, sizeof(pdpte));
	}
	for (uint64_t i = 0; ret == 0 && i < 4 * 512; i++) {
		uint64_t pde = (i << 21) | PTE_P | PTE_RW | PTE_PS;

		ret = guest_mem_write(m, LAYOUT_PD + i * 8, &pde, sizeof(pde));
	}
	return ret;
}

int vcpu_boot_state(const struct guest_mem *m, const struct vcpu_boot *boot, struct kvm_regs *regs,
		    struct kvm_sregs *sregs)
{
	bool lm = boot->mode == VCPU_BOOT_LONG64;
	uint64_t gdt[5] = {
		0,
		0,
		lm ? gdt_entry(0xa09b, 0, 0xfffff) : gdt_entry(0xc09b, 0, 0xfffff),
		gdt_entry(0xc093, 0, 0xfffff),
		gdt_entry(0x808b, 0, 0xfffff),
	};
	uint64_t idt = 0;
	struct kvm_segment data;
	int ret;

	ret = guest_mem_write(m, LAYOUT_GDT, gdt, sizeof(gdt));
	if (ret == 0)
		ret = guest_mem_write(m, LAYOUT_IDT, &idt, sizeof(idt));
	if (ret == 0 && lm)
		ret = write_page_tables(m);
	if (ret < 0)
		return ret;

	sregs->gdt.base = LAYOUT_GDT;
	sregs->gdt.limit = sizeof(gdt) - 1;
	sregs->idt.base = LAYOUT_IDT;
	sregs->idt.limit = sizeof(idt) - 1;
	sregs->cs = segment_from(gdt[2], SEL_CODE);
	data = segment_from(gdt[3], SEL_DATA);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->tr = segment_from(gdt[4], SEL_TSS);
	if (!lm) {
		/* PVH: the TSS must be a 32-bit TSS with limit 0x67. */
		sregs->tr.limit = 0x67;
		sregs->tr.type = 0xb;
	}
	if (lm) {
		sregs->cr0 = CR0_PE | CR0_ET | CR0_PG;
		sregs->cr3 = LAYOUT_PML4;
		sregs->cr4 = CR4_PAE;
		sregs->efer = EFER_LME | EFER_LMA;
	} else {
		sregs->cr0 = CR0_PE | CR0_ET;
		sregs->cr3 = 0;
		sregs->cr4 = 0;
		sregs->efer = 0;
	}

	memset(regs, 0, sizeof(*regs));
	regs->rflags = 0x2;
	regs->rip = boot->entry;
	if (lm) {
		regs->rsp = LAYOUT_BOOT_STACK;
		regs->rbp = LAYOUT_BOOT_STACK;
		regs->rsi = boot->zero_page;
	} else {
		regs->rbx = boot->start_info;
	}
	return 0;
}
