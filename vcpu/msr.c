/*
 * Boot MSRs and MTRRs. Each boot MSR is set on its own and only if KVM lists it: on PVM
 * hosts KVM refuses some MSRs it advertises (PLATFORM.md: 0x10a), and a refused optional MSR
 * must not stop the VM, so it is skipped with a debug log.
 *
 * The MTRRs are what firmware leaves behind on a PC (QEMU's guests read the same default):
 * enabled, fixed ranges enabled, default type write-back; the fixed ranges (the first MiB,
 * RAM in this VM) write-back; the 32-bit PCI hole [0xd0000000, 4 GiB) uncacheable through
 * variable ranges. They are set whenever the vCPU's CPUID has MTRR, although KVM's MSR index
 * list omits them (KVM emulates them for every vCPU); without them Linux logs "x86/PAT:
 * MTRRs disabled, skipping PAT initialization too" and loses write-combining.
 */
#include "vcpu/vcpu.h"
#include "core/kvm.h"
#include "core/layout.h"
#include "core/log.h"

#include <string.h>

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_STAR	      0xc0000081
#define MSR_LSTAR	      0xc0000082
#define MSR_CSTAR	      0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102
#define MSR_IA32_TSC	      0x10

#define MSR_MTRR_CAP	     0xfe
#define MSR_MTRR_PHYS_BASE0  0x200 /* base n at 0x200 + 2n, mask n at 0x201 + 2n */
#define MSR_MTRR_FIX64K	     0x250
#define MSR_MTRR_FIX16K_8000 0x258
#define MSR_MTRR_FIX16K_A000 0x259
#define MSR_MTRR_FIX4K_C000  0x268 /* .. 0x26f */

#define MISC_ENABLE_FAST_STRING 1ull
#define MTRR_CAP_VCNT_MASK	0xffull
#define MTRR_TYPE_UC		0ull
#define MTRR_FIXED_ALL_WB	0x0606060606060606ull
#define MTRR_MASK_VALID		(1ull << 11)
#define CPUID_1_EDX_MTRR	(1u << 12)
#define DEFAULT_PHYS_BITS	36

static const struct {
	uint32_t index;
	uint64_t value;
	bool bsp_only;
} boot_msrs[] = {
	{MSR_IA32_SYSENTER_CS, 0, false},
	{MSR_IA32_SYSENTER_ESP, 0, false},
	{MSR_IA32_SYSENTER_EIP, 0, false},
	{MSR_STAR, 0, false},
	{MSR_CSTAR, 0, false},
	{MSR_KERNEL_GS_BASE, 0, false},
	{MSR_SYSCALL_MASK, 0, false},
	{MSR_LSTAR, 0, false},
	{MSR_IA32_TSC, 0, true},
	{MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING, false},
};

static int add(struct kvm_msr_entry *out, unsigned max, unsigned *nr, uint32_t index,
	       uint64_t value)
{
	if (*nr >= max)
		return -ENOSPC;
	out[(*nr)++] = (struct kvm_msr_entry){.index = index, .data = value};
	return 0;
}

int vcpu_mtrr_msrs(unsigned phys_bits, unsigned var_count, struct kvm_msr_entry *out, unsigned max,
		   unsigned *nr)
{
	uint64_t phys_mask, start = LAYOUT_MEM_32BIT_GAP, end = LAYOUT_4G;
	unsigned var = 0;
	int ret;

	if (phys_bits < 32 || phys_bits > 52)
		return -EINVAL;
	phys_mask = (1ull << phys_bits) - 1;
	*nr = 0;
	ret = add(out, max, nr, MSR_MTRR_FIX64K, MTRR_FIXED_ALL_WB);
	if (ret == 0)
		ret = add(out, max, nr, MSR_MTRR_FIX16K_8000, MTRR_FIXED_ALL_WB);
	if (ret == 0)
		ret = add(out, max, nr, MSR_MTRR_FIX16K_A000, MTRR_FIXED_ALL_WB);
	for (uint32_t i = 0; ret == 0 && i < 8; i++)
		ret = add(out, max, nr, MSR_MTRR_FIX4K_C000 + i, MTRR_FIXED_ALL_WB);
	/* The hole in naturally aligned power-of-two pieces, the largest that fits first. */
	while (ret == 0 && start < end) {
		uint64_t size = start & -start;

		while (start + size > end)
			size >>= 1;
		if (var == var_count)
			return -ENOSPC;
		ret = add(out, max, nr, MSR_MTRR_PHYS_BASE0 + 2 * var, start | MTRR_TYPE_UC);
		if (ret == 0)
			ret = add(out, max, nr, MSR_MTRR_PHYS_BASE0 + 2 * var + 1,
				  (~(size - 1) & phys_mask) | MTRR_MASK_VALID);
		var++;
		start += size;
	}
	if (ret == 0)
		ret = add(out, max, nr, VCPU_MSR_MTRR_DEF_TYPE, VCPU_MTRR_DEF_TYPE);
	return ret;
}

