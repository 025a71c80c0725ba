/*
 * The split virtqueue against a host-played driver: good chains (direct, indirect, mixed),
 * every malformed shape a guest can build, fatal ring errors, and notification suppression
 * in both directions.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/guest_mem.h"
#include "core/log.h"
#include "test/unit/testutil.h"
#include "test/unit/virtq_driver.h"
#include "core/iov.h"
#include "virtio/queue.h"

/* Region A [0, 1M) holds the rings and data; B [2M, 3M) and C [3M, 4M) are adjacent. */
#define REG_A_END  0x100000ULL
#define REG_B	   0x200000ULL
#define REG_C	   0x300000ULL
#define REG_C_END  0x400000ULL
#define RING_GPA   0x1000ULL
#define DATA_GPA   0x40000ULL
#define DATA_LEN   (REG_A_END - DATA_GPA)
#define TABLE_GPA  REG_B
#define TABLE2_GPA (REG_B + 0x10000)

struct env {
	struct logger lg;
	struct guest_mem mem;
	struct virtq q;
	struct virtq_driver drv;
	struct virtq_chain c;
};

static void env_mem(struct env *e)
{
	const struct guest_region layout[] = {
		{.gpa = 0, .size = REG_A_END},
		{.gpa = REG_B, .size = REG_C - REG_B},
		{.gpa = REG_C, .size = REG_C_END - REG_C},
	};

	ck_assert_int_eq(guest_mem_create_regions(&e->mem, layout, ARRAY_SIZE(layout)), 0);
}

static void env_queue(struct env *e, uint16_t size, bool event_idx, bool indirect)
{
	ck_assert_int_eq(
		virtq_driver_init(&e->drv, &e->mem, size, RING_GPA, DATA_GPA, DATA_LEN, event_idx),
		0);
	ck_assert_int_eq(virtq_init(&e->q, &e->mem, size, e->drv.desc, e->drv.avail, e->drv.used,
				    event_idx, indirect, &e->lg),
			 0);
	ck_assert_int_eq(virtq_chain_alloc(&e->c, size), 0);
}

static void env_setup(struct env *e, uint16_t size, bool event_idx, bool indirect)
{
	memset(e, 0, sizeof(*e));
	log_init(&e->lg);
	e->lg.level = LOG_LVL_OFF;
	env_mem(e);
	env_queue(e, size, event_idx, indirect);
}

static void env_teardown(struct env *e)
{
	virtq_chain_free(&e->c);
	virtq_driver_destroy(&e->drv);
	guest_mem_destroy(&e->mem);
}

static void *host(struct env *e, uint64_t gpa, uint64_t len)
{
	void *p = NULL;

	ck_assert_int_eq(guest_mem_ptr(&e->mem, gpa, len, &p), 0);
	return p;
}

static uint64_t alloc(struct env *e, uint32_t len)
{
	uint64_t gpa = 0;

	ck_assert_int_eq(virtq_driver_alloc(&e->drv, len, &gpa), 0);
	return gpa;
}

static void complete(struct env *e, uint16_t head, uint32_t written)
{
	uint16_t id = 0xffff;
	uint32_t len = 0xffffffff;

	ck_assert_int_eq(virtq_push(&e->q, head, written), 0);
	ck_assert_int_eq(virtq_driver_get_used(&e->drv, &id, &len), 0);
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(len, written);
}

/* A well-formed request (16 readable bytes, 32 writable) goes through end to end. */
static void expect_good(struct env *e)
{
	uint64_t hdr = alloc(e, 16), resp = alloc(e, 32);
	const struct virtq_buf b[] = {{hdr, 16, false}, {resp, 32, true}};
	uint8_t *h = host(e, hdr, 16);
	struct iov_cursor rd, wr;
	uint8_t buf[16];
	uint16_t head;

	memset(h, 0x5a, 16);
	ck_assert_int_eq(virtq_driver_add(&e->drv, b, 2, &head), 0);
	ck_assert_int_eq(virtq_pop(&e->q, &e->c), 0);
	ck_assert_uint_eq(e->c.head, head);
	ck_assert_uint_eq(e->c.nr_out, 1);
	ck_assert_uint_eq(e->c.nr_in, 1);
	ck_assert_uint_eq(e->c.out_bytes, 16);
	ck_assert_uint_eq(e->c.in_bytes, 32);
	iov_cursor_reader(&rd, &e->c);
	ck_assert_int_eq(iov_read(&rd, buf, 16), 0);
	ck_assert_uint_eq(buf[15], 0x5a);
	iov_cursor_writer(&wr, &e->c);
	ck_assert_int_eq(iov_write(&wr, "pong", 4), 0);
	complete(e, head, (uint32_t)iov_consumed(&wr));
	ck_assert_mem_eq(host(e, resp, 4), "pong", 4);
	ck_assert_int_eq(virtq_pop(&e->q, &e->c), -ENOENT);
	virtq_driver_free_all(&e->drv);
}

/* Publishes head; the device must fail just that request, and the queue must go on. */
static void expect_bad(struct env *e, uint16_t head)
{
	uint16_t id;
	uint32_t len;

	ck_assert_int_eq(virtq_driver_publish(&e->drv, head), 0);
	ck_assert_int_eq(virtq_pop(&e->q, &e->c), -EBADMSG);
	ck_assert_uint_eq(e->c.head, head);
	ck_assert_uint_eq(e->c.nr_out + e->c.nr_in, 0);
	ck_assert_int_eq(virtq_push(&e->q, head, 0), 0);
	ck_assert_int_eq(virtq_driver_get_used(&e->drv, &id, &len), 0);
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(len, 0);
	expect_good(e);
}

