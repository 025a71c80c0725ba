/*
 * The CPUID each vCPU sees, built from a synthetic "KVM supported" table: the APIC id and
 * topology a guest kernel uses to number its CPUs, and the KVM identification leaves.
 */
#include "vcpu/vcpu.h"
#include "test/unit/testutil.h"

#include <stdlib.h>
#include <string.h>

#define HYPERVISOR_BIT	 (1u << 31)
#define HTT_BIT		 (1u << 28)
#define TSC_DEADLINE_BIT (1u << 24)

static const struct kvm_cpuid_entry2 base_entries[] = {
	{.function = 0, .eax = 0x1f, .ebx = 0x756e6547},
	/* EBX: APIC id 0x77, logical count 0x33 (to be replaced), CLFLUSH 8, brand 0x5a. */
	{.function = 1, .eax = 0x000906ea, .ebx = 0x7733085a, .ecx = 0x7ffafbff, .edx = 0xbfebfbff},
	/* Leaf 4 subleaf 0: L1d with junk in the sharing/core fields; subleaf 1: no cache. */
	{.function = 4, .index = 0, .flags = 1, .eax = 0xfc0fc121, .ebx = 0x01c0003f, .ecx = 0x3f},
	{.function = 4, .index = 1, .flags = 1, .eax = 0xfc0fc000},
	{.function = 0xb, .index = 0, .flags = 1, .eax = 1, .ebx = 2, .ecx = 0x100, .edx = 9},
	{.function = 0xb, .index = 1, .flags = 1, .eax = 7, .ebx = 96, .ecx = 0x201, .edx = 9},
	{.function = 0xb, .index = 2, .flags = 1, .eax = 0, .ebx = 0, .ecx = 0x2, .edx = 9},
	{.function = 0x1f, .index = 0, .flags = 1, .eax = 1, .ebx = 2, .ecx = 0x100, .edx = 9},
	{.function = 0x1f, .index = 1, .flags = 1, .eax = 7, .ebx = 96, .ecx = 0x201, .edx = 9},
	{.function = 0x40000000,
	 .eax = 0x40000000,
	 .ebx = 0x4b4d564b,
	 .ecx = 0x564b4d56,
	 .edx = 0x4d},
	{.function = 0x40000001, .eax = 0x01007afb},
	{.function = 0x80000008, .eax = 0x3030, .ebx = 0x1234, .ecx = 0x0000f0ff},
};

static struct kvm_cpuid2 *supported(void)
{
	struct kvm_cpuid2 *c =
		calloc(1, sizeof(*c) + ARRAY_SIZE(base_entries) * sizeof(c->entries[0]));

	ck_assert_ptr_nonnull(c);
	c->nent = ARRAY_SIZE(base_entries);
	memcpy(c->entries, base_entries, sizeof(base_entries));
	return c;
}

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	ck_abort_msg("leaf 0x%x.%u missing", fn, idx);
	return NULL;
}

static struct kvm_cpuid2 *build_in(const struct vcpu_cpuid_in *in)
{
	struct kvm_cpuid2 *out = NULL;

	ck_assert_int_eq(vcpu_cpuid_build(in, &out), 0);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(out->nent, in->supported->nent);
	return out;
}

static struct kvm_cpuid2 *build(const struct kvm_cpuid2 *sup, unsigned id, unsigned nr)
{
	struct vcpu_cpuid_in in = {.supported = sup, .id = id, .nr = nr};
	struct kvm_cpuid2 *out = NULL;

	ck_assert_int_eq(vcpu_cpuid_build(&in, &out), 0);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(out->nent, sup->nent);
	return out;
}

