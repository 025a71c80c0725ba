/*
 * A guest virtual (linear) address to a guest physical one, through the page tables a vCPU
 * uses now (its CR0, CR3, CR4 and EFER), the way its MMU would walk them: no paging, 32-bit
 * (with 4 MiB PSE pages), PAE, and long mode with 4 or 5 levels (2 MiB and 1 GiB pages). For
 * the debugger, which names memory by the addresses the guest's code uses. Page table entries
 * are read from guest RAM with every access checked; access rights are not (a debugger reads
 * what the kernel could map, present is all that matters).
 */
#ifndef CROSVM_VCPU_PAGING_H
#define CROSVM_VCPU_PAGING_H

#include <linux/kvm.h>
#include <stdint.h>
#include "core/util.h"

struct guest_mem;

/* The control registers that decide the walk (from struct kvm_sregs). */
struct paging_regs {
	uint64_t cr0, cr3, cr4, efer;
};

void paging_regs_from_sregs(const struct kvm_sregs *s, struct paging_regs *out);

/*
 * Translates gva: *gpa, and in *left the bytes from gva to the end of its page (so a caller
 * copies page by page). -EFAULT when gva is not canonical, not mapped, or a table is not in
 * RAM.
 */
int paging_translate(const struct guest_mem *m, const struct paging_regs *r, uint64_t gva,
		     uint64_t *gpa, uint64_t *left) MUST_CHECK;

#endif