static void set_desc(struct env *e, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	ck_assert_int_eq(virtq_driver_set_desc(&e->drv, i, addr, len, flags, next), 0);
}

static void set_tdesc(struct env *e, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
		      uint16_t flags, uint16_t next)
{
	ck_assert_int_eq(virtq_driver_set_table_desc(&e->drv, table, i, addr, len, flags, next), 0);
}

/* A single buffer at [addr, addr+len) in descriptor 5: must it be refused? */
static void expect_bad_buffer(struct env *e, uint64_t addr, uint32_t len)
{
	set_desc(e, 5, addr, len, VRING_DESC_F_WRITE, 0);
	expect_bad(e, 5);
}

/* ---- configuration ---- */

START_TEST(test_init_validates)
{
	struct env e;
	uint64_t d, a, u;

	env_setup(&e, 8, false, false);
	d = e.drv.desc;
	a = e.drv.avail;
	u = e.drv.used;
	ck_assert(virtq_ready(&e.q));
	/* Sizes: power of two in 1..32768. */
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 0, d, a, u, false, false, &e.lg), -EINVAL);
	ck_assert(!virtq_ready(&e.q));
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 3, d, a, u, false, false, &e.lg), -EINVAL);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 48, d, a, u, false, false, &e.lg), -EINVAL);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 1, d, a, u, false, false, &e.lg), 0);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 32768, 0x20000, REG_B, REG_C, true, true, &e.lg),
			 0);
	/* Alignment: desc 16, avail 2, used 4. */
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d + 8, a, u, false, false, &e.lg), -EINVAL);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d, a + 1, u, false, false, &e.lg), -EINVAL);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d, a, u + 2, false, false, &e.lg), -EINVAL);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d, a + 2, u + 4, false, false, &e.lg), 0);
	/* Rings must lie in one region: not in the gap, not across a region end. */
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, REG_A_END, a, u, false, false, &e.lg),
			 -EINVAL);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, REG_A_END - 64, a, u, false, false, &e.lg),
			 -EINVAL);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d, REG_C - 10, u, false, false, &e.lg),
			 -EINVAL);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d, a, REG_C - 20, false, false, &e.lg),
			 -EINVAL);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d, a, REG_C_END - 64, false, false, &e.lg),
			 -EINVAL);
	/* The event fields count: a used ring of 4+8*8 = 68 bytes fits at the end, 70 do not. */
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d, a, REG_C_END - 68, false, false, &e.lg), 0);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d, a, REG_C_END - 68, true, false, &e.lg),
			 -EINVAL);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d, a, REG_C_END - 72, true, false, &e.lg), 0);
	/* Likewise avail: 4+2*8 = 20 bytes, 22 with used_event. */
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d, REG_A_END - 20, u, false, false, &e.lg), 0);
	ck_assert_int_eq(virtq_init(&e.q, &e.mem, 8, d, REG_A_END - 20, u, true, false, &e.lg),
			 -EINVAL);
	ck_assert_int_eq(
		virtq_init(&e.q, &e.mem, 8, 0xfffffffffffffff0ULL, a, u, false, false, &e.lg),
		-EINVAL);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), -EIO);
	env_teardown(&e);
}
END_TEST

START_TEST(test_reset_and_reinit)
{
	struct env e;

	env_setup(&e, 8, false, false);
	expect_good(&e);
	virtq_reset(&e.q);
	ck_assert(!virtq_ready(&e.q));
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), -EIO);
	ck_assert_int_eq(virtq_push(&e.q, 0, 0), -EIO);
	virtq_driver_destroy(&e.drv);
	virtq_chain_free(&e.c);
	/* A fresh driver starts its indices at 0 again; so must the queue. */
	env_queue(&e, 8, false, false);
	expect_good(&e);
	env_teardown(&e);
}
END_TEST

/* ---- good chains ---- */

START_TEST(test_simple_chains)
{
	struct env e;
	uint64_t g[4];
	uint16_t h1, h2;

	env_setup(&e, 8, false, false);
	for (unsigned i = 0; i < 4; i++)
		g[i] = alloc(&e, 100 + i);
	const struct virtq_buf one[] = {{g[0], 100, false}};
	const struct virtq_buf three[] = {{g[1], 101, false}, {g[2], 102, true}, {g[3], 103, true}};

	ck_assert_int_eq(virtq_driver_add(&e.drv, one, 1, &h1), 0);
	ck_assert_int_eq(virtq_driver_add(&e.drv, three, 3, &h2), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_uint_eq(e.c.head, h1);
	ck_assert_uint_eq(e.c.nr_out, 1);
	ck_assert_uint_eq(e.c.nr_in, 0);
	ck_assert_ptr_eq(e.c.iov[0].iov_base, host(&e, g[0], 100));
	ck_assert_uint_eq(e.c.iov[0].iov_len, 100);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_uint_eq(e.c.head, h2);
	ck_assert_uint_eq(e.c.nr_out, 1);
	ck_assert_uint_eq(e.c.nr_in, 2);
	ck_assert_uint_eq(e.c.out_bytes, 101);
	ck_assert_uint_eq(e.c.in_bytes, 205);
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_ptr_eq(e.c.iov[i].iov_base, host(&e, g[i + 1], 101 + i));
		ck_assert_uint_eq(e.c.iov[i].iov_len, 101 + i);
	}
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), -ENOENT);
	/* Completion order is the device's choice. */
	complete(&e, h2, 205);
	complete(&e, h1, 0);
	env_teardown(&e);
}
END_TEST