START_TEST(apic_id_and_logical_count)
{
	struct kvm_cpuid2 *sup = supported();

	for (unsigned nr = 1; nr <= 9; nr++) {
		for (unsigned id = 0; id < nr; id++) {
			struct kvm_cpuid2 *c = build(sup, id, nr);
			const struct kvm_cpuid_entry2 *l1 = leaf(c, 1, 0);
			unsigned logical = (l1->ebx >> 16) & 0xff;

			ck_assert_uint_eq(l1->ebx >> 24, id);
			/* The count covers every APIC id in the package (a power of two). */
			ck_assert_uint_ge(logical, nr);
			ck_assert_uint_eq(logical & (logical - 1), 0);
			ck_assert_uint_lt(logical, 2 * nr);
			/* CLFLUSH size and brand index come from KVM. */
			ck_assert_uint_eq(l1->ebx & 0xffff, 0x085a);
			/* Leaf 0xb/0x1f x2APIC id agrees with the legacy APIC id. */
			ck_assert_uint_eq(leaf(c, 0xb, 0)->edx, id);
			ck_assert_uint_eq(leaf(c, 0xb, 1)->edx, id);
			ck_assert_uint_eq(leaf(c, 0xb, 2)->edx, id);
			ck_assert_uint_eq(leaf(c, 0x1f, 0)->edx, id);
			free(c);
		}
	}
	free(sup);
}
END_TEST

START_TEST(htt_and_hypervisor_bits)
{
	struct kvm_cpuid2 *sup = supported();
	struct kvm_cpuid2 *c;

	c = build(sup, 0, 1);
	ck_assert_uint_eq(leaf(c, 1, 0)->edx & HTT_BIT, 0);
	ck_assert_uint_ne(leaf(c, 1, 0)->ecx & HYPERVISOR_BIT, 0);
	/* Other feature bits pass through. */
	ck_assert_uint_eq(leaf(c, 1, 0)->ecx & ~HYPERVISOR_BIT, 0x7ffafbff);
	ck_assert_uint_eq(leaf(c, 1, 0)->edx, 0xbfebfbff & ~HTT_BIT);
	ck_assert_uint_eq(leaf(c, 1, 0)->eax, 0x000906ea);
	free(c);
	c = build(sup, 1, 2);
	ck_assert_uint_ne(leaf(c, 1, 0)->edx & HTT_BIT, 0);
	free(c);
	/* Set even if KVM's table had it clear. */
	sup->entries[1].edx &= ~HTT_BIT;
	c = build(sup, 1, 4);
	ck_assert_uint_ne(leaf(c, 1, 0)->edx & HTT_BIT, 0);
	free(c);
	free(sup);
}
END_TEST

/* One package of nr cores with one thread each, as leaf 0xb/0x1f describe it. */
START_TEST(topology_leaves)
{
	static const struct {
		unsigned nr, shift;
	} cases[] = {{1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 3}, {8, 3}, {9, 4}, {64, 6}};
	struct kvm_cpuid2 *sup = supported();

	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		unsigned nr = cases[i].nr;
		struct kvm_cpuid2 *c = build(sup, nr - 1, nr);
		const uint32_t fns[] = {0xb, 0x1f};

		for (unsigned f = 0; f < ARRAY_SIZE(fns); f++) {
			const struct kvm_cpuid_entry2 *smt = leaf(c, fns[f], 0);
			const struct kvm_cpuid_entry2 *core = leaf(c, fns[f], 1);

			/* SMT level: shift 0, one thread, type 1 at level 0. */
			ck_assert_uint_eq(smt->eax & 0x1f, 0);
			ck_assert_uint_eq(smt->ebx & 0xffff, 1);
			ck_assert_uint_eq(smt->ecx & 0xffff, 0x100);
			/* Core level: shift to the package id, nr logical CPUs, type 2 at 1. */
			ck_assert_uint_eq(core->eax & 0x1f, cases[i].shift);
			ck_assert_uint_eq(core->ebx & 0xffff, nr);
			ck_assert_uint_eq(core->ecx & 0xffff, 0x201);
			/* The shift leaves room for every APIC id. */
			ck_assert_uint_lt(nr - 1, 1u << (core->eax & 0x1f));
		}
		/* Leaf 0xb subleaf 2 terminates the enumeration (type 0). */
		ck_assert_uint_eq(leaf(c, 0xb, 2)->ebx & 0xffff, 0);
		ck_assert_uint_eq((leaf(c, 0xb, 2)->ecx >> 8) & 0xff, 0);
		ck_assert_uint_eq(leaf(c, 0xb, 2)->ecx & 0xff, 2);
		/* Leaf 1's logical count agrees with the core-level shift. */
		ck_assert_uint_eq((leaf(c, 1, 0)->ebx >> 16) & 0xff, 1u << cases[i].shift);
		free(c);
	}
	free(sup);
}
END_TEST

