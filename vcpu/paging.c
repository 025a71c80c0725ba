#include "vcpu/paging.h"
#include "core/guest_mem.h"

#define CR0_PG	 BIT(31)
#define CR4_PSE	 BIT(4)
#define CR4_PAE	 BIT(5)
#define CR4_LA57 BIT(12)
#define EFER_LMA BIT(10)

#define PTE_P  BIT(0)
#define PTE_PS BIT(7)
/* Physical address bits of a 64-bit entry (12..51); above them sit NX and software bits. */
#define PTE_ADDR 0x000ffffffffff000ull

void paging_regs_from_sregs(const struct kvm_sregs *s, struct paging_regs *out)
{
	*out = (struct paging_regs){.cr0 = s->cr0, .cr3 = s->cr3, .cr4 = s->cr4, .efer = s->efer};
}

static int read_entry(const struct guest_mem *m, uint64_t gpa, unsigned size, uint64_t *e)
{
	uint8_t b[8];
	int ret = guest_mem_read(m, gpa, b, size);

	if (ret < 0)
		return -EFAULT;
	*e = get_le(b, size);
	return 0;
}

static void done(uint64_t base, uint64_t page, uint64_t gva, uint64_t *gpa, uint64_t *left)
{
	uint64_t off = gva & (page - 1);

	*gpa = (base & ~(page - 1)) | off;
	*left = page - off;
}

/* Long mode: 4 or 5 levels of 512 eight-byte entries; 1 GiB and 2 MiB leaves. */
static int walk_long(const struct guest_mem *m, const struct paging_regs *r, uint64_t gva,
		     uint64_t *gpa, uint64_t *left)
{
	unsigned levels = (r->cr4 & CR4_LA57) ? 5 : 4;
	unsigned unused = 64 - (12 + 9 * levels); /* bits above the top index: a sign extension */
	uint64_t table = r->cr3 & PTE_ADDR;

	if ((uint64_t)((int64_t)(gva << unused) >> unused) != gva)
		return -EFAULT;
	for (unsigned level = levels; level >= 1; level--) {
		unsigned shift = 12 + 9 * (level - 1);
		uint64_t e;

		if (read_entry(m, table + ((gva >> shift) & 0x1ff) * 8, 8, &e) < 0)
			return -EFAULT;
		if (!(e & PTE_P))
			return -EFAULT;
		if (level == 1 || ((e & PTE_PS) && level <= 3)) {
			done(e & PTE_ADDR, 1ull << shift, gva, gpa, left);
			return 0;
		}
		if (e & PTE_PS) /* reserved in the top levels: the MMU would fault */
			return -EFAULT;
		table = e & PTE_ADDR;
	}
	return -EFAULT;
}

/* PAE: four PDPTEs at CR3, then 512-entry directories and tables of 8-byte entries. */
static int walk_pae(const struct guest_mem *m, const struct paging_regs *r, uint64_t gva,
		    uint64_t *gpa, uint64_t *left)
{
	uint64_t e;

	if (gva > 0xffffffffull)
		return -EFAULT;
	if (read_entry(m, (r->cr3 & 0xffffffe0ull) + ((gva >> 30) & 3) * 8, 8, &e) < 0 ||
	    !(e & PTE_P))
		return -EFAULT;
	if (read_entry(m, (e & PTE_ADDR) + ((gva >> 21) & 0x1ff) * 8, 8, &e) < 0 || !(e & PTE_P))
		return -EFAULT;
	if (e & PTE_PS) {
		done(e & PTE_ADDR, MiB(2), gva, gpa, left);
		return 0;
	}
	if (read_entry(m, (e & PTE_ADDR) + ((gva >> 12) & 0x1ff) * 8, 8, &e) < 0 || !(e & PTE_P))
		return -EFAULT;
	done(e & PTE_ADDR, KiB(4), gva, gpa, left);
	return 0;
}

/* 32-bit paging: 1024 four-byte entries per level; 4 MiB pages with CR4.PSE (PSE-36 too). */
static int walk_32(const struct guest_mem *m, const struct paging_regs *r, uint64_t gva,
		   uint64_t *gpa, uint64_t *left)
{
	uint64_t e;

	if (gva > 0xffffffffull)
		return -EFAULT;
	if (read_entry(m, (r->cr3 & 0xfffff000ull) + ((gva >> 22) & 0x3ff) * 4, 4, &e) < 0 ||
	    !(e & PTE_P))
		return -EFAULT;
	if ((e & PTE_PS) && (r->cr4 & CR4_PSE)) {
		/* Bits 13..20 of the entry are physical address bits 32..39. */
		done((e & 0xffc00000ull) | (((e >> 13) & 0xff) << 32), MiB(4), gva, gpa, left);
		return 0;
	}
	if (read_entry(m, (e & 0xfffff000ull) + ((gva >> 12) & 0x3ff) * 4, 4, &e) < 0 ||
	    !(e & PTE_P))
		return -EFAULT;
	done(e & 0xfffff000ull, KiB(4), gva, gpa, left);
	return 0;
}

int paging_translate(const struct guest_mem *m, const struct paging_regs *r, uint64_t gva,
		     uint64_t *gpa, uint64_t *left)
{
	if (!(r->cr0 & CR0_PG)) {
		/* Linear is physical, and has 32 bits (long mode needs paging). */
		if (gva > 0xffffffffull)
			return -EFAULT;
		done(gva, KiB(4), gva, gpa, left);
		return 0;
	}
	if (r->efer & EFER_LMA)
		return walk_long(m, r, gva, gpa, left);
	if (r->cr4 & CR4_PAE)
		return walk_pae(m, r, gva, gpa, left);
	return walk_32(m, r, gva, gpa, left);
}
