/*
 * The byte-stream cursor over a chain's buffers: reads, writes and splits across buffer
 * boundaries, and all-or-nothing behaviour when a request does not fit.
 */
#include <string.h>

#include "test/unit/testutil.h"
#include "core/iov.h"
#include "virtio/queue.h"

/* Three buffers of 3, 0 and 5 bytes: boundaries in odd places and an empty one. */
struct bufs {
	uint8_t a[3], b[1], c[5];
	struct iovec iov[3];
};

static void bufs_init(struct bufs *b)
{
	memset(b, 0, sizeof(*b));
	b->iov[0] = (struct iovec){b->a, sizeof(b->a)};
	b->iov[1] = (struct iovec){b->b, 0};
	b->iov[2] = (struct iovec){b->c, sizeof(b->c)};
}

START_TEST(test_read_across_buffers)
{
	struct bufs b;
	struct iov_cursor cur;
	uint8_t out[8];

	bufs_init(&b);
	memcpy(b.a, "abc", 3);
	memcpy(b.c, "defgh", 5);
	iov_cursor_init(&cur, b.iov, 3);
	ck_assert_uint_eq(iov_remaining(&cur), 8);
	ck_assert_int_eq(iov_read(&cur, out, 2), 0);
	ck_assert_mem_eq(out, "ab", 2);
	ck_assert_int_eq(iov_read(&cur, out, 4), 0);
	ck_assert_mem_eq(out, "cdef", 4);
	ck_assert_uint_eq(iov_remaining(&cur), 2);
	ck_assert_uint_eq(iov_consumed(&cur), 6);
	ck_assert_int_eq(iov_read(&cur, out, 2), 0);
	ck_assert_mem_eq(out, "gh", 2);
	ck_assert_uint_eq(iov_remaining(&cur), 0);
	ck_assert_int_eq(iov_read(&cur, out, 0), 0);
	ck_assert_int_eq(iov_read(&cur, out, 1), -EMSGSIZE);
}
END_TEST

START_TEST(test_short_read_moves_nothing)
{
	struct bufs b;
	struct iov_cursor cur;
	uint8_t out[16];

	bufs_init(&b);
	memcpy(b.a, "abc", 3);
	memcpy(b.c, "defgh", 5);
	iov_cursor_init(&cur, b.iov, 3);
	ck_assert_int_eq(iov_skip(&cur, 1), 0);
	memset(out, 0xee, sizeof(out));
	ck_assert_int_eq(iov_read(&cur, out, 8), -EMSGSIZE);
	ck_assert_uint_eq(out[0], 0xee);
	ck_assert_int_eq(iov_write(&cur, out, 8), -EMSGSIZE);
	ck_assert_mem_eq(b.c, "defgh", 5);
	ck_assert_int_eq(iov_skip(&cur, 8), -EMSGSIZE);
	ck_assert_int_eq(iov_zero(&cur, 8), -EMSGSIZE);
	ck_assert_uint_eq(iov_remaining(&cur), 7);
	ck_assert_int_eq(iov_read(&cur, out, 7), 0);
	ck_assert_mem_eq(out, "bcdefgh", 7);
}
END_TEST

START_TEST(test_write_and_zero)
{
	struct bufs b;
	struct iov_cursor cur;

	bufs_init(&b);
	iov_cursor_init(&cur, b.iov, 3);
	ck_assert_int_eq(iov_write(&cur, "WXYZ", 4), 0);
	ck_assert_mem_eq(b.a, "WXY", 3);
	ck_assert_uint_eq(b.c[0], 'Z');
	memset(b.c + 1, 0xff, 4);
	ck_assert_int_eq(iov_zero(&cur, 3), 0);
	ck_assert_mem_eq(b.c, "Z\0\0\0\xff", 5);
	ck_assert_uint_eq(iov_consumed(&cur), 7);
}
END_TEST

