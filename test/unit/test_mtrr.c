/*
 * The MTRRs every vCPU starts with (vcpu/msr.c): what firmware leaves on a PC and QEMU's
 * guests read, IA32_MTRR_DEF_TYPE 0xc06, the first MiB write-back, the 32-bit PCI hole
 * uncacheable; checked entry by entry, since KVM takes them as they are.
 */
#include "core/layout.h"
#include "vcpu/vcpu.h"
#include "test/unit/testutil.h"

#define WB8 0x0606060606060606ull

START_TEST(firmware_like_mtrrs)
{
	static const struct kvm_msr_entry want[] = {
		{.index = 0x250, .data = WB8},
		{.index = 0x258, .data = WB8},
		{.index = 0x259, .data = WB8},
		{.index = 0x268, .data = WB8},
		{.index = 0x269, .data = WB8},
		{.index = 0x26a, .data = WB8},
		{.index = 0x26b, .data = WB8},
		{.index = 0x26c, .data = WB8},
		{.index = 0x26d, .data = WB8},
		{.index = 0x26e, .data = WB8},
		{.index = 0x26f, .data = WB8},
		/* [0xd0000000, 0xe0000000) and [0xe0000000, 4 GiB), type UC (0), valid. */
		{.index = 0x200, .data = 0xd0000000},
		{.index = 0x201, .data = 0xfff0000800},
		{.index = 0x202, .data = 0xe0000000},
		{.index = 0x203, .data = 0xffe0000800},
		{.index = 0x2ff, .data = 0xc06},
	};
	struct kvm_msr_entry e[VCPU_MTRR_MAX_MSRS];
	unsigned nr = 0;

	ck_assert_uint_eq(LAYOUT_MEM_32BIT_GAP, 0xd0000000);
	ck_assert_int_eq(vcpu_mtrr_msrs(40, 8, e, VCPU_MTRR_MAX_MSRS, &nr), 0);
	ck_assert_uint_eq(nr, ARRAY_SIZE(want));
	for (unsigned i = 0; i < nr; i++) {
		ck_assert_uint_eq(e[i].index, want[i].index);
		ck_assert_uint_eq(e[i].data, want[i].data);
	}
	ck_assert_uint_eq(VCPU_MTRR_DEF_TYPE, 0xc06);
}
END_TEST

/* The mask never sets a bit above the CPU's physical address width (KVM refuses it). */
START_TEST(mask_follows_physical_address_bits)
{
	struct kvm_msr_entry e[VCPU_MTRR_MAX_MSRS];
	unsigned nr = 0;

	ck_assert_int_eq(vcpu_mtrr_msrs(36, 8, e, VCPU_MTRR_MAX_MSRS, &nr), 0);
	ck_assert_uint_eq(e[12].data, 0xff0000800);
	ck_assert_int_eq(vcpu_mtrr_msrs(52, 8, e, VCPU_MTRR_MAX_MSRS, &nr), 0);
	ck_assert_uint_eq(e[12].data, 0xffffff0000800);
}
END_TEST

START_TEST(refusals)
{
	struct kvm_msr_entry e[VCPU_MTRR_MAX_MSRS];
	unsigned nr = 0;

	ck_assert_int_eq(vcpu_mtrr_msrs(31, 8, e, VCPU_MTRR_MAX_MSRS, &nr), -EINVAL);
	ck_assert_int_eq(vcpu_mtrr_msrs(53, 8, e, VCPU_MTRR_MAX_MSRS, &nr), -EINVAL);
	/* The hole takes two variable ranges. */
	ck_assert_int_eq(vcpu_mtrr_msrs(40, 1, e, VCPU_MTRR_MAX_MSRS, &nr), -ENOSPC);
	ck_assert_int_eq(vcpu_mtrr_msrs(40, 2, e, VCPU_MTRR_MAX_MSRS, &nr), 0);
	/* Room for the fixed ranges only. */
	ck_assert_int_eq(vcpu_mtrr_msrs(40, 8, e, 11, &nr), -ENOSPC);
	ck_assert_uint_le(nr, 11);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("mtrr");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, firmware_like_mtrrs);
	tcase_add_test(tc, mask_follows_physical_address_bits);
	tcase_add_test(tc, refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
