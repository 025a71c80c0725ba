/*
 * The CPUID a vCPU sees: what KVM supports, with the topology made consistent for N vCPUs
 * (one package, N cores, one thread each; APIC id = vCPU index) and the hypervisor bit and
 * KVM signature leaves present, so a guest can tell it runs under KVM.
 */
#include "vcpu/vcpu.h"

#include <stdlib.h>
#include <string.h>

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT	       (1u << 28)

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

int vcpu_cpuid_build(const struct kvm_cpuid2 *supported, unsigned id, unsigned nr,
		     struct kvm_cpuid2 **out)
{
	size_t sz = sizeof(struct kvm_cpuid2) + supported->nent * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = malloc(sz);
	unsigned logical = 1u << order_base_2(nr);

	if (!c)
		return -ENOMEM;
	memcpy(c, supported, sz);
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (id << 24) | ((logical & 0xff) << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (nr > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 4:
			/* Cores per package - 1 in EAX[31:26]; caches shared by one thread. */
			if (e->eax & 0x1f) {
				e->eax &= 0x3fffu;
				e->eax |= ((nr - 1) & 0x3f) << 26;
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
		default:
			break;
		}
	}
	*out = c;
	return 0;
}