START_TEST(test_take)
{
	struct bufs b;
	struct iov_cursor cur;
	struct iovec out[3];
	unsigned nr = 99;

	bufs_init(&b);
	iov_cursor_init(&cur, b.iov, 3);
	ck_assert_int_eq(iov_skip(&cur, 1), 0);
	/* 2 bytes of a, then 3 of c: two pieces, the empty buffer left out. */
	ck_assert_int_eq(iov_take(&cur, 5, out, 1, &nr), -E2BIG);
	ck_assert_uint_eq(iov_remaining(&cur), 7);
	ck_assert_int_eq(iov_take(&cur, 8, out, 3, &nr), -EMSGSIZE);
	ck_assert_int_eq(iov_take(&cur, 5, out, 2, &nr), 0);
	ck_assert_uint_eq(nr, 2);
	ck_assert_ptr_eq(out[0].iov_base, b.a + 1);
	ck_assert_uint_eq(out[0].iov_len, 2);
	ck_assert_ptr_eq(out[1].iov_base, b.c);
	ck_assert_uint_eq(out[1].iov_len, 3);
	ck_assert_int_eq(iov_take(&cur, 2, out, 1, &nr), 0);
	ck_assert_uint_eq(nr, 1);
	ck_assert_ptr_eq(out[0].iov_base, b.c + 3);
	ck_assert_int_eq(iov_take(&cur, 0, out, 0, &nr), 0);
	ck_assert_uint_eq(nr, 0);
}
END_TEST

/* The block-device idiom: data area, then one status byte at the very end. */
START_TEST(test_split)
{
	struct bufs b;
	struct iov_cursor data, status;
	uint8_t byte = 0x42;

	bufs_init(&b);
	iov_cursor_init(&data, b.iov, 3);
	ck_assert_int_eq(iov_split(&data, 9, &status), -EMSGSIZE);
	ck_assert_int_eq(iov_split(&data, iov_remaining(&data) - 1, &status), 0);
	ck_assert_uint_eq(iov_remaining(&data), 7);
	ck_assert_uint_eq(iov_remaining(&status), 1);
	/* The data cursor stops at the split even inside a buffer. */
	ck_assert_int_eq(iov_write(&data, "1234567", 7), 0);
	ck_assert_int_eq(iov_write(&data, "8", 1), -EMSGSIZE);
	ck_assert_int_eq(iov_write(&status, &byte, 1), 0);
	ck_assert_mem_eq(b.a, "123", 3);
	ck_assert_mem_eq(b.c, "4567\x42", 5);
	ck_assert_uint_eq(iov_consumed(&data) + iov_consumed(&status), 8);
}
END_TEST

START_TEST(test_chain_reader_writer)
{
	uint8_t hdr[4] = "req", d1[2], d2[2];
	struct iovec iov[3] = {{hdr, 4}, {d1, 2}, {d2, 2}};
	struct virtq_chain c = {.iov = iov, .iov_cap = 3, .nr_out = 1, .nr_in = 2};
	struct iov_cursor rd, wr;
	uint8_t buf[4];

	iov_cursor_reader(&rd, &c);
	iov_cursor_writer(&wr, &c);
	ck_assert_uint_eq(iov_remaining(&rd), 4);
	ck_assert_uint_eq(iov_remaining(&wr), 4);
	ck_assert_int_eq(iov_read(&rd, buf, 4), 0);
	ck_assert_mem_eq(buf, "req", 4);
	ck_assert_int_eq(iov_read(&rd, buf, 1), -EMSGSIZE);
	ck_assert_int_eq(iov_write(&wr, "wxyz", 4), 0);
	ck_assert_mem_eq(d1, "wx", 2);
	ck_assert_mem_eq(d2, "yz", 2);
	ck_assert_mem_eq(hdr, "req", 4);
}
END_TEST

START_TEST(test_empty)
{
	struct iov_cursor cur;
	uint8_t x;

	iov_cursor_init(&cur, NULL, 0);
	ck_assert_uint_eq(iov_remaining(&cur), 0);
	ck_assert_int_eq(iov_read(&cur, &x, 0), 0);
	ck_assert_int_eq(iov_read(&cur, &x, 1), -EMSGSIZE);
	ck_assert_int_eq(iov_write(&cur, &x, 1), -EMSGSIZE);
}
END_TEST

static Suite *iov_suite(void)
{
	Suite *s = suite_create("iov");
	TCase *tc = tcase_create("cursor");

	tcase_add_test(tc, test_read_across_buffers);
	tcase_add_test(tc, test_short_read_moves_nothing);
	tcase_add_test(tc, test_write_and_zero);
	tcase_add_test(tc, test_take);
	tcase_add_test(tc, test_split);
	tcase_add_test(tc, test_chain_reader_writer);
	tcase_add_test(tc, test_empty);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(iov_suite());
}
