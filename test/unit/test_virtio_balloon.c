/*
 * virtio-balloon behind the virtio-pci transport, driven as Linux's driver would: inflating
 * really returns the pages to the host, bad PFNs and malformed chains are survived, the
 * stats round trip works with the test playing the guest, and the control commands change
 * the configuration and get exactly one reply each, also across a timeout or a reset.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "core/device.h"
#include "core/guest_mem.h"
#include "control/proto.h"
#include "test/unit/testutil.h"
#include "test/unit/virtq_driver.h"
#include "test/unit/virtio_env.h"
#include "virtio/balloon.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"

/* Two adjacent regions, a hole, and a third region: runs must split at region ends. */
#define REGION_A  0x0ULL
#define REGION_B  0x400000ULL
#define REGION_C  0x800000ULL
#define HOLE	  0x500000ULL
#define RAM_SIZE  0x600000ULL
#define RAM_PAGES (RAM_SIZE / 4096)
#define RING_GPA  0x10000ULL
#define DATA_GPA  0x40000ULL
#define DATA_LEN  0x10000ULL
#define BALLOON	  0x200000ULL /* pages the tests give to the balloon */
#define QSIZE	  64
#define NRQ	  3
/* The helper's vectors and live status (virtio_env.h), under this suite's names. */
#define S_LIVE	    VIRTIO_ENV_S_LIVE
#define CFG_VECTOR  VIRTIO_ENV_CFG_VECTOR
#define Q_VECTOR(q) VIRTIO_ENV_Q_VECTOR(q)
#define FEAT_ALL                                                                                   \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_BALLOON_F_STATS_VQ) |                                \
	 BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM))

enum { INFLATE, DEFLATE, STATS };

/* A command's replies, as the control socket would send them (control/proto.h). */
struct reply {
	unsigned n;
	bool stats; /* the command was DEV_CMD_BALLOON_STATS */
	char text[1024];
};

static void env_create(struct virtio_env *e, unsigned timeout_ms)
{
	const struct guest_region ram[] = {
		{.gpa = REGION_A, .size = 0x400000},
		{.gpa = REGION_B, .size = 0x100000},
		{.gpa = REGION_C, .size = 0x100000},
	};
	const struct virtio_dev_ops *ops;
	void *dev;

	ck_assert_int_eq(virtio_env_create(e, &(struct virtio_env_params){.ram = ram,
									  .nr_ram = ARRAY_SIZE(ram),
									  .queue_size = QSIZE,
									  .ring_gpa = RING_GPA,
									  .data_gpa = DATA_GPA,
									  .data_len = DATA_LEN}),
			 0);
	ck_assert_int_eq(virtio_balloon_create(&e->mem, &e->lg, &ops, &dev), 0);
	if (timeout_ms)
		virtio_balloon_set_stats_timeout(dev, timeout_ms);
	ck_assert_int_eq(virtio_env_attach(e, ops, dev, "virtio-balloon0"), 0);
	ck_assert_int_eq(virtio_env_start(e, true), 0);
}

static uint64_t cfg_rd(struct virtio_env *e, uint32_t off, uint32_t len)
{
	return virtio_env_rd(e, VIRTIO_PCI_DEVICE_OFF + off, len);
}

static void cfg_wr(struct virtio_env *e, uint32_t off, uint32_t len, uint64_t v)
{
	virtio_env_wr(e, VIRTIO_PCI_DEVICE_OFF + off, len, v);
}

static void init(struct virtio_env *e, uint64_t features, unsigned nrq)
{
	virtio_env_init(e, features, nrq);
	virtio_env_drain_irqs(e);
}

/* Writes PFNs as one readable buffer in the queue's data area and posts it. */
static uint16_t post_pfns(struct virtio_env *e, unsigned q, const uint32_t *pfns, unsigned nr,
			  uint32_t extra_bytes)
{
	struct virtq_buf b = {.len = nr * 4 + extra_bytes};
	uint8_t *p;

	ck_assert_int_eq(virtq_driver_alloc(&e->drv[q], b.len, &b.gpa), 0);
	p = virtio_env_ptr(e, b.gpa, b.len);
	for (unsigned i = 0; i < nr; i++) {
		uint32_t v = htole32(pfns[i]);

		memcpy(p + 4 * i, &v, 4);
	}
	memset(p + 4 * nr, 0, extra_bytes);
	return virtio_env_add(e, q, &b, 1);
}