static unsigned phys_bits_of(const struct kvm_cpuid2 *cpuid)
{
	const struct kvm_cpuid_entry2 *e = vcpu_cpuid_find(cpuid, 0x80000008, 0);

	return e && (e->eax & 0xff) ? e->eax & 0xff : DEFAULT_PHYS_BITS;
}

static int setup_mtrrs(struct vcpu *v, const struct kvm_cpuid2 *cpuid)
{
	const struct kvm_cpuid_entry2 *l1 = vcpu_cpuid_find(cpuid, 1, 0);
	struct kvm_msr_entry e[VCPU_MTRR_MAX_MSRS];
	uint64_t cap = 0;
	unsigned nr;
	int ret;

	/* MTRR MSRs #GP on a CPU without them, and KVM refuses them as well. */
	if (!l1 || !(l1->edx & CPUID_1_EDX_MTRR)) {
		log_debug(v->set->env.log, "vcpu%u: no MTRRs in CPUID, left alone", v->id);
		return 0;
	}
	ret = kvm_vcpu_get_msr(v->fd, MSR_MTRR_CAP, &cap);
	if (ret < 0) {
		log_warn(v->set->env.log, "vcpu%u: cannot read MTRRcap: %s; MTRRs left disabled",
			 v->id, strerror(-ret));
		return 0;
	}
	ret = vcpu_mtrr_msrs(phys_bits_of(cpuid), (unsigned)(cap & MTRR_CAP_VCNT_MASK), e,
			     VCPU_MTRR_MAX_MSRS, &nr);
	if (ret < 0) {
		log_warn(v->set->env.log, "vcpu%u: cannot describe the memory types with MTRRs: %s",
			 v->id, strerror(-ret));
		return 0;
	}
	/* The default type goes last, so the MTRRs are enabled only once all ranges are set. */
	for (unsigned i = 0; i < nr; i++) {
		ret = kvm_vcpu_set_msr(v->fd, e[i].index, e[i].data);
		if (ret < 0) {
			log_warn(v->set->env.log, "vcpu%u: KVM refused MTRR MSR 0x%x=0x%llx: %s",
				 v->id, e[i].index, (unsigned long long)e[i].data, strerror(-ret));
			return 0;
		}
	}
	return 0;
}

int vcpu_msrs_setup(struct vcpu *v, const struct kvm_cpuid2 *cpuid)
{
	for (unsigned i = 0; i < ARRAY_SIZE(boot_msrs); i++) {
		int r;

		if (boot_msrs[i].bsp_only && v->id != 0)
			continue;
		if (!kvm_msr_supported(v->set->env.kvm, boot_msrs[i].index)) {
			log_debug(v->set->env.log, "vcpu%u: MSR 0x%x not supported by KVM, skipped",
				  v->id, boot_msrs[i].index);
			continue;
		}
		r = kvm_vcpu_set_msr(v->fd, boot_msrs[i].index, boot_msrs[i].value);
		if (r < 0)
			log_debug(v->set->env.log, "vcpu%u: KVM refused MSR 0x%x, skipped", v->id,
				  boot_msrs[i].index);
	}
	return setup_mtrrs(v, cpuid);
}
