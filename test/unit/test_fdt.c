/* The device tree blob for setup_data, read back with libfdt. */
#include "core/boot/fdt.h"
#include "core/layout.h"
#include "test/unit/testutil.h"

#include <libfdt.h>
#include <string.h>

#define BUF 16384

static uint64_t prop_u64(const void *fdt, int node, const char *name)
{
	int len = -1;
	const void *p = fdt_getprop(fdt, node, name, &len);
	fdt64_t v;

	ck_assert_msg(p != NULL, "%s missing", name);
	ck_assert_int_eq(len, 8);
	memcpy(&v, p, sizeof(v)); /* properties are only 4-byte aligned */
	return fdt64_to_cpu(v);
}

static uint32_t prop_u32(const void *fdt, int node, const char *name)
{
	int len = -1;
	const fdt32_t *p = fdt_getprop(fdt, node, name, &len);

	ck_assert_msg(p != NULL, "%s missing", name);
	ck_assert_int_eq(len, 4);
	return fdt32_to_cpu(*p);
}

static void check_memory(const void *fdt, const char *path, uint64_t addr, uint64_t size)
{
	int node = fdt_path_offset(fdt, path), len = -1;
	const void *p;
	fdt64_t reg[2];

	ck_assert_msg(node >= 0, "%s missing", path);
	ck_assert_str_eq(fdt_getprop(fdt, node, "device_type", NULL), "memory");
	p = fdt_getprop(fdt, node, "reg", &len);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(len, 16);
	memcpy(reg, p, sizeof(reg));
	ck_assert_uint_eq(fdt64_to_cpu(reg[0]), addr);
	ck_assert_uint_eq(fdt64_to_cpu(reg[1]), size);
}

START_TEST(root_chosen_and_memory)
{
	uint8_t fdt[BUF];
	struct guest_mem m;
	size_t len = 0;
	int chosen;

	ck_assert_int_eq(guest_mem_create(&m, MiB(256)), 0);
	ck_assert_int_eq(fdt_build(&(struct fdt_params){.mem = &m,
							.cmdline = "console=ttyS0 panic=-1",
							.initrd_gpa = 0xf000000,
							.initrd_size = 0x5000},
				   fdt, sizeof(fdt), &len),
			 0);
	ck_assert_int_eq(fdt_check_header(fdt), 0);
	ck_assert_int_eq(fdt_check_full(fdt, len), 0);
	ck_assert_uint_eq(len, fdt_totalsize(fdt));
	ck_assert_uint_le(len, sizeof(fdt));
	ck_assert_uint_eq(prop_u32(fdt, 0, "#address-cells"), 2);
	ck_assert_uint_eq(prop_u32(fdt, 0, "#size-cells"), 2);
	ck_assert_str_eq(fdt_getprop(fdt, 0, "compatible", NULL), FDT_COMPATIBLE);
	chosen = fdt_path_offset(fdt, "/chosen");
	ck_assert_int_ge(chosen, 0);
	ck_assert_str_eq(fdt_getprop(fdt, chosen, "bootargs", NULL), "console=ttyS0 panic=-1");
	ck_assert_uint_eq(prop_u64(fdt, chosen, "linux,initrd-start"), 0xf000000);
	ck_assert_uint_eq(prop_u64(fdt, chosen, "linux,initrd-end"), 0xf005000);
	check_memory(fdt, "/memory@0", 0, LAYOUT_EBDA);
	check_memory(fdt, "/memory@100000", MiB(1), MiB(255));
	/* Reserved ranges are not memory. */
	ck_assert_int_lt(fdt_path_offset(fdt, "/memory@9fc00"), 0);
	ck_assert_int_lt(fdt_path_offset(fdt, "/memory@f4000000"), 0);
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(optional_parts)
{
	uint8_t fdt[BUF];
	struct guest_mem m;
	size_t len;
	int chosen;

	ck_assert_int_eq(guest_mem_create(&m, GiB(4)), 0);
	ck_assert_int_eq(fdt_build(&(struct fdt_params){.mem = &m}, fdt, sizeof(fdt), &len), 0);
	ck_assert_int_eq(fdt_check_full(fdt, len), 0);
	chosen = fdt_path_offset(fdt, "/chosen");
	ck_assert_int_ge(chosen, 0);
	ck_assert_ptr_null(fdt_getprop(fdt, chosen, "bootargs", NULL));
	ck_assert_ptr_null(fdt_getprop(fdt, chosen, "linux,initrd-start", NULL));
	ck_assert_ptr_null(fdt_getprop(fdt, chosen, "linux,initrd-end", NULL));
	check_memory(fdt, "/memory@100000", MiB(1), LAYOUT_MEM_32BIT_GAP - MiB(1));
	check_memory(fdt, "/memory@100000000", LAYOUT_4G, GiB(4) - LAYOUT_MEM_32BIT_GAP);
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(buffer_too_small)
{
	uint8_t fdt[BUF];
	struct guest_mem m;
	size_t len, need;

	ck_assert_int_eq(guest_mem_create(&m, MiB(64)), 0);
	ck_assert_int_eq(
		fdt_build(&(struct fdt_params){.mem = &m, .cmdline = "a"}, fdt, sizeof(fdt), &need),
		0);
	ck_assert_int_eq(
		fdt_build(&(struct fdt_params){.mem = &m, .cmdline = "a"}, fdt, need, &len), 0);
	for (size_t size = 0; size < need; size++)
		ck_assert_int_eq(
			fdt_build(&(struct fdt_params){.mem = &m, .cmdline = "a"}, fdt, size, &len),
			-ENOSPC);
	ck_assert_int_eq(fdt_build(&(struct fdt_params){.mem = NULL}, fdt, sizeof(fdt), &len),
			 -EINVAL);
	guest_mem_destroy(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fdt");
	TCase *tc = tcase_create("fdt");

	tcase_add_test(tc, root_chosen_and_memory);
	tcase_add_test(tc, optional_parts);
	tcase_add_test(tc, buffer_too_small);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