START_TEST(core_counts)
{
	struct kvm_cpuid2 *sup = supported();

	for (unsigned nr = 1; nr <= 8; nr++) {
		struct kvm_cpuid2 *c = build(sup, 0, nr);
		const struct kvm_cpuid_entry2 *l4 = leaf(c, 4, 0);

		/* Leaf 4: cores per package - 1 in EAX[31:26], one thread per cache. */
		ck_assert_uint_eq(l4->eax >> 26, nr - 1);
		ck_assert_uint_eq((l4->eax >> 14) & 0xfff, 0);
		ck_assert_uint_eq(l4->eax & 0x3fff, 0x121);
		ck_assert_uint_eq(l4->ebx, 0x01c0003f);
		/* The terminating (type 0) subleaf is left alone. */
		ck_assert_uint_eq(leaf(c, 4, 1)->eax, 0xfc0fc000);
		/* Leaf 0x80000008: ECX[7:0] = cores - 1; address sizes kept. */
		ck_assert_uint_eq(leaf(c, 0x80000008, 0)->ecx & 0xff, nr - 1);
		ck_assert_uint_eq(leaf(c, 0x80000008, 0)->ecx & ~0xffu, 0x0000f000);
		ck_assert_uint_eq(leaf(c, 0x80000008, 0)->eax, 0x3030);
		free(c);
	}
	free(sup);
}
END_TEST

START_TEST(kvm_signature_kept)
{
	struct kvm_cpuid2 *sup = supported();
	struct kvm_cpuid2 *c = build(sup, 0, 2);
	const struct kvm_cpuid_entry2 *sig = leaf(c, 0x40000000, 0);

	ck_assert_uint_eq(sig->ebx, 0x4b4d564b); /* "KVMKVMKVM\0\0\0" */
	ck_assert_uint_eq(sig->ecx, 0x564b4d56);
	ck_assert_uint_eq(sig->edx, 0x4d);
	/* The max hypervisor leaf covers the KVM features leaf. */
	ck_assert_uint_ge(sig->eax, 0x40000001);
	ck_assert_uint_eq(leaf(c, 0x40000001, 0)->eax, 0x01007afb);
	free(c);
	/* A higher max leaf from KVM is not lowered. */
	sup->entries[9].eax = 0x40000010;
	c = build(sup, 0, 2);
	ck_assert_uint_eq(leaf(c, 0x40000000, 0)->eax, 0x40000010);
	free(c);
	free(sup);
}
END_TEST

START_TEST(tsc_deadline_bit)
{
	struct kvm_cpuid2 *sup = supported();
	struct vcpu_cpuid_in in = {.supported = sup, .id = 0, .nr = 1};
	struct kvm_cpuid2 *c;

	/* KVM_GET_SUPPORTED_CPUID leaves it clear; the VMM sets it when KVM has the mode. */
	sup->entries[1].ecx &= ~TSC_DEADLINE_BIT;
	c = build_in(&in);
	ck_assert_uint_eq(leaf(c, 1, 0)->ecx & TSC_DEADLINE_BIT, 0);
	free(c);
	in.tsc_deadline = true;
	c = build_in(&in);
	ck_assert_uint_ne(leaf(c, 1, 0)->ecx & TSC_DEADLINE_BIT, 0);
	/* Nothing else in ECX changes. */
	ck_assert_uint_eq(leaf(c, 1, 0)->ecx & ~(TSC_DEADLINE_BIT | HYPERVISOR_BIT),
			  0x7ffafbff & ~(TSC_DEADLINE_BIT | HYPERVISOR_BIT));
	free(c);
	free(sup);
}
END_TEST