START_TEST(test_full_ring_and_index_wrap)
{
	struct env e;
	uint64_t buf;
	uint16_t heads[4];

	env_setup(&e, 4, false, false);
	buf = alloc(&e, 64);
	const struct virtq_buf b[] = {{buf, 64, true}};

	/* Enough rounds to wrap the 16-bit free-running indices, with the ring full each time. */
	for (unsigned round = 0; round < 17000; round++) {
		for (unsigned i = 0; i < 4; i++)
			ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &heads[i]), 0);
		for (unsigned i = 0; i < 4; i++) {
			ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
			ck_assert_uint_eq(e.c.head, heads[i]);
		}
		ck_assert_int_eq(virtq_pop(&e.q, &e.c), -ENOENT);
		for (unsigned i = 0; i < 4; i++)
			complete(&e, heads[i], i);
	}
	ck_assert_uint_eq(e.drv.avail_idx, (uint16_t)(17000 * 4));
	env_teardown(&e);
}
END_TEST

START_TEST(test_chain_of_queue_size)
{
	struct env e;
	struct virtq_buf b[8];
	uint16_t head;

	env_setup(&e, 8, false, false);
	for (unsigned i = 0; i < 8; i++)
		b[i] = (struct virtq_buf){alloc(&e, 8), 8, i >= 5};
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 8, &head), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_uint_eq(e.c.nr_out, 5);
	ck_assert_uint_eq(e.c.nr_in, 3);
	complete(&e, head, 24);
	env_teardown(&e);
}
END_TEST

