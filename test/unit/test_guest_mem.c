/*
 * Guest memory: the x86 layout around the 32-bit hole, the whole-range checks every device
 * relies on, copies across contiguous regions, and the sealed memfd that device processes
 * share.
 */
#include "core/guest_mem.h"
#include "core/layout.h"
#include "test/unit/testutil.h"

#include <fcntl.h>
#include <string.h>

START_TEST(layout_small_ram_is_one_low_region)
{
	struct guest_mem m;

	ck_assert_int_eq(guest_mem_create(&m, MiB(256)), 0);
	ck_assert_int_ge(m.fd, 0);
	ck_assert_uint_eq(m.nr, 1);
	ck_assert_uint_eq(m.regions[0].gpa, 0);
	ck_assert_uint_eq(m.regions[0].size, MiB(256));
	ck_assert_uint_eq(m.size, MiB(256));
	ck_assert_uint_eq(guest_mem_end(&m), MiB(256));
	ck_assert_uint_eq(guest_mem_below_4g(&m), MiB(256));
	ck_assert_uint_eq(guest_mem_above_4g(&m), 0);
	guest_mem_destroy(&m);
	ck_assert_int_eq(m.fd, -1);
	ck_assert_ptr_null(m.base);
}
END_TEST

START_TEST(layout_exactly_up_to_the_hole)
{
	struct guest_mem m;

	ck_assert_int_eq(guest_mem_create(&m, LAYOUT_MEM_32BIT_GAP), 0);
	ck_assert_uint_eq(m.nr, 1);
	ck_assert_uint_eq(guest_mem_end(&m), 0xd0000000ULL);
	ck_assert_uint_eq(guest_mem_below_4g(&m), 0xd0000000ULL);
	ck_assert_uint_eq(guest_mem_above_4g(&m), 0);
	guest_mem_destroy(&m);
}
END_TEST

/* -m 3329 (one MiB more than fits below the hole) and -m 8192. */
START_TEST(layout_above_the_hole_resumes_at_4g)
{
	static const uint64_t sizes[] = {MiB(3329), GiB(8)};

	for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct guest_mem m;
		uint64_t above = sizes[i] - 0xd0000000ULL, off = 0;

		ck_assert_int_eq(guest_mem_create(&m, sizes[i]), 0);
		ck_assert_uint_eq(m.nr, 2);
		ck_assert_uint_eq(m.size, sizes[i]);
		ck_assert_uint_eq(m.regions[0].gpa, 0);
		ck_assert_uint_eq(m.regions[0].size, 0xd0000000ULL);
		ck_assert_uint_eq(m.regions[1].gpa, LAYOUT_4G);
		ck_assert_uint_eq(m.regions[1].size, above);
		ck_assert_uint_eq(guest_mem_end(&m), LAYOUT_4G + above);
		ck_assert_uint_eq(guest_mem_below_4g(&m), 0xd0000000ULL);
		ck_assert_uint_eq(guest_mem_above_4g(&m), above);
		/* The hole is not RAM; both sides of it are. */
		ck_assert(guest_mem_valid(&m, 0xd0000000ULL - 1, 1));
		ck_assert(!guest_mem_valid(&m, 0xd0000000ULL, 1));
		ck_assert(!guest_mem_valid(&m, LAYOUT_4G - 1, 1));
		ck_assert(guest_mem_valid(&m, LAYOUT_4G, 1));
		ck_assert(guest_mem_valid(&m, LAYOUT_4G + above - 1, 1));
		ck_assert(!guest_mem_valid(&m, LAYOUT_4G + above, 1));
		/* High RAM follows low RAM in the memfd. */
		ck_assert_int_eq(guest_mem_fd_offset(&m, LAYOUT_4G + 0x1000, 0x1000, &off), 0);
		ck_assert_uint_eq(off, 0xd0000000ULL + 0x1000);
		guest_mem_destroy(&m);
	}
}
END_TEST