static bool resident(struct virtio_env *e, uint64_t gpa)
{
	unsigned char v = 0;

	ck_assert_int_eq(mincore(virtio_env_ptr(e, gpa, 4096), 4096, &v), 0);
	return v & 1;
}

static uint64_t blocks(struct virtio_env *e)
{
	struct stat st;

	ck_assert_int_eq(fstat(e->mem.fd, &st), 0);
	return (uint64_t)st.st_blocks;
}

static bool all_byte(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void fill_pages(struct virtio_env *e, uint64_t gpa, unsigned n, uint8_t v)
{
	memset(virtio_env_ptr(e, gpa, n * 4096ULL), v, n * 4096ULL);
}

static void on_reply(void *ctx, const struct dev_reply *rep)
{
	struct reply *r = ctx;
	char *line = NULL;

	r->n++;
	if (rep->err)
		ck_assert_int_eq(control_proto_format_error(rep->msg, &line), 0);
	else if (r->stats)
		ck_assert_int_eq(control_proto_format_stats(&rep->stats, &line), 0);
	else
		ck_assert_int_eq(control_proto_format_ok(&line), 0);
	snprintf(r->text, sizeof(r->text), "%s", line);
	free(line);
}

static void command(struct virtio_env *e, uint32_t op, uint64_t arg, struct reply *r)
{
	struct dev_cmd cmd = {.op = op, .arg = arg};

	r->stats = op == DEV_CMD_BALLOON_STATS;
	ck_assert_int_eq(device_command(e->dev, &cmd, on_reply, r), 0);
}

/* A stats buffer as Linux lays it out: packed {le16 tag, le64 value} entries. */
static uint32_t put_stats(uint8_t *p, const uint64_t (*st)[2], unsigned nr)
{
	for (unsigned i = 0; i < nr; i++) {
		uint16_t tag = htole16((uint16_t)st[i][0]);
		uint64_t val = htole64(st[i][1]);

		memcpy(p + 10 * i, &tag, 2);
		memcpy(p + 10 * i + 2, &val, 8);
	}
	return 10 * nr;
}

#define STATS_GPA (DATA_GPA + STATS * DATA_LEN)

/* The driver's one stats buffer, (re)filled and made available. */
static uint16_t post_stats(struct virtio_env *e, const uint64_t (*st)[2], unsigned nr,
			   uint32_t extra)
{
	struct virtq_buf b = {.gpa = STATS_GPA};

	b.len = put_stats(virtio_env_ptr(e, STATS_GPA, 1024), st, nr) + extra;
	return virtio_env_add(e, STATS, &b, 1);
}

START_TEST(test_device_identity)
{
	struct virtio_env e;

	env_create(&e, 0);
	ck_assert_str_eq(e.ops->name, "virtio-balloon");
	ck_assert_uint_eq(e.ops->device_type, VIRTIO_ID_BALLOON);
	ck_assert_uint_eq(e.ops->nr_queues, NRQ);
	ck_assert_uint_eq(e.ops->config_size, 8);
	/* Exactly STATS_VQ and DEFLATE_ON_OOM among the device-specific bits. */
	virtio_env_wr(&e, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	ck_assert_uint_eq(virtio_env_rd(&e, VIRTIO_PCI_COMMON_DF, 4) & 0xffffff,
			  BIT(VIRTIO_BALLOON_F_STATS_VQ) | BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	ck_assert_uint_eq(cfg_rd(&e, 0, 8), 0);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_inflate_frees_pages)
{
	/* A run inside A, one across the A/B boundary, single pages in B and C. */
	const uint32_t pfns[] = {0x200, 0x201, 0x202, 0x3ff, 0x400, 0x401, 0x480, 0x800, 0x801};
	uint64_t before, after;
	struct virtio_env e;
	uint16_t head;

	env_create(&e, 0);
	init(&e, FEAT_ALL, NRQ);
	fill_pages(&e, BALLOON, 8, 0x5a);
	for (unsigned i = 0; i < ARRAY_SIZE(pfns); i++)
		fill_pages(&e, (uint64_t)pfns[i] << 12, 1, 0xa5);
	head = post_pfns(&e, INFLATE, pfns, ARRAY_SIZE(pfns), 0);
	for (unsigned i = 0; i < ARRAY_SIZE(pfns); i++)
		ck_assert(resident(&e, (uint64_t)pfns[i] << 12));
	before = blocks(&e);
	virtio_env_kick(&e, INFLATE);
	ck_assert_int_eq(virtio_env_used(&e, INFLATE, head), 0);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[Q_VECTOR(INFLATE)]), 1);
	/* The memfd gave the pages back: 8 blocks of 512 bytes each. */
	after = blocks(&e);
	ck_assert_uint_eq(before - after, ARRAY_SIZE(pfns) * 8);
	for (unsigned i = 0; i < ARRAY_SIZE(pfns); i++) {
		uint64_t gpa = (uint64_t)pfns[i] << 12;

		ck_assert(!resident(&e, gpa));
		ck_assert(all_byte(virtio_env_ptr(&e, gpa, 4096), 4096, 0));
	}
	/* Only those: their neighbours keep their contents. */
	ck_assert(all_byte(virtio_env_ptr(&e, BALLOON + 3 * 4096, 5 * 4096), 5 * 4096, 0x5a));
	ck_assert_uint_eq(virtio_env_status(&e), S_LIVE);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_invalid_pfns_skipped)
{
	/* In the hole, past the end of RAM, the largest PFN; valid ones around them. */
	const uint32_t pfns[] = {0x200, HOLE >> 12, 0x100000, 0xffffffff, 0x900, 0x201};
	struct virtio_env e;
	uint16_t head;

	env_create(&e, 0);
	init(&e, FEAT_ALL, NRQ);
	fill_pages(&e, BALLOON, 3, 0x77);
	head = post_pfns(&e, INFLATE, pfns, ARRAY_SIZE(pfns), 0);
	virtio_env_kick(&e, INFLATE);
	ck_assert_int_eq(virtio_env_used(&e, INFLATE, head), 0);
	ck_assert(all_byte(virtio_env_ptr(&e, BALLOON, 2 * 4096), 2 * 4096, 0));
	ck_assert(all_byte(virtio_env_ptr(&e, BALLOON + 2 * 4096, 4096), 4096, 0x77));
	ck_assert_uint_eq(virtio_env_status(&e), S_LIVE);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_deflate_validates_and_keeps_pages)
{
	const uint32_t pfns[] = {0x200, 0x201, HOLE >> 12, 0xffffffff};
	struct virtio_env e;
	uint16_t head;

	env_create(&e, 0);
	init(&e, FEAT_ALL, NRQ);
	fill_pages(&e, BALLOON, 2, 0x33);
	head = post_pfns(&e, DEFLATE, pfns, ARRAY_SIZE(pfns), 0);
	virtio_env_kick(&e, DEFLATE);
	ck_assert_int_eq(virtio_env_used(&e, DEFLATE, head), 0);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[Q_VECTOR(DEFLATE)]), 1);
	/* Deflating gives the guest its pages back; it frees nothing. */
	ck_assert(all_byte(virtio_env_ptr(&e, BALLOON, 2 * 4096), 2 * 4096, 0x33));
	ck_assert_uint_eq(virtio_env_status(&e), S_LIVE);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_malformed_chains)
{
	const uint32_t pfn = 0x200;
	struct virtq_buf wbuf[] = {
		{.gpa = DATA_GPA + 0x100, .len = 4, .writable = false},
		{.gpa = DATA_GPA + 0x200, .len = 16, .writable = true},
	};
	const struct virtq_buf outside = {.gpa = 0x40000000ULL, .len = 4};
	uint16_t h1, h2, h3;
	struct virtio_env e;

	env_create(&e, 0);
	init(&e, FEAT_ALL, NRQ);
	fill_pages(&e, BALLOON, 2, 0x44);
	/* A writable buffer in inflateq: the whole request is refused. */
	memcpy(virtio_env_ptr(&e, wbuf[0].gpa, 4), &pfn, 4);
	h1 = virtio_env_add(&e, INFLATE, wbuf, 2);
	/* A buffer outside guest memory. */
	h2 = virtio_env_add(&e, INFLATE, &outside, 1);
	virtio_env_kick(&e, INFLATE);
	ck_assert_int_eq(virtio_env_used(&e, INFLATE, h1), 0);
	ck_assert_int_eq(virtio_env_used(&e, INFLATE, h2), 0);
	ck_assert(all_byte(virtio_env_ptr(&e, BALLOON, 4096), 4096, 0x44));
	/* An odd length: the whole PFN counts, the 3 trailing bytes do not. */
	virtq_driver_free_all(&e.drv[INFLATE]);
	h3 = post_pfns(&e, INFLATE, (const uint32_t[]){0x201}, 1, 3);
	virtio_env_kick(&e, INFLATE);
	ck_assert_int_eq(virtio_env_used(&e, INFLATE, h3), 0);
	ck_assert(all_byte(virtio_env_ptr(&e, BALLOON + 4096, 4096), 4096, 0));
	ck_assert(all_byte(virtio_env_ptr(&e, BALLOON, 4096), 4096, 0x44));
	ck_assert_uint_eq(virtio_env_status(&e), S_LIVE);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_config_access_widths)
{
	struct reply r = {0};
	struct virtio_env e;

	env_create(&e, 0);
	init(&e, FEAT_ALL, NRQ);
	command(&e, DEV_CMD_BALLOON_TARGET, 5910528ULL, &r); /* 0x5a3 pages */
	ck_assert_uint_eq(cfg_rd(&e, 0, 4), 0x5a3);
	ck_assert_uint_eq(cfg_rd(&e, 0, 1), 0xa3);
	ck_assert_uint_eq(cfg_rd(&e, 1, 2), 0x0005);
	/* actual, written at every width. */
	cfg_wr(&e, 4, 4, 0x11223344);
	ck_assert_uint_eq(cfg_rd(&e, 4, 4), 0x11223344);
	cfg_wr(&e, 6, 2, 0xaabb);
	ck_assert_uint_eq(cfg_rd(&e, 4, 4), 0xaabb3344);
	cfg_wr(&e, 5, 1, 0xcc);
	ck_assert_uint_eq(cfg_rd(&e, 4, 4), 0xaabbcc44);
	ck_assert_uint_eq(cfg_rd(&e, 0, 8), 0xaabbcc44000005a3ULL);
	/* num_pages is the host's: the driver cannot change it, not even with a wide write. */
	cfg_wr(&e, 0, 4, 0);
	cfg_wr(&e, 2, 1, 0xff);
	cfg_wr(&e, 0, 8, 0x0000000700000009ULL);
	ck_assert_uint_eq(cfg_rd(&e, 0, 4), 0x5a3);
	ck_assert_uint_eq(cfg_rd(&e, 4, 4), 7);
	/* Past the configuration: reads 0. */
	ck_assert_uint_eq(cfg_rd(&e, 8, 4), 0);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_balloon_command)
{
	struct reply r = {0};
	struct virtio_env e;

	env_create(&e, 0);
	/* Before the driver runs: the target is there for it, no interrupt. */
	command(&e, DEV_CMD_BALLOON_TARGET, 1048576ULL, &r);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.text, "{\"ok\":true}");
	ck_assert_uint_eq(cfg_rd(&e, 0, 4), 256);
	init(&e, FEAT_ALL, NRQ);
	ck_assert_uint_eq(cfg_rd(&e, 0, 4), 256);

	/* Partial pages round down; a config interrupt tells the driver. */
	command(&e, DEV_CMD_BALLOON_TARGET, 8191ULL, &r);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_str_eq(r.text, "{\"ok\":true}");
	ck_assert_uint_eq(cfg_rd(&e, 0, 4), 1);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[CFG_VECTOR]), 1);

	/* More than the guest has: capped at its memory. */
	command(&e, DEV_CMD_BALLOON_TARGET, 9223372036854775807ULL, &r);
	ck_assert_str_eq(r.text, "{\"ok\":true}");
	ck_assert_uint_eq(cfg_rd(&e, 0, 4), RAM_PAGES);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[CFG_VECTOR]), 1);

	command(&e, DEV_CMD_BALLOON_TARGET, 0ULL, &r);
	ck_assert_uint_eq(cfg_rd(&e, 0, 4), 0);

	/* Another device's command is refused, unanswered, and changes nothing. */
	ck_assert_int_eq(device_command(e.dev,
					&(struct dev_cmd){.op = DEV_CMD_DISK_RESIZE, .arg = 0},
					on_reply, &r),
			 -EOPNOTSUPP);
	ck_assert_uint_eq(r.n, 4);
	ck_assert_uint_eq(cfg_rd(&e, 0, 4), 0);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[CFG_VECTOR]), 1);
	virtio_env_destroy(&e);
}
END_TEST