/* An AMD-like table as KVM gives it: brand and L1 cache leaves empty, the rest filled. */
static const struct kvm_cpuid_entry2 amd_entries[] = {
	{.function = 0, .eax = 0xd, .ebx = 0x68747541},
	{.function = 1, .eax = 0x00800f12, .ebx = 0x00000800, .ecx = 0x76f83203, .edx = 0x078bfbfd},
	{.function = 0x80000000, .eax = 0x80000021},
	{.function = 0x80000001, .eax = 0x00800f12, .ecx = 0x75, .edx = 0x2dd3fbfd},
	{.function = 0x80000002},
	{.function = 0x80000003},
	{.function = 0x80000004},
	{.function = 0x80000005},
	{.function = 0x80000006, .ebx = 0x42004200, .ecx = 0x02006140, .edx = 0x00408140},
	{.function = 0x80000008, .eax = 0x3028},
	{.function = 0x8000001d,
	 .index = 0,
	 .flags = 1,
	 .eax = 0x121,
	 .ebx = 0x01c0003f,
	 .ecx = 0x3f,
	 .edx = 1},
	{.function = 0x8000001d,
	 .index = 2,
	 .flags = 1,
	 .eax = 0x43,
	 .ebx = 0x01c0003f,
	 .ecx = 0x3ff},
	{.function = 0x8000001d,
	 .index = 3,
	 .flags = 1,
	 .eax = 0x163,
	 .ebx = 0x03c0003f,
	 .ecx = 0x1fff,
	 .edx = 6},
	{.function = 0x8000001d, .index = 4, .flags = 1},
};

/* "AMD EPYC Processor", then NULs: what the test host's CPU says. */
static const uint32_t host_brand[12] = {0x20444d41, 0x43595045, 0x6f725020, 0x73736563, 0x0000726f};
static uint32_t host_max_ext = 0x8000001e;
static unsigned host_calls;

static void fake_host(uint32_t leaf_nr, uint32_t sub, uint32_t out[4])
{
	(void)sub;
	host_calls++;
	memset(out, 0, 4 * sizeof(uint32_t));
	if (leaf_nr == 0x80000000)
		out[0] = host_max_ext;
	else if (leaf_nr >= 0x80000002 && leaf_nr <= 0x80000004)
		memcpy(out, &host_brand[(leaf_nr - 0x80000002) * 4], 4 * sizeof(uint32_t));
	else if (leaf_nr == 0x80000005)
		memcpy(out, (const uint32_t[4]){0x01ff01ff, 0x01ff01ff, 0x20080140, 0x40040140},
		       4 * sizeof(uint32_t));
	else if (leaf_nr == 0x80000006)
		out[1] = 0xdeadbeef; /* must not replace what KVM gave */
}

static struct kvm_cpuid2 *amd_supported(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + sizeof(amd_entries));

	ck_assert_ptr_nonnull(c);
	c->nent = ARRAY_SIZE(amd_entries);
	memcpy(c->entries, amd_entries, sizeof(amd_entries));
	return c;
}

START_TEST(brand_and_l1_caches_from_the_host)
{
	struct kvm_cpuid2 *sup = amd_supported();
	struct vcpu_cpuid_in in = {.supported = sup, .id = 0, .nr = 2, .host_cpuid = fake_host};
	struct kvm_cpuid2 *c;
	char brand[49] = {0};

	host_max_ext = 0x8000001e;
	c = build_in(&in);
	for (unsigned i = 0; i < 3; i++) {
		const struct kvm_cpuid_entry2 *e = leaf(c, 0x80000002 + i, 0);
		uint32_t r[4] = {e->eax, e->ebx, e->ecx, e->edx};

		memcpy(brand + 16 * i, r, 16);
	}
	ck_assert_str_eq(brand, "AMD EPYC Processor");
	ck_assert_uint_eq(leaf(c, 0x80000005, 0)->ecx, 0x20080140);
	ck_assert_uint_eq(leaf(c, 0x80000005, 0)->edx, 0x40040140);
	/* What KVM filled in stays KVM's. */
	ck_assert_uint_eq(leaf(c, 0x80000006, 0)->ebx, 0x42004200);
	ck_assert_uint_eq(leaf(c, 0x80000006, 0)->ecx, 0x02006140);
	free(c);

	/* A host without those leaves gives nothing; no host, nothing is asked. */
	host_max_ext = 0x80000001;
	c = build_in(&in);
	ck_assert_uint_eq(leaf(c, 0x80000002, 0)->eax, 0);
	ck_assert_uint_eq(leaf(c, 0x80000005, 0)->ecx, 0);
	free(c);
	in.host_cpuid = NULL;
	host_calls = 0;
	c = build_in(&in);
	ck_assert_uint_eq(leaf(c, 0x80000002, 0)->eax, 0);
	ck_assert_uint_eq(host_calls, 0);
	free(c);
	free(sup);
}
END_TEST