/* A region given explicitly across the 4 GiB line is split between the two counts. */
START_TEST(below_and_above_4g_split_a_region)
{
	static const struct guest_region l[] = {{.gpa = 0, .size = 0x10000},
						{.gpa = 0xfff00000ULL, .size = 0x200000}};
	struct guest_mem m;

	ck_assert_int_eq(guest_mem_create_regions(&m, l, 2), 0);
	ck_assert_uint_eq(guest_mem_below_4g(&m), 0x10000 + 0x100000);
	ck_assert_uint_eq(guest_mem_above_4g(&m), 0x100000);
	ck_assert_uint_eq(guest_mem_end(&m), 0x100100000ULL);
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(bad_sizes_refused)
{
	struct guest_mem m;

	ck_assert_int_eq(guest_mem_create(&m, 0), -EINVAL);
	ck_assert_int_eq(guest_mem_create(&m, MiB(1) + 1), -EINVAL);
	ck_assert_int_eq(guest_mem_create(&m, MiB(1) + 0x800), -EINVAL);
}
END_TEST

START_TEST(region_lists_are_checked)
{
	static const struct guest_region unsorted[] = {{.gpa = 0x10000, .size = 0x1000},
						       {.gpa = 0, .size = 0x1000}};
	static const struct guest_region overlap[] = {{.gpa = 0, .size = 0x2000},
						      {.gpa = 0x1000, .size = 0x1000}};
	static const struct guest_region unaligned_gpa[] = {{.gpa = 0x800, .size = 0x1000}};
	static const struct guest_region unaligned_size[] = {{.gpa = 0, .size = 0x1800}};
	static const struct guest_region empty[] = {{.gpa = 0, .size = 0}};
	static const struct guest_region wraps[] = {{.gpa = 0xfffffffffffff000ULL, .size = 0x2000}};
	struct guest_region many[GUEST_MEM_MAX_REGIONS + 1];
	struct guest_mem m;

	ck_assert_int_eq(guest_mem_create_regions(&m, unsorted, 2), -EINVAL);
	ck_assert_int_eq(guest_mem_create_regions(&m, overlap, 2), -EINVAL);
	ck_assert_int_eq(guest_mem_create_regions(&m, unaligned_gpa, 1), -EINVAL);
	ck_assert_int_eq(guest_mem_create_regions(&m, unaligned_size, 1), -EINVAL);
	ck_assert_int_eq(guest_mem_create_regions(&m, empty, 1), -EINVAL);
	ck_assert_int_eq(guest_mem_create_regions(&m, wraps, 1), -EINVAL);
	ck_assert_int_eq(guest_mem_create_regions(&m, unsorted, 0), -EINVAL);
	for (unsigned i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = (struct guest_region){.gpa = i * 0x2000ULL, .size = 0x1000};
	ck_assert_int_eq(guest_mem_create_regions(&m, many, ARRAY_SIZE(many)), -EINVAL);
	ck_assert_int_eq(guest_mem_create_regions(&m, many, GUEST_MEM_MAX_REGIONS), 0);
	ck_assert_uint_eq(m.nr, GUEST_MEM_MAX_REGIONS);
	guest_mem_destroy(&m);
}
END_TEST

/* Two regions with a gap: [0, 64K) and [128K, 192K). */
static void make_gapped(struct guest_mem *m)
{
	static const struct guest_region l[] = {{.gpa = 0, .size = 0x10000},
						{.gpa = 0x20000, .size = 0x10000}};

	ck_assert_int_eq(guest_mem_create_regions(m, l, 2), 0);
}

START_TEST(ptr_checks_the_whole_range)
{
	struct guest_mem m;
	void *p = NULL;

	make_gapped(&m);
	ck_assert_int_eq(guest_mem_ptr(&m, 0, 0x10000, &p), 0);
	ck_assert_ptr_eq(p, m.base);
	ck_assert_int_eq(guest_mem_ptr(&m, 0xfff0, 0x10, &p), 0);
	ck_assert_ptr_eq(p, m.base + 0xfff0);
	ck_assert_int_eq(guest_mem_ptr(&m, 0x20010, 8, &p), 0);
	ck_assert_ptr_eq(p, m.base + 0x10010);

	p = NULL;
	ck_assert_int_eq(guest_mem_ptr(&m, 0xfff0, 0x11, &p), -EFAULT);	     /* straddles the end */
	ck_assert_int_eq(guest_mem_ptr(&m, 0x10000, 1, &p), -EFAULT);	     /* in the gap */
	ck_assert_int_eq(guest_mem_ptr(&m, 0x1fff8, 0x10, &p), -EFAULT);     /* gap into RAM */
	ck_assert_int_eq(guest_mem_ptr(&m, 0x0, 0x30000, &p), -EFAULT);	     /* across the gap */
	ck_assert_int_eq(guest_mem_ptr(&m, 0x2fff0, 0x20, &p), -EFAULT);     /* past the end */
	ck_assert_int_eq(guest_mem_ptr(&m, 0x100, UINT64_MAX, &p), -EFAULT); /* wraps */
	ck_assert_int_eq(guest_mem_ptr(&m, UINT64_MAX, 2, &p), -EFAULT);
	ck_assert_int_eq(guest_mem_ptr(&m, 0x1000, UINT64_MAX - 0xfff, &p), -EFAULT);
	ck_assert_ptr_null(p);

	ck_assert(guest_mem_valid(&m, 0x2ffff, 1));
	ck_assert(!guest_mem_valid(&m, 0x2ffff, 2));
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(read_write_fill_range_checks)
{
	uint8_t buf[64], back[64];
	struct guest_mem m;

	make_gapped(&m);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i + 1);
	ck_assert_int_eq(guest_mem_write(&m, 0x20100, buf, sizeof(buf)), 0);
	ck_assert_int_eq(guest_mem_read(&m, 0x20100, back, sizeof(back)), 0);
	ck_assert_mem_eq(back, buf, sizeof(buf));
	ck_assert_mem_eq(m.base + 0x10100, buf, sizeof(buf));

	ck_assert_int_eq(guest_mem_write(&m, 0xfff0, buf, 0x20), -EFAULT);
	ck_assert_int_eq(guest_mem_read(&m, 0xfff0, back, 0x20), -EFAULT);
	ck_assert_int_eq(guest_mem_fill(&m, 0xfff0, 0, 0x20), -EFAULT);
	ck_assert_int_eq(guest_mem_read(&m, 0x10000, back, 1), -EFAULT);
	ck_assert_int_eq(guest_mem_write(&m, 0x2fff0, buf, 0x20), -EFAULT);
	ck_assert_int_eq(guest_mem_read(&m, UINT64_MAX - 7, back, 16), -EFAULT);
	ck_assert_int_eq(guest_mem_fill(&m, 0x20000, 0, UINT64_MAX), -EFAULT);
	/* Zero-length copies are no-ops. */
	ck_assert_int_eq(guest_mem_read(&m, 0x20000, back, 0), 0);

	ck_assert_int_eq(guest_mem_fill(&m, 0x20100, 0x5a, 16), 0);
	ck_assert_int_eq(guest_mem_read(&m, 0x200f8, back, 32), 0);
	for (unsigned i = 0; i < 32; i++) {
		uint8_t want = i < 8 ? 0 : i < 24 ? 0x5a : buf[i - 8];

		ck_assert_uint_eq(back[i], want);
	}
	guest_mem_destroy(&m);
}
END_TEST

/* Contiguous regions: copies may cross the boundary (ptr may not). */
START_TEST(copies_across_contiguous_regions)
{
	static const struct guest_region l[] = {{.gpa = 0, .size = 0x1000},
						{.gpa = 0x1000, .size = 0x1000},
						{.gpa = 0x2000, .size = 0x1000}};
	uint8_t buf[0x2000], back[0x2000];
	struct guest_mem m;
	void *p;

	ck_assert_int_eq(guest_mem_create_regions(&m, l, 3), 0);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13 + 7);
	ck_assert_int_eq(guest_mem_write(&m, 0xff8, buf, sizeof(buf)), 0);
	ck_assert_int_eq(guest_mem_read(&m, 0xff8, back, sizeof(back)), 0);
	ck_assert_mem_eq(back, buf, sizeof(buf));
	ck_assert_int_eq(guest_mem_ptr(&m, 0x1000, 0x1000, &p), 0);
	ck_assert_mem_eq(p, buf + 8, 0x1000);
	ck_assert_int_eq(guest_mem_ptr(&m, 0xff8, 0x10, &p), -EFAULT);
	ck_assert_int_eq(guest_mem_fill(&m, 0xffc, 0xee, 8), 0);
	ck_assert_int_eq(guest_mem_read(&m, 0xff8, back, 16), 0);
	ck_assert_uint_eq(back[3], buf[3]);
	ck_assert_uint_eq(back[4], 0xee);
	ck_assert_uint_eq(back[11], 0xee);
	ck_assert_uint_eq(back[12], buf[12]);
	/* Past the last region is still refused. */
	ck_assert_int_eq(guest_mem_read(&m, 0x2ff8, back, 16), -EFAULT);
	guest_mem_destroy(&m);
}
END_TEST

/* A device process reaches the same bytes through the memfd at fd_offset. */
START_TEST(fd_offset_matches_memfd_contents)
{
	static const char msg[] = "through the memfd";
	char back[sizeof(msg)];
	struct guest_mem m;
	uint64_t off = 0;

	make_gapped(&m);
	ck_assert_int_eq(guest_mem_write(&m, 0x20800, msg, sizeof(msg)), 0);
	ck_assert_int_eq(guest_mem_fd_offset(&m, 0x20800, sizeof(msg), &off), 0);
	ck_assert_uint_eq(off, 0x10800);
	ck_assert_int_eq(pread_full(m.fd, back, sizeof(back), (off_t)off), 0);
	ck_assert_str_eq(back, msg);
	ck_assert_int_eq(guest_mem_fd_offset(&m, 0x100, 0x100, &off), 0);
	ck_assert_uint_eq(off, 0x100);
	ck_assert_int_eq(guest_mem_fd_offset(&m, 0xff00, 0x200, &off), -EFAULT);
	ck_assert_int_eq(guest_mem_fd_offset(&m, 0x18000, 1, &off), -EFAULT);
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(memfd_is_sealed)
{
	struct guest_mem m;
	int seals;

	ck_assert_int_eq(guest_mem_create(&m, MiB(2)), 0);
	seals = fcntl(m.fd, F_GET_SEALS);
	ck_assert_int_ge(seals, 0);
	ck_assert_int_eq(seals & (F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL),
			 F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
	ck_assert_int_ne(ftruncate(m.fd, (off_t)MiB(1)), 0);
	ck_assert_int_ne(ftruncate(m.fd, (off_t)MiB(4)), 0);
	ck_assert_int_ne(fcntl(m.fd, F_ADD_SEALS, F_SEAL_WRITE), 0);
	ck_assert_int_ne(fcntl(m.fd, F_GETFD) & FD_CLOEXEC, 0);
	guest_mem_destroy(&m);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("guest_mem");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, layout_small_ram_is_one_low_region);
	tcase_add_test(tc, layout_exactly_up_to_the_hole);
	tcase_add_test(tc, layout_above_the_hole_resumes_at_4g);
	tcase_add_test(tc, below_and_above_4g_split_a_region);
	tcase_add_test(tc, bad_sizes_refused);
	tcase_add_test(tc, region_lists_are_checked);
	tcase_add_test(tc, ptr_checks_the_whole_range);
	tcase_add_test(tc, read_write_fill_range_checks);
	tcase_add_test(tc, copies_across_contiguous_regions);
	tcase_add_test(tc, fd_offset_matches_memfd_contents);
	tcase_add_test(tc, memfd_is_sealed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