START_TEST(test_indirect)
{
	struct env e;
	uint64_t g[3];
	uint16_t head;

	env_setup(&e, 8, false, true);
	for (unsigned i = 0; i < 3; i++)
		g[i] = alloc(&e, 512);
	const struct virtq_buf b[] = {{g[0], 16, false}, {g[1], 512, true}, {g[2], 1, true}};

	ck_assert_int_eq(virtq_driver_add_indirect(&e.drv, b, 3, TABLE_GPA, &head), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_uint_eq(e.c.head, head);
	ck_assert_uint_eq(e.c.nr_out, 1);
	ck_assert_uint_eq(e.c.nr_in, 2);
	ck_assert_uint_eq(e.c.out_bytes, 16);
	ck_assert_uint_eq(e.c.in_bytes, 513);
	ck_assert_ptr_eq(e.c.iov[2].iov_base, host(&e, g[2], 1));
	complete(&e, head, 513);
	/* The descriptor naming the table has its write flag ignored (spec 2.7.5.3.2). */
	set_tdesc(&e, TABLE_GPA, 0, g[0], 16, 0, 0);
	set_desc(&e, 6, TABLE_GPA, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	ck_assert_int_eq(virtq_driver_publish(&e.drv, 6), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_uint_eq(e.c.nr_out, 1);
	complete(&e, 6, 0);
	/* A table exactly as long as the queue is fine, and not 16-aligned is fine too. */
	for (unsigned i = 0; i < 8; i++)
		set_tdesc(&e, TABLE2_GPA + 8, (uint16_t)i, g[0], 4, VRING_DESC_F_NEXT,
			  (uint16_t)(i + 1));
	set_tdesc(&e, TABLE2_GPA + 8, 7, g[1], 4, VRING_DESC_F_WRITE, 0);
	set_desc(&e, 6, TABLE2_GPA + 8, 8 * 16, VRING_DESC_F_INDIRECT, 0);
	ck_assert_int_eq(virtq_driver_publish(&e.drv, 6), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_uint_eq(e.c.nr_out, 7);
	ck_assert_uint_eq(e.c.nr_in, 1);
	complete(&e, 6, 4);
	expect_good(&e);
	env_teardown(&e);
}
END_TEST

/* Direct descriptors followed by one indirect one: valid (spec 2.7.5.3.2). */
START_TEST(test_mixed_direct_then_indirect)
{
	struct env e;
	uint64_t hdr, data, st;

	env_setup(&e, 8, false, true);
	hdr = alloc(&e, 16);
	data = alloc(&e, 4096);
	st = alloc(&e, 1);
	set_desc(&e, 2, hdr, 16, VRING_DESC_F_NEXT, 3);
	set_desc(&e, 3, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	set_tdesc(&e, TABLE_GPA, 0, data, 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_tdesc(&e, TABLE_GPA, 1, st, 1, VRING_DESC_F_WRITE, 0);
	ck_assert_int_eq(virtq_driver_publish(&e.drv, 2), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_uint_eq(e.c.head, 2);
	ck_assert_uint_eq(e.c.nr_out, 1);
	ck_assert_uint_eq(e.c.nr_in, 2);
	ck_assert_uint_eq(e.c.in_bytes, 4097);
	ck_assert_ptr_eq(e.c.iov[0].iov_base, host(&e, hdr, 16));
	ck_assert_ptr_eq(e.c.iov[2].iov_base, host(&e, st, 1));
	complete(&e, 2, 4097);
	expect_good(&e);
	env_teardown(&e);
}
END_TEST

START_TEST(test_zero_length_buffers)
{
	struct env e;
	uint64_t a, b;

	env_setup(&e, 8, false, false);
	a = alloc(&e, 8);
	b = alloc(&e, 8);
	/* Empty buffers carry nothing: their address and direction are not looked at. */
	set_desc(&e, 1, a, 8, VRING_DESC_F_NEXT, 2);
	set_desc(&e, 2, 0xdead00000000ULL, 0, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	set_desc(&e, 3, a, 0, VRING_DESC_F_NEXT, 4);
	set_desc(&e, 4, b, 8, VRING_DESC_F_WRITE, 0);
	ck_assert_int_eq(virtq_driver_publish(&e.drv, 1), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_uint_eq(e.c.nr_out, 1);
	ck_assert_uint_eq(e.c.nr_in, 1);
	ck_assert_uint_eq(e.c.out_bytes, 8);
	ck_assert_uint_eq(e.c.in_bytes, 8);
	complete(&e, 1, 0);
	/* A chain of nothing but an empty buffer is a valid, empty request. */
	set_desc(&e, 1, 0, 0, 0, 0);
	ck_assert_int_eq(virtq_driver_publish(&e.drv, 1), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_uint_eq(e.c.nr_out + e.c.nr_in, 0);
	complete(&e, 1, 0);
	env_teardown(&e);
}
END_TEST

/* A buffer may end exactly at a region end, and start exactly at a region start. */
START_TEST(test_buffers_at_region_edges)
{
	struct env e;

	env_setup(&e, 8, false, false);
	set_desc(&e, 1, REG_A_END - 16, 16, VRING_DESC_F_NEXT, 2);
	set_desc(&e, 2, REG_B, 16, VRING_DESC_F_NEXT, 3);
	set_desc(&e, 3, REG_C - 1, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 4);
	set_desc(&e, 4, REG_C, REG_C_END - REG_C, VRING_DESC_F_WRITE, 0);
	ck_assert_int_eq(virtq_driver_publish(&e.drv, 1), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_uint_eq(e.c.nr_out, 2);
	ck_assert_uint_eq(e.c.nr_in, 2);
	ck_assert_uint_eq(e.c.in_bytes, 1 + REG_C_END - REG_C);
	complete(&e, 1, 0);
	env_teardown(&e);
}
END_TEST

/* ---- malformed chains: fail that request, keep the queue ---- */

START_TEST(test_bad_next_out_of_range)
{
	struct env e;

	env_setup(&e, 8, false, false);
	set_desc(&e, 1, DATA_GPA, 8, VRING_DESC_F_NEXT, 8);
	expect_bad(&e, 1);
	set_desc(&e, 1, DATA_GPA, 8, VRING_DESC_F_NEXT, 0xffff);
	expect_bad(&e, 1);
	env_teardown(&e);
}
END_TEST

START_TEST(test_bad_loops)
{
	struct env e;

	env_setup(&e, 8, false, false);
	/* Self loop. */
	set_desc(&e, 3, DATA_GPA, 8, VRING_DESC_F_NEXT, 3);
	expect_bad(&e, 3);
	/* A longer loop 1 -> 2 -> 4 -> 1. */
	set_desc(&e, 1, DATA_GPA, 8, VRING_DESC_F_NEXT, 2);
	set_desc(&e, 2, DATA_GPA, 8, VRING_DESC_F_NEXT, 4);
	set_desc(&e, 4, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
	expect_bad(&e, 1);
	/* A loop of empty buffers is still a loop. */
	set_desc(&e, 6, 0, 0, VRING_DESC_F_NEXT, 6);
	expect_bad(&e, 6);
	env_teardown(&e);
}
END_TEST

START_TEST(test_bad_loop_in_indirect_table)
{
	struct env e;

	env_setup(&e, 8, false, true);
	set_tdesc(&e, TABLE_GPA, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
	set_tdesc(&e, TABLE_GPA, 1, DATA_GPA, 8, VRING_DESC_F_NEXT, 0);
	set_desc(&e, 1, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	/* next beyond the table's own length (not the queue's). */
	set_tdesc(&e, TABLE_GPA, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 2);
	set_desc(&e, 1, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	env_teardown(&e);
}
END_TEST

START_TEST(test_bad_chain_longer_than_queue)
{
	struct env e;

	env_setup(&e, 8, false, true);
	/* Room for more buffers than the queue size, so only the queue-size rule can refuse. */
	virtq_chain_free(&e.c);
	ck_assert_int_eq(virtq_chain_alloc(&e.c, 64), 0);
	/* 7 direct buffers, then a table with 2: 9 > 8. */
	for (uint16_t i = 0; i < 7; i++)
		set_desc(&e, i, DATA_GPA, 8, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
	set_desc(&e, 7, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	set_tdesc(&e, TABLE_GPA, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
	set_tdesc(&e, TABLE_GPA, 1, DATA_GPA, 8, 0, 0);
	expect_bad(&e, 0);
	/* With one entry in the table the chain has exactly 8 buffers: fine. */
	for (uint16_t i = 0; i < 7; i++)
		set_desc(&e, i, DATA_GPA, 8, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
	set_desc(&e, 7, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	set_tdesc(&e, TABLE_GPA, 0, DATA_GPA, 8, 0, 0);
	ck_assert_int_eq(virtq_driver_publish(&e.drv, 0), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_uint_eq(e.c.nr_out, 8);
	complete(&e, 0, 0);
	expect_good(&e);
	env_teardown(&e);
}
END_TEST

START_TEST(test_bad_indirect_shapes)
{
	struct env e;

	env_setup(&e, 8, false, true);
	set_tdesc(&e, TABLE_GPA, 0, DATA_GPA, 8, 0, 0);
	/* Indirect inside an indirect table. */
	set_tdesc(&e, TABLE2_GPA, 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(&e, 1, TABLE2_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	/* Indirect together with NEXT. */
	set_desc(&e, 2, DATA_GPA, 8, 0, 0);
	set_desc(&e, 1, TABLE_GPA, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 2);
	expect_bad(&e, 1);
	/* Lengths: 0, not a multiple of 16, more entries than the queue, huge. */
	set_desc(&e, 1, TABLE_GPA, 0, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	set_desc(&e, 1, TABLE_GPA, 24, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	set_desc(&e, 1, TABLE_GPA, 9 * 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	set_desc(&e, 1, TABLE_GPA, 0xfffffff0, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	/* Table outside memory: in the gap, across a region end, wrapping. */
	set_desc(&e, 1, REG_A_END + 0x1000, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	set_desc(&e, 1, REG_A_END - 16, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	set_desc(&e, 1, 0xfffffffffffffff0ULL, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	/* A readable buffer after a writable one inside the table. */
	set_tdesc(&e, TABLE2_GPA, 0, DATA_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_tdesc(&e, TABLE2_GPA, 1, DATA_GPA, 8, 0, 0);
	set_desc(&e, 1, TABLE2_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	/* ... and across the direct/indirect boundary. */
	set_desc(&e, 3, DATA_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(&e, 1, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 3);
	env_teardown(&e);
}
END_TEST

START_TEST(test_bad_indirect_not_negotiated)
{
	struct env e;

	env_setup(&e, 8, false, false);
	set_tdesc(&e, TABLE_GPA, 0, DATA_GPA, 8, 0, 0);
	set_desc(&e, 1, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&e, 1);
	env_teardown(&e);
}
END_TEST

START_TEST(test_bad_readable_after_writable)
{
	struct env e;

	env_setup(&e, 8, false, false);
	set_desc(&e, 1, DATA_GPA, 8, VRING_DESC_F_NEXT, 2);
	set_desc(&e, 2, DATA_GPA + 8, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3);
	set_desc(&e, 3, DATA_GPA + 16, 8, 0, 0);
	expect_bad(&e, 1);
	env_teardown(&e);
}
END_TEST

START_TEST(test_bad_buffer_addresses)
{
	struct env e;

	env_setup(&e, 8, false, false);
	expect_bad_buffer(&e, 0, 0xffffffff);
	expect_bad_buffer(&e, DATA_GPA, 0xffffffff);
	expect_bad_buffer(&e, REG_A_END, 1);		      /* in the gap */
	expect_bad_buffer(&e, REG_C_END, 16);		      /* past the end of RAM */
	expect_bad_buffer(&e, 1ULL << 40, 16);		      /* far away */
	expect_bad_buffer(&e, 0xfffffffffffff000ULL, 0x2000); /* wraps to low memory */
	expect_bad_buffer(&e, 0xffffffffffffffffULL, 1);
	expect_bad_buffer(&e, REG_A_END - 8, 16); /* straddles a region end into a gap */
	expect_bad_buffer(&e, REG_C - 8, 16);	  /* straddles two adjacent regions */
	/* One bad buffer in the middle of a chain fails the whole chain. */
	set_desc(&e, 1, DATA_GPA, 8, VRING_DESC_F_NEXT, 2);
	set_desc(&e, 2, REG_A_END, 8, VRING_DESC_F_NEXT, 3);
	set_desc(&e, 3, DATA_GPA, 8, VRING_DESC_F_WRITE, 0);
	expect_bad(&e, 1);
	env_teardown(&e);
}
END_TEST

START_TEST(test_bad_more_buffers_than_device_takes)
{
	struct env e;
	struct virtq_buf b[3];
	uint16_t head;

	env_setup(&e, 8, false, false);
	virtq_chain_free(&e.c);
	ck_assert_int_eq(virtq_chain_alloc(&e.c, 2), 0);
	for (unsigned i = 0; i < 3; i++)
		b[i] = (struct virtq_buf){alloc(&e, 8), 8, false};
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 3, &head), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), -EBADMSG);
	ck_assert_uint_eq(e.c.head, head);
	complete(&e, head, 0);
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 2, &head), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	complete(&e, head, 0);
	env_teardown(&e);
}
END_TEST

/* Per direction the byte count must fit the 32-bit used length. */
START_TEST(test_bad_length_overflow)
{
	const struct guest_region big[] = {{.gpa = 0, .size = 0x80002000ULL}};
	struct logger lg;
	struct guest_mem m;
	struct virtq_driver d;
	struct virtq q;
	struct virtq_chain c;
	uint16_t id;
	uint32_t len;

	log_init(&lg);
	lg.level = LOG_LVL_OFF;
	/* Sparse memfd: only the pages the rings use are ever touched. */
	ck_assert_int_eq(guest_mem_create_regions(&m, big, 1), 0);
	ck_assert_int_eq(virtq_driver_init(&d, &m, 4, 0x1000, 0, 0, false), 0);
	ck_assert_int_eq(virtq_init(&q, &m, 4, d.desc, d.avail, d.used, false, false, &lg), 0);
	ck_assert_int_eq(virtq_chain_alloc(&c, 4), 0);

	ck_assert_int_eq(virtq_driver_set_desc(&d, 0, 0x2000, 0x80000000u, VRING_DESC_F_NEXT, 1),
			 0);
	ck_assert_int_eq(virtq_driver_set_desc(&d, 1, 0x2000, 0x80000000u, 0, 0), 0);
	ck_assert_int_eq(virtq_driver_publish(&d, 0), 0);
	ck_assert_int_eq(virtq_pop(&q, &c), -EBADMSG);
	ck_assert_int_eq(virtq_push(&q, 0, 0), 0);
	ck_assert_int_eq(virtq_driver_get_used(&d, &id, &len), 0);

	/* 0xffffffff in total still fits. */
	ck_assert_int_eq(virtq_driver_set_desc(&d, 1, 0x2000, 0x7fffffffu, 0, 0), 0);
	ck_assert_int_eq(virtq_driver_publish(&d, 0), 0);
	ck_assert_int_eq(virtq_pop(&q, &c), 0);
	ck_assert_uint_eq(c.out_bytes, 0xffffffffu);
	ck_assert_int_eq(virtq_push(&q, 0, 0), 0);

	/* 2 GiB each way is two separate counts. */
	ck_assert_int_eq(virtq_driver_set_desc(&d, 1, 0x2000, 0x80000000u, VRING_DESC_F_WRITE, 0),
			 0);
	ck_assert_int_eq(virtq_driver_publish(&d, 0), 0);
	ck_assert_int_eq(virtq_pop(&q, &c), 0);
	ck_assert_uint_eq(c.out_bytes, 0x80000000u);
	ck_assert_uint_eq(c.in_bytes, 0x80000000u);

	virtq_chain_free(&c);
	virtq_driver_destroy(&d);
	guest_mem_destroy(&m);
}
END_TEST

/* ---- fatal ring errors ---- */

START_TEST(test_fatal_head_out_of_range)
{
	struct env e;

	env_setup(&e, 8, false, false);
	expect_good(&e);
	ck_assert_int_eq(virtq_driver_publish(&e.drv, 8), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), -EIO);
	/* Broken stays broken, even once the guest publishes good chains. */
	ck_assert_int_eq(virtq_driver_publish(&e.drv, 0), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), -EIO);
	ck_assert_int_eq(virtq_push(&e.q, 0, 0), -EIO);
	ck_assert(!virtq_should_notify(&e.q));
	ck_assert(virtq_enable_notify(&e.q));
	env_teardown(&e);
}
END_TEST

START_TEST(test_fatal_avail_idx_jump)
{
	struct env e;
	uint64_t buf;
	uint16_t head;

	env_setup(&e, 8, false, false);
	buf = alloc(&e, 8);
	const struct virtq_buf b[] = {{buf, 8, false}};

	/* A full ring (exactly the queue size ahead) is legitimate. */
	for (unsigned i = 0; i < 8; i++)
		ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &head), 0);
	for (unsigned i = 0; i < 8; i++)
		ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), -ENOENT);
	/* Nine ahead of what the device consumed cannot happen. */
	virtq_driver_set_avail_idx(&e.drv, (uint16_t)(e.drv.avail_idx + 9));
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), -EIO);
	virtq_driver_set_avail_idx(&e.drv, (uint16_t)(e.drv.avail_idx - 9));
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), -EIO);
	env_teardown(&e);
}
END_TEST

START_TEST(test_fatal_avail_idx_backwards)
{
	struct env e;

	env_setup(&e, 8, false, false);
	expect_good(&e);
	/* A decrement looks like a jump of almost 65536. */
	virtq_driver_set_avail_idx(&e.drv, (uint16_t)(e.drv.avail_idx - 1));
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), -EIO);
	env_teardown(&e);
}
END_TEST

/* A guest that fails request after request gets a bounded number of log lines. */
START_TEST(test_malformed_logging_is_rate_limited)
{
	struct env e;
	char path[64], text[8192];
	int fd, saved, lines = 0;
	ssize_t n;

	env_setup(&e, 8, false, false);
	e.lg.level = LOG_LVL_WARN;
	ck_assert_int_eq(testutil_tmpfile("", 0, path, sizeof(path)), 0);
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	saved = dup(2);
	dup2(fd, 2);
	set_desc(&e, 1, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
	for (unsigned i = 0; i < 1000; i++) {
		ck_assert_int_eq(virtq_driver_publish(&e.drv, 1), 0);
		ck_assert_int_eq(virtq_pop(&e.q, &e.c), -EBADMSG);
		ck_assert_int_eq(virtq_push(&e.q, 1, 0), 0);
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	fd = open(path, O_RDONLY);
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	unlink(path);
	ck_assert_int_gt(n, 0);
	text[n] = 0;
	for (char *p = text; (p = strchr(p, '\n')); p++)
		lines++;
	/* The 1st, 2nd, 4th ... 512th: ten lines for a thousand bad requests. */
	ck_assert_int_eq(lines, 10);
	ck_assert(strstr(text, "head 1"));
	ck_assert_uint_eq(e.q.nr_malformed, 1000);
	env_teardown(&e);
}
END_TEST

/* ---- notifications ---- */

START_TEST(test_need_event_table)
{
	static const struct {
		uint16_t event, new_idx, old;
		bool need;
	} t[] = {
		{0, 1, 0, true},	 /* the spec's example: used_event 0, first buffer */
		{0, 2, 1, false},	 /* already past it */
		{5, 6, 5, true},	 /* exactly the entry at event */
		{5, 10, 0, true},	 /* a batch that crosses event */
		{5, 5, 0, false},	 /* a batch that stops just short */
		{10, 9, 5, false},	 /* event still ahead */
		{3, 3, 3, false},	 /* nothing moved */
		{65535, 0, 65535, true}, /* crossing through the wrap */
		{65534, 1, 65533, true}, /* a batch spanning the wrap */
		{2, 1, 65533, false},	 /* spanning the wrap, event still ahead */
		{0, 0, 65535, false},	 /* idx at 0, event at the entry 0 not yet used */
		{65535, 65535, 65534, false},
		{100, 50, 40, false},
		{40, 50, 40, true},
		{39, 50, 40, false}, /* event behind old: already signalled for it */
		{0, 32768, 0, true},
	};

	for (unsigned i = 0; i < ARRAY_SIZE(t); i++)
		ck_assert_msg(virtq_need_event(t[i].event, t[i].new_idx, t[i].old) == t[i].need,
			      "row %u", i);
}
END_TEST

START_TEST(test_should_notify_event_idx)
{
	struct env e;
	uint64_t buf;
	uint16_t h[6];

	env_setup(&e, 8, true, false);
	buf = alloc(&e, 8);
	const struct virtq_buf b[] = {{buf, 8, true}};

	for (unsigned i = 0; i < 6; i++) {
		ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h[i]), 0);
		ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	}
	/* The driver wants an interrupt when used entry 3 is written (used idx reaches 4). */
	virtq_driver_set_used_event(&e.drv, 3);
	/* The NO_INTERRUPT flag means nothing with EVENT_IDX. */
	virtq_driver_set_no_interrupt(&e.drv, true);
	ck_assert_int_eq(virtq_push(&e.q, h[0], 0), 0);
	ck_assert(virtq_should_notify(&e.q)); /* the first decision always notifies */
	ck_assert_int_eq(virtq_push(&e.q, h[1], 0), 0);
	ck_assert(!virtq_should_notify(&e.q));
	ck_assert_int_eq(virtq_push(&e.q, h[2], 0), 0);
	ck_assert(!virtq_should_notify(&e.q));
	ck_assert_int_eq(virtq_push(&e.q, h[3], 0), 0);
	ck_assert(virtq_should_notify(&e.q));
	/* No new used entries since the last decision: nothing to signal. */
	ck_assert(!virtq_should_notify(&e.q));
	/* A batch that crosses used_event is signalled once. */
	virtq_driver_set_used_event(&e.drv, 4);
	ck_assert_int_eq(virtq_push(&e.q, h[4], 0), 0);
	ck_assert_int_eq(virtq_push(&e.q, h[5], 0), 0);
	ck_assert(virtq_should_notify(&e.q));
	env_teardown(&e);
}
END_TEST

START_TEST(test_should_notify_no_interrupt_flag)
{
	struct env e;
	uint64_t buf;
	uint16_t h;

	env_setup(&e, 8, false, false);
	buf = alloc(&e, 8);
	const struct virtq_buf b[] = {{buf, 8, true}};

	for (unsigned i = 0; i < 3; i++) {
		ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h), 0);
		ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
		virtq_driver_set_no_interrupt(&e.drv, i == 1);
		ck_assert_int_eq(virtq_push(&e.q, h, 0), 0);
		ck_assert(virtq_should_notify(&e.q) == (i != 1));
	}
	env_teardown(&e);
}
END_TEST

/* Without EVENT_IDX the device suppresses kicks with VRING_USED_F_NO_NOTIFY. */
START_TEST(test_kick_suppression_flags)
{
	struct env e;
	uint64_t buf;
	uint16_t h;

	env_setup(&e, 8, false, false);
	buf = alloc(&e, 8);
	const struct virtq_buf b[] = {{buf, 8, true}};

	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h), 0);
	ck_assert(virtq_driver_kick(&e.drv));
	virtq_disable_notify(&e.q);
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h), 0);
	ck_assert(!virtq_driver_kick(&e.drv));
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), -ENOENT);
	/* Work that arrives while kicks are off is found by the re-check. */
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h), 0);
	ck_assert(!virtq_driver_kick(&e.drv));
	ck_assert(virtq_enable_notify(&e.q));
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	/* Empty after re-enabling: the next chain is kicked. */
	ck_assert(!virtq_enable_notify(&e.q));
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h), 0);
	ck_assert(virtq_driver_kick(&e.drv));
	env_teardown(&e);
}
END_TEST

/* A device's service loop: what it says about each chain is what happens to that chain. */
struct served {
	unsigned calls, betweens, idles;
	enum virtq_verdict verdict[8]; /* per call, in order */
	int status[8];
	unsigned stop_after; /* between() says stop after this many calls (0: never) */
};

static enum virtq_verdict serve_rec(void *ctx, struct virtq_chain *c, int status, uint32_t *written)
{
	struct served *s = ctx;
	unsigned i = s->calls++;

	ck_assert_uint_lt(i, ARRAY_SIZE(s->verdict));
	s->status[i] = status;
	*written = 3;
	return s->verdict[i];
}

static bool between_rec(void *ctx, bool idle)
{
	struct served *s = ctx;

	s->betweens++;
	s->idles += idle;
	return !s->stop_after || s->betweens < s->stop_after;
}

START_TEST(test_serve_loop)
{
	const struct virtq_server plain = {.serve = serve_rec};
	const struct virtq_server own = {.serve = serve_rec, .between = between_rec};
	struct served s = {.verdict = {VIRTQ_PUSH, VIRTQ_HOLD, VIRTQ_PUSH}};
	uint16_t h[4], id;
	uint32_t len;
	struct env e;
	uint64_t buf;
	bool irq = false;

	env_setup(&e, 8, false, false);
	buf = alloc(&e, 8);
	const struct virtq_buf b[] = {{buf, 8, true}};

	/* Pushed chains go back with the length serve gave; a held one stays with the device. */
	for (unsigned i = 0; i < 3; i++)
		ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h[i]), 0);
	ck_assert_int_eq(virtq_serve(&e.q, &e.c, &plain, &s, &irq), 0);
	ck_assert_uint_eq(s.calls, 3);
	ck_assert(irq);
	ck_assert_int_eq(virtq_driver_get_used(&e.drv, &id, &len), 0);
	ck_assert_uint_eq(id, h[0]);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(virtq_driver_get_used(&e.drv, &id, &len), 0);
	ck_assert_uint_eq(id, h[2]);
	ck_assert_int_ne(virtq_driver_get_used(&e.drv, &id, &len), 0);
	/* Notifications are on again once the ring is empty. */
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h[3]), 0);
	ck_assert(virtq_driver_kick(&e.drv));

	/* With between(): no interrupt decision, and it may stop the loop between chains. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	ck_assert_int_eq(virtq_serve(&e.q, &e.c, &own, &s, NULL), 0);
	ck_assert_uint_eq(s.calls, 1);
	ck_assert_uint_eq(s.idles, 0);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h[3]), 0);
	ck_assert_int_eq(virtq_serve(&e.q, &e.c, &own, &s, NULL), 0);
	ck_assert_uint_eq(s.calls, 1);
	ck_assert_uint_eq(s.idles, 1);

	/* The device finding the queue broken stops the loop with -EIO. */
	memset(&s, 0, sizeof(s));
	s.verdict[0] = VIRTQ_BROKEN;
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h[3]), 0);
	ck_assert_int_eq(virtq_serve(&e.q, &e.c, &plain, &s, &irq), -EIO);
	ck_assert_uint_eq(s.calls, 1);
	env_teardown(&e);
}
END_TEST