/* Who shares each cache follows -c: L1/L2 one core (one thread), L3 the whole package. */
START_TEST(cache_sharing_follows_the_topology)
{
	struct kvm_cpuid2 *sup = amd_supported();
	struct kvm_cpuid2 *intel = supported();

	/* An Intel L3 descriptor claiming to be shared by 0x3f threads. */
	intel->entries[3] = (struct kvm_cpuid_entry2){
		.function = 4, .index = 1, .flags = 1, .eax = 0x0fc3c163, .ebx = 0x02c0003f};
	for (unsigned nr = 1; nr <= 9; nr++) {
		struct vcpu_cpuid_in in = {.supported = sup, .id = nr - 1, .nr = nr};
		unsigned logical = 1;
		struct kvm_cpuid2 *c;

		while (logical < nr)
			logical <<= 1;
		c = build_in(&in);
		ck_assert_uint_eq((leaf(c, 0x8000001d, 0)->eax >> 14) & 0xfff, 0);
		ck_assert_uint_eq((leaf(c, 0x8000001d, 2)->eax >> 14) & 0xfff, 0);
		ck_assert_uint_eq((leaf(c, 0x8000001d, 3)->eax >> 14) & 0xfff, logical - 1);
		ck_assert_uint_eq(leaf(c, 0x8000001d, 3)->eax & 0x3fff, 0x163);
		ck_assert_uint_eq(leaf(c, 0x8000001d, 3)->ecx, 0x1fff);
		/* The terminating descriptor stays empty. */
		ck_assert_uint_eq(leaf(c, 0x8000001d, 4)->eax, 0);
		free(c);
		in.supported = intel;
		c = build_in(&in);
		ck_assert_uint_eq((leaf(c, 4, 0)->eax >> 14) & 0xfff, 0);
		ck_assert_uint_eq((leaf(c, 4, 1)->eax >> 14) & 0xfff, logical - 1);
		ck_assert_uint_eq(leaf(c, 4, 1)->eax >> 26, nr - 1);
		ck_assert_uint_eq(leaf(c, 4, 1)->eax & 0x3fff, 0x0163);
		free(c);
	}
	free(intel);
	free(sup);
}
END_TEST

START_TEST(bad_vcpu_index)
{
	struct kvm_cpuid2 *sup = supported();
	struct vcpu_cpuid_in in = {.supported = sup, .id = 2, .nr = 2};
	struct kvm_cpuid2 *c = NULL;

	ck_assert_int_eq(vcpu_cpuid_build(&in, &c), -EINVAL);
	in.nr = 0;
	in.id = 0;
	ck_assert_int_eq(vcpu_cpuid_build(&in, &c), -EINVAL);
	ck_assert_ptr_null(c);
	free(sup);
}
END_TEST

/* KVM's table is an input: building a vCPU's table never modifies it. */
START_TEST(supported_table_untouched)
{
	struct kvm_cpuid2 *sup = supported();
	struct kvm_cpuid2 *c = build(sup, 3, 4);

	ck_assert_mem_eq(sup->entries, base_entries, sizeof(base_entries));
	free(c);
	free(sup);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cpuid");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, apic_id_and_logical_count);
	tcase_add_test(tc, htt_and_hypervisor_bits);
	tcase_add_test(tc, topology_leaves);
	tcase_add_test(tc, core_counts);
	tcase_add_test(tc, kvm_signature_kept);
	tcase_add_test(tc, supported_table_untouched);
	tcase_add_test(tc, tsc_deadline_bit);
	tcase_add_test(tc, brand_and_l1_caches_from_the_host);
	tcase_add_test(tc, cache_sharing_follows_the_topology);
	tcase_add_test(tc, bad_vcpu_index);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