static const uint64_t boot_stats[][2] = {
	{VIRTIO_BALLOON_S_MEMFREE, 1},
};
static const uint64_t fresh_stats[][2] = {
	{VIRTIO_BALLOON_S_SWAP_IN, 10},
	{VIRTIO_BALLOON_S_SWAP_OUT, 11},
	{VIRTIO_BALLOON_S_MAJFLT, 12},
	{VIRTIO_BALLOON_S_MINFLT, 13},
	{VIRTIO_BALLOON_S_MEMFREE, 0x10000000},
	{VIRTIO_BALLOON_S_MEMTOT, 0x40000000},
	{VIRTIO_BALLOON_S_AVAIL, 0x20000000},
	{VIRTIO_BALLOON_S_CACHES, 4096},
	{VIRTIO_BALLOON_S_HTLB_PGALLOC, 3},
	{VIRTIO_BALLOON_S_HTLB_PGFAIL, 18446744073709551615ULL},
	{42, 99}, /* a tag from the future: ignored */
};
#define FRESH_JSON                                                                                 \
	"{\"ok\":true,\"stats\":{\"swap_in\":10,\"swap_out\":11,\"major_faults\":12,"              \
	"\"minor_faults\":13,\"free_memory\":268435456,\"total_memory\":1073741824,"               \
	"\"available_memory\":536870912,\"disk_caches\":4096,\"hugetlb_allocations\":3,"           \
	"\"hugetlb_failures\":18446744073709551615},\"balloon_actual\":"

