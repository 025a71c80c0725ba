/*
 * The CPUID a vCPU sees: what KVM supports, with the topology made consistent for N vCPUs
 * (one package, N cores, one thread each; APIC id = vCPU index), the hypervisor bit and
 * KVM signature leaves present, so a guest can tell it runs under KVM, and what KVM leaves
 * out although the VM has it: the TSC-deadline timer of the in-kernel LAPIC, and the host's
 * brand string and L1 cache/TLB leaves (KVM_GET_SUPPORTED_CPUID returns them empty, and
 * Linux then shows "model name: 17/01" and finds no caches), as crosvm and QEMU -cpu host.
 */
#include "vcpu/vcpu.h"

#include <cpuid.h>
#include <stdlib.h>
#include <string.h>

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR	 (1u << 31)
#define CPUID_1_EDX_HTT		 (1u << 28)

/* Cache descriptors (leaf 4, AMD 0x8000001d): type, level, sharing. */
#define CACHE_TYPE(eax)	    ((eax)&0x1f)
#define CACHE_LEVEL(eax)    (((eax) >> 5) & 7)
#define CACHE_SHARING_SHIFT 14
#define CACHE_SHARING_MASK  (0xfffu << CACHE_SHARING_SHIFT)
#define LEAF4_CORES_SHIFT   26
#define EXT_BRAND_FIRST	    0x80000002u
#define EXT_HOST_CACHE_LAST 0x80000006u /* 0x80000005/6: L1 and L2/L3 cache and TLB */

void vcpu_host_cpuid(uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	__cpuid_count(leaf, sub, out[0], out[1], out[2], out[3]);
}

static unsigned order_base_2(unsigned n)
{
	unsigned s = 0;

	while ((1u << s) < n)
		s++;
	return s;
}

static void set_topology_leaf(struct kvm_cpuid_entry2 *e, unsigned id, unsigned nr)
{
	unsigned core_shift = order_base_2(nr);

	switch (e->index) {
	case 0: /* SMT level: one thread per core */
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (1u << 8) | 0;
		break;
	case 1: /* core level: nr cores in the package */
		e->eax = core_shift;
		e->ebx = nr;
		e->ecx = (2u << 8) | 1;
		break;
	default:
		e->eax = 0;
		e->ebx = 0;
		e->ecx = e->index;
		break;
	}
	e->edx = id;
}

/*
 * How many logical CPUs (minus one) share a cache: the L1 and L2 belong to one core, which
 * has one thread; L3 and beyond to the package, which has `logical` APIC ids. Applied to the
 * host's descriptors so they match the topology of leaves 1, 0xb and 0x1f whatever -c is.
 */
static uint32_t cache_sharing(uint32_t eax, unsigned logical)
{
	uint32_t sharing = CACHE_LEVEL(eax) >= 3 ? logical - 1 : 0;

	return (eax & ~CACHE_SHARING_MASK) |
	       ((sharing << CACHE_SHARING_SHIFT) & CACHE_SHARING_MASK);
}

static bool entry_empty(const struct kvm_cpuid_entry2 *e)
{
	return !(e->eax | e->ebx | e->ecx | e->edx);
}

/* The brand string and L1/L2 cache leaves from the host, where KVM gave them empty. */
static void fill_from_host(struct kvm_cpuid_entry2 *e, const struct vcpu_cpuid_in *in,
			   uint32_t host_max_ext)
{
	uint32_t r[4];

	if (!in->host_cpuid || e->function < EXT_BRAND_FIRST || e->function > EXT_HOST_CACHE_LAST ||
	    e->function > host_max_ext || !entry_empty(e))
		return;
	in->host_cpuid(e->function, 0, r);
	e->eax = r[0];
	e->ebx = r[1];
	e->ecx = r[2];
	e->edx = r[3];
}

int vcpu_cpuid_build(const struct vcpu_cpuid_in *in, struct kvm_cpuid2 **out)
{
	const struct kvm_cpuid2 *supported = in->supported;
	size_t sz = sizeof(struct kvm_cpuid2) + supported->nent * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c;
	unsigned id = in->id, nr = in->nr;
	unsigned logical = 1u << order_base_2(nr);
	uint32_t host_max_ext = 0;

	if (nr < 1 || id >= nr)
		return -EINVAL;
	c = malloc(sz);
	if (!c)
		return -ENOMEM;
	if (in->host_cpuid) {
		uint32_t r[4];

		in->host_cpuid(0x80000000, 0, r);
		host_max_ext = r[0];
	}
	memcpy(c, supported, sz);
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		fill_from_host(e, in, host_max_ext);
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (id << 24) | ((logical & 0xff) << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			/* KVM leaves the bit to us: its in-kernel LAPIC emulates the mode. */
			if (in->tsc_deadline)
				e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
			if (nr > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 4:
			/* Cores per package - 1 in EAX[31:26]; who shares each cache. */
			if (CACHE_TYPE(e->eax)) {
				e->eax = cache_sharing(e->eax, logical) & 0x3ffffffu;
				e->eax |= ((nr - 1) & 0x3f) << LEAF4_CORES_SHIFT;
			}
			break;
		case 0xb:
		case 0x1f:
			set_topology_leaf(e, id, nr);
			break;
		case 0x40000000:
			/* Keep KVM's signature; make sure the max leaf covers the features leaf. */
			if (e->eax < 0x40000001)
				e->eax = 0x40000001;
			break;
		case 0x80000008:
			e->ecx = (e->ecx & ~0xffu) | ((nr - 1) & 0xff);
			break;
		case 0x8000001d:
			if (CACHE_TYPE(e->eax))
				e->eax = cache_sharing(e->eax, logical);
			break;
		default:
			break;
		}
	}
	*out = c;
	return 0;
}

const struct kvm_cpuid_entry2 *vcpu_cpuid_find(const struct kvm_cpuid2 *c, uint32_t function,
					       uint32_t index)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == function && c->entries[i].index == index)
			return &c->entries[i];
	return NULL;
}