/* With EVENT_IDX the device suppresses kicks through avail_event. */
START_TEST(test_kick_suppression_event_idx)
{
	struct env e;
	uint64_t buf;
	uint16_t h;
	uint16_t *flags;

	env_setup(&e, 8, true, false);
	buf = alloc(&e, 8);
	flags = host(&e, e.drv.used, 2);
	const struct virtq_buf b[] = {{buf, 8, true}};

	/* Kicks flow while the device keeps up: avail_event follows each pop. */
	for (unsigned i = 0; i < 20; i++) {
		ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h), 0);
		ck_assert(virtq_driver_kick(&e.drv));
		ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
		ck_assert_int_eq(virtq_pop(&e.q, &e.c), -ENOENT);
		complete(&e, h, 0);
	}
	/* Disabled: the flags stay 0 (spec) and the driver stops kicking. */
	virtq_disable_notify(&e.q);
	ck_assert_uint_eq(*flags, 0);
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h), 0);
	ck_assert(virtq_driver_kick(&e.drv)); /* the one already asked for */
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h), 0);
	ck_assert(!virtq_driver_kick(&e.drv));
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h), 0);
	ck_assert(!virtq_driver_kick(&e.drv));
	/* Re-enabling finds the two chains nobody kicked about. */
	ck_assert(virtq_enable_notify(&e.q));
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
	ck_assert(!virtq_enable_notify(&e.q));
	ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h), 0);
	ck_assert(virtq_driver_kick(&e.drv));
	env_teardown(&e);
}
END_TEST