/* Driver start-up: the first stats buffer arrives with DRIVER_OK (Linux adds it before). */
static uint16_t init_with_stats(struct virtio_env *e)
{
	uint16_t head;

	virtio_env_setup(e, FEAT_ALL, NRQ);
	head = post_stats(e, boot_stats, ARRAY_SIZE(boot_stats), 0);
	virtq_driver_kick(&e->drv[STATS]);
	virtio_env_live(e);
	virtio_env_drain_irqs(e);
	/* The device holds it until someone asks. */
	ck_assert_int_eq(virtio_env_used(e, STATS, head), -1);
	return head;
}

START_TEST(test_stats_round_trip)
{
	struct reply r = {0};
	struct virtio_env e;
	uint16_t head;

	env_create(&e, 0);
	head = init_with_stats(&e);
	cfg_wr(&e, 4, 4, 3); /* the driver reports 3 pages in the balloon */

	command(&e, DEV_CMD_BALLOON_STATS, 0, &r);
	ck_assert_uint_eq(r.n, 0);
	/* The held buffer comes back to the driver, with an interrupt: "send fresh stats". */
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), 0);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[Q_VECTOR(STATS)]), 1);
	/* The guest refills it and adds it again. */
	head = post_stats(&e, fresh_stats, ARRAY_SIZE(fresh_stats), 0);
	virtio_env_kick(&e, STATS);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.text, FRESH_JSON "12288}");
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), -1);

	/* Again: a partial trailing entry is dropped, only what the guest sent is reported. */
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r);
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), 0);
	head = post_stats(
		&e,
		(const uint64_t[][2]){{VIRTIO_BALLOON_S_MEMFREE, 5}, {VIRTIO_BALLOON_S_MEMFREE, 6}},
		2, 9);
	virtio_env_kick(&e, STATS);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_str_eq(r.text, "{\"ok\":true,\"stats\":{\"free_memory\":6},"
				 "\"balloon_actual\":12288}");
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), -1);
	ck_assert_uint_eq(virtio_env_status(&e), S_LIVE);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_stats_requests_share_a_round_trip)
{
	struct reply r1 = {0}, r2 = {0}, r3 = {0};
	struct virtio_env e;
	uint16_t head;

	env_create(&e, 0);
	head = init_with_stats(&e);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r1);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r2);
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), 0);
	/* Only one buffer went back to the guest. */
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), -1);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[Q_VECTOR(STATS)]), 1);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r3);
	post_stats(&e, fresh_stats, ARRAY_SIZE(fresh_stats), 0);
	virtio_env_kick(&e, STATS);
	ck_assert_uint_eq(r1.n, 1);
	ck_assert_uint_eq(r2.n, 1);
	ck_assert_uint_eq(r3.n, 1);
	ck_assert_str_eq(r1.text, FRESH_JSON "0}");
	ck_assert_str_eq(r2.text, r1.text);
	ck_assert_str_eq(r3.text, r1.text);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_stats_before_first_buffer)
{
	struct reply r = {0};
	struct virtio_env e;
	uint16_t head;

	env_create(&e, 0);
	init(&e, FEAT_ALL, NRQ);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r);
	/* The driver's first buffer carries start-up stats: the device asks for fresh ones. */
	head = post_stats(&e, boot_stats, ARRAY_SIZE(boot_stats), 0);
	virtio_env_kick(&e, STATS);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), 0);
	post_stats(&e, fresh_stats, ARRAY_SIZE(fresh_stats), 0);
	virtio_env_kick(&e, STATS);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.text, FRESH_JSON "0}");
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_stats_timeout)
{
	struct reply r = {0}, r2 = {0};
	struct virtio_env e;
	uint16_t head;

	env_create(&e, 20);
	head = init_with_stats(&e);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r);
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), 0);
	/* The guest never answers: the loop wakes up for the deadline alone. */
	while (r.n == 0)
		ck_assert_int_ge(event_base_loop(e.eb, EVLOOP_ONCE), 0);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_ptr_nonnull(strstr(r.text, "\"ok\":false"));
	ck_assert_ptr_nonnull(strstr(r.text, "did not report"));

	/* A late answer goes to nobody; the buffer is held for the next request. */
	head = post_stats(&e, boot_stats, ARRAY_SIZE(boot_stats), 0);
	virtio_env_kick(&e, STATS);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), -1);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r2);
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), 0);
	post_stats(&e, fresh_stats, ARRAY_SIZE(fresh_stats), 0);
	virtio_env_kick(&e, STATS);
	ck_assert_uint_eq(r2.n, 1);
	ck_assert_str_eq(r2.text, FRESH_JSON "0}");
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_stats_unavailable)
{
	struct reply r = {0};
	struct virtio_env e;

	env_create(&e, 0);
	/* Not activated. */
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_ptr_nonnull(strstr(r.text, "\"ok\":false"));
	/* Activated without STATS_VQ: statsq is not one, even if enabled. */
	init(&e, BIT(VIRTIO_F_VERSION_1), NRQ);
	post_stats(&e, boot_stats, ARRAY_SIZE(boot_stats), 0);
	virtio_env_kick(&e, STATS);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_ptr_nonnull(strstr(r.text, "\"ok\":false"));
	/* STATS_VQ negotiated but the queue left disabled. */
	init(&e, FEAT_ALL, 2);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r);
	ck_assert_uint_eq(r.n, 3);
	ck_assert_ptr_nonnull(strstr(r.text, "\"ok\":false"));
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_reset_answers_pending)
{
	struct reply r = {0}, r2 = {0};
	struct virtio_env e;
	uint16_t head;

	env_create(&e, 0);
	head = init_with_stats(&e);
	cfg_wr(&e, 4, 4, 5);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r);
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), 0);
	virtio_env_wr(&e, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	virtio_env_run_loop(&e);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_ptr_nonnull(strstr(r.text, "\"ok\":false"));
	ck_assert_ptr_nonnull(strstr(r.text, "reset"));
	/* The balloon is empty for the next driver; the host's target stays. */
	ck_assert_uint_eq(cfg_rd(&e, 4, 4), 0);

	/* The next driver starts from scratch and gets its stats through. */
	head = init_with_stats(&e);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r2);
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), 0);
	post_stats(&e, fresh_stats, ARRAY_SIZE(fresh_stats), 0);
	virtio_env_kick(&e, STATS);
	ck_assert_uint_eq(r2.n, 1);
	ck_assert_str_eq(r2.text, FRESH_JSON "0}");
	ck_assert_uint_eq(r.n, 1);
	virtio_env_destroy(&e);
}
END_TEST