/* Across the 16-bit wrap the kick decision stays exact. */
START_TEST(test_kick_event_idx_wrap)
{
	struct env e;
	uint64_t buf;
	uint16_t h;
	unsigned kicks = 0;

	env_setup(&e, 2, true, false);
	buf = alloc(&e, 8);
	const struct virtq_buf b[] = {{buf, 8, true}};

	for (unsigned i = 0; i < 70000; i++) {
		ck_assert_int_eq(virtq_driver_add(&e.drv, b, 1, &h), 0);
		kicks += virtq_driver_kick(&e.drv);
		ck_assert_int_eq(virtq_pop(&e.q, &e.c), 0);
		complete(&e, h, 0);
	}
	ck_assert_uint_eq(kicks, 70000);
	env_teardown(&e);
}
END_TEST

static Suite *queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, test_init_validates);
	tcase_add_test(tc, test_reset_and_reinit);
	suite_add_tcase(s, tc);

	tc = tcase_create("good");
	tcase_add_test(tc, test_simple_chains);
	tcase_add_test(tc, test_full_ring_and_index_wrap);
	tcase_add_test(tc, test_chain_of_queue_size);
	tcase_add_test(tc, test_indirect);
	tcase_add_test(tc, test_mixed_direct_then_indirect);
	tcase_add_test(tc, test_zero_length_buffers);
	tcase_add_test(tc, test_buffers_at_region_edges);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_bad_next_out_of_range);
	tcase_add_test(tc, test_bad_loops);
	tcase_add_test(tc, test_bad_loop_in_indirect_table);
	tcase_add_test(tc, test_bad_chain_longer_than_queue);
	tcase_add_test(tc, test_bad_indirect_shapes);
	tcase_add_test(tc, test_bad_indirect_not_negotiated);
	tcase_add_test(tc, test_bad_readable_after_writable);
	tcase_add_test(tc, test_bad_buffer_addresses);
	tcase_add_test(tc, test_bad_more_buffers_than_device_takes);
	tcase_add_test(tc, test_bad_length_overflow);
	tcase_add_test(tc, test_malformed_logging_is_rate_limited);
	suite_add_tcase(s, tc);

	tc = tcase_create("fatal");
	tcase_add_test(tc, test_fatal_head_out_of_range);
	tcase_add_test(tc, test_fatal_avail_idx_jump);
	tcase_add_test(tc, test_fatal_avail_idx_backwards);
	suite_add_tcase(s, tc);

	tc = tcase_create("notify");
	tcase_add_test(tc, test_need_event_table);
	tcase_add_test(tc, test_should_notify_event_idx);
	tcase_add_test(tc, test_should_notify_no_interrupt_flag);
	tcase_add_test(tc, test_kick_suppression_flags);
	tcase_add_test(tc, test_kick_suppression_event_idx);
	tcase_add_test(tc, test_kick_event_idx_wrap);
	tcase_add_test(tc, test_serve_loop);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(queue_suite());
}