static void *vcpu_resets(void *arg)
{
	virtio_env_wr(arg, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	return NULL;
}

START_TEST(test_reset_from_vcpu_thread)
{
	struct reply r = {0};
	pthread_t t;
	struct virtio_env e;

	/* As in the VMM: the loop is thread-aware, and a vCPU thread resets the device. */
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	env_create(&e, 0);
	init_with_stats(&e);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r);
	ck_assert_int_eq(pthread_create(&t, NULL, vcpu_resets, &e), 0);
	/* The loop sleeps until the reset wakes it up; the reply comes from the loop thread. */
	while (r.n == 0)
		ck_assert_int_ge(event_base_loop(e.eb, EVLOOP_ONCE), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_ptr_nonnull(strstr(r.text, "reset"));
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_destroy_answers_pending)
{
	struct reply r = {0};
	struct virtio_env e;

	env_create(&e, 0);
	init_with_stats(&e);
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r);
	ck_assert_uint_eq(r.n, 0);
	virtio_env_destroy(&e);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_ptr_nonnull(strstr(r.text, "\"ok\":false"));
}
END_TEST

START_TEST(test_second_stats_buffer_returned)
{
	struct reply r = {0};
	struct virtio_env e;
	uint16_t head, extra;

	env_create(&e, 0);
	head = init_with_stats(&e);
	/* A buggy driver adds a second buffer while the device holds one: it comes back. */
	extra = virtio_env_add(&e, STATS, &(struct virtq_buf){.gpa = STATS_GPA + 0x800, .len = 20},
			       1);
	virtio_env_kick(&e, STATS);
	ck_assert_int_eq(virtio_env_used(&e, STATS, extra), 0);
	/* The held one still serves. */
	command(&e, DEV_CMD_BALLOON_STATS, 0, &r);
	ck_assert_int_eq(virtio_env_used(&e, STATS, head), 0);
	post_stats(&e, fresh_stats, ARRAY_SIZE(fresh_stats), 0);
	virtio_env_kick(&e, STATS);
	ck_assert_str_eq(r.text, FRESH_JSON "0}");
	ck_assert_uint_eq(virtio_env_status(&e), S_LIVE);
	virtio_env_destroy(&e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_balloon");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_device_identity);
	tcase_add_test(tc, test_inflate_frees_pages);
	tcase_add_test(tc, test_invalid_pfns_skipped);
	tcase_add_test(tc, test_deflate_validates_and_keeps_pages);
	tcase_add_test(tc, test_malformed_chains);
	tcase_add_test(tc, test_config_access_widths);
	tcase_add_test(tc, test_balloon_command);
	tcase_add_test(tc, test_stats_round_trip);
	tcase_add_test(tc, test_stats_requests_share_a_round_trip);
	tcase_add_test(tc, test_stats_before_first_buffer);
	tcase_add_test(tc, test_stats_timeout);
	tcase_add_test(tc, test_stats_unavailable);
	tcase_add_test(tc, test_reset_answers_pending);
	tcase_add_test(tc, test_reset_from_vcpu_thread);
	tcase_add_test(tc, test_destroy_answers_pending);
	tcase_add_test(tc, test_second_stats_buffer_returned);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
