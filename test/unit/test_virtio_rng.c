/*
 * virtio-rng behind the virtio-pci transport, driven as a guest would: requests of every
 * shape (several buffers, indirect, malformed, oversized), interrupt suppression, a ring the
 * guest corrupts, and requests posted before the device is live.
 */
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "core/guest_mem.h"
#include "test/unit/testutil.h"
#include "test/unit/virtq_driver.h"
#include "test/unit/virtio_env.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

#define RAM_SIZE    0x400000ULL
#define RING_GPA    0x10000ULL
#define TABLE_GPA   0x20000ULL
#define DATA_GPA    0x100000ULL
#define DATA_LEN    0x300000ULL
#define OUTSIDE_RAM 0x40000000ULL
#define QSIZE	    64
/* The helper's vectors and live status (virtio_env.h), under this suite's names. */
#define S_LIVE	   VIRTIO_ENV_S_LIVE
#define CFG_VECTOR VIRTIO_ENV_CFG_VECTOR
#define Q_VECTOR   VIRTIO_ENV_Q_VECTOR(0)

static const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};
static const struct virtio_env_params env_params = {.ram = ram,
						    .nr_ram = ARRAY_SIZE(ram),
						    .queue_size = QSIZE,
						    .ring_gpa = RING_GPA,
						    .data_gpa = DATA_GPA,
						    .data_len = DATA_LEN};

static void env_create(struct virtio_env *e)
{
	const struct virtio_dev_ops *ops;
	void *dev;

	ck_assert_int_eq(virtio_env_create(e, &env_params), 0);
	ck_assert_int_eq(virtio_rng_create(&e->lg, &ops, &dev), 0);
	ck_assert_int_eq(virtio_env_attach(e, ops, dev, "virtio-rng0"), 0);
	ck_assert_int_eq(virtio_env_start(e, true), 0);
}

static void init(struct virtio_env *e, uint64_t features)
{
	virtio_env_init(e, features, 1);
	virtio_env_count(e->irq.vector_fds[Q_VECTOR]);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static bool all_byte(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

START_TEST(test_device_identity)
{
	struct virtio_env e;

	env_create(&e);
	ck_assert_uint_eq(e.ops->device_type, VIRTIO_ID_RNG);
	ck_assert_uint_eq(e.ops->nr_queues, 1);
	ck_assert_uint_eq(e.ops->config_size, 0);
	/* No device features: only the transport's. */
	virtio_env_wr(&e, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	ck_assert_uint_eq(virtio_env_rd(&e, VIRTIO_PCI_COMMON_DF, 4) & 0xffffff, 0);
	ck_assert_uint_eq(virtio_env_rd(&e, VIRTIO_PCI_DEVICE_OFF, 4), 0);
	virtio_env_destroy(&e);
}
END_TEST

/* Its entropy comes from an fd it keeps, so a sandboxed process only reads: it is listed. */
START_TEST(test_entropy_fd_listed)
{
	struct fd_list l = {.nr = 0};
	struct virtio_env e;
	unsigned readable = 0;
	uint8_t b;

	env_create(&e);
	ck_assert_int_eq(device_fds(e.dev, &l), 0);
	for (unsigned i = 0; i < l.nr; i++) {
		int flags = fcntl(l.fds[i], F_GETFL);

		if (flags >= 0 && (flags & O_ACCMODE) == O_RDONLY && read(l.fds[i], &b, 1) == 1)
			readable++;
	}
	ck_assert_uint_eq(readable, 1);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_several_buffers)
{
	struct virtq_buf b[] = {
		{.gpa = DATA_GPA, .len = 16, .writable = true},
		{.gpa = DATA_GPA + 0x100, .len = 1, .writable = true},
		{.gpa = DATA_GPA + 0x200, .len = 47, .writable = true},
	};
	uint16_t head;
	struct virtio_env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	head = virtio_env_add(&e, 0, b, ARRAY_SIZE(b));
	virtio_env_kick(&e, 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, head), 64);
	ck_assert(!all_zero(virtio_env_ptr(&e, b[0].gpa, 16), 16));
	ck_assert(!all_zero(virtio_env_ptr(&e, b[2].gpa, 47), 47));
	ck_assert(memcmp(virtio_env_ptr(&e, b[0].gpa, 16), virtio_env_ptr(&e, b[2].gpa, 16), 16) !=
		  0);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[Q_VECTOR]), 1);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_indirect_chain)
{
	struct virtq_buf b[] = {
		{.gpa = DATA_GPA, .len = 32, .writable = true},
		{.gpa = DATA_GPA + 0x1000, .len = 32, .writable = true},
	};
	uint16_t head;
	struct virtio_env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_INDIRECT_DESC) |
			 BIT(VIRTIO_RING_F_EVENT_IDX));
	ck_assert_int_eq(virtq_driver_add_indirect(&e.drv[0], b, 2, TABLE_GPA, &head), 0);
	virtio_env_kick(&e, 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, head), 64);
	ck_assert(!all_zero(virtio_env_ptr(&e, DATA_GPA + 0x1000, 32), 32));
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_malformed_requests_complete_empty)
{
	const struct virtq_buf readable[] = {
		{.gpa = DATA_GPA, .len = 16, .writable = false},
		{.gpa = DATA_GPA + 0x100, .len = 16, .writable = true},
	};
	const struct virtq_buf empty = {.gpa = DATA_GPA + 0x100, .len = 0, .writable = true};
	const struct virtq_buf outside = {.gpa = OUTSIDE_RAM, .len = 16, .writable = true};
	const struct virtq_buf good = {.gpa = DATA_GPA + 0x200, .len = 16, .writable = true};
	uint16_t h1, h2, h3, h4;
	struct virtio_env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	memset(virtio_env_ptr(&e, DATA_GPA, 0x300), 0xaa, 0x300);
	h1 = virtio_env_add(&e, 0, readable, 2); /* a request carries no data for the device */
	h2 = virtio_env_add(&e, 0, &empty, 1);	 /* no writable bytes */
	h3 = virtio_env_add(&e, 0, &outside, 1); /* a buffer outside guest memory */
	h4 = virtio_env_add(&e, 0, &good, 1);
	virtio_env_kick(&e, 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, h1), 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, h2), 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, h3), 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, h4), 16);
	/* Nothing was written for the failed requests. */
	ck_assert(all_byte(virtio_env_ptr(&e, DATA_GPA, 0x200), 0x200, 0xaa));
	ck_assert(!all_byte(virtio_env_ptr(&e, good.gpa, 16), 16, 0xaa));
	ck_assert_uint_eq(virtio_env_status(&e), S_LIVE);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_large_request_capped)
{
	const uint32_t len = 2 * VIRTIO_RNG_MAX_REQUEST;
	const struct virtq_buf b = {.gpa = DATA_GPA, .len = len, .writable = true};
	uint16_t head;
	struct virtio_env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	head = virtio_env_add(&e, 0, &b, 1);
	virtio_env_kick(&e, 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, head), VIRTIO_RNG_MAX_REQUEST);
	ck_assert(!all_zero(virtio_env_ptr(&e, DATA_GPA, 64), 64));
	ck_assert(all_zero(
		virtio_env_ptr(&e, DATA_GPA + VIRTIO_RNG_MAX_REQUEST, len - VIRTIO_RNG_MAX_REQUEST),
		len - VIRTIO_RNG_MAX_REQUEST));
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_batch_in_one_kick)
{
	uint16_t heads[8];
	struct virtio_env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX));
	for (unsigned i = 0; i < ARRAY_SIZE(heads); i++) {
		struct virtq_buf b = {.gpa = DATA_GPA + 0x100 * i, .len = 8 + i, .writable = true};

		heads[i] = virtio_env_add(&e, 0, &b, 1);
	}
	virtio_env_kick(&e, 0);
	for (unsigned i = 0; i < ARRAY_SIZE(heads); i++)
		ck_assert_int_eq(virtio_env_used(&e, 0, heads[i]), 8 + i);
	/* One interrupt for the batch. */
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[Q_VECTOR]), 1);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_interrupt_suppression)
{
	const struct virtq_buf b = {.gpa = DATA_GPA, .len = 8, .writable = true};
	uint16_t head;
	struct virtio_env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	virtq_driver_set_no_interrupt(&e.drv[0], true);
	head = virtio_env_add(&e, 0, &b, 1);
	virtio_env_kick(&e, 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, head), 8);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[Q_VECTOR]), 0);
	virtq_driver_set_no_interrupt(&e.drv[0], false);
	head = virtio_env_add(&e, 0, &b, 1);
	virtio_env_kick(&e, 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, head), 8);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[Q_VECTOR]), 1);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_broken_ring_needs_reset)
{
	const struct virtq_buf b = {.gpa = DATA_GPA, .len = 8, .writable = true};
	uint16_t head;
	struct virtio_env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	/* The available index jumps by more than the ring holds. */
	virtq_driver_set_avail_idx(&e.drv[0], QSIZE + 5);
	ck_assert_int_eq(eventfd_signal(e.drv[0].kick_fd), 0);
	virtio_env_run_loop(&e);
	ck_assert_uint_eq(virtio_env_status(&e), S_LIVE | VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[CFG_VECTOR]), 1);
	/* Further kicks change nothing. */
	ck_assert_int_eq(eventfd_signal(e.drv[0].kick_fd), 0);
	virtio_env_run_loop(&e);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[CFG_VECTOR]), 0);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[Q_VECTOR]), 0);
	/* The driver resets; the device serves again. */
	init(&e, BIT(VIRTIO_F_VERSION_1));
	head = virtio_env_add(&e, 0, &b, 1);
	virtio_env_kick(&e, 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, head), 8);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_posted_before_driver_ok)
{
	const struct virtq_buf b = {.gpa = DATA_GPA, .len = 8, .writable = true};
	uint16_t head;
	struct virtio_env e;

	env_create(&e);
	virtio_env_setup(&e, BIT(VIRTIO_F_VERSION_1), 1);
	head = virtio_env_add(&e, 0, &b, 1);
	virtio_env_kick(&e, 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, head), -1);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[Q_VECTOR]), 0);
	/* Served once the device is live, without another kick. */
	virtio_env_live(&e);
	ck_assert_int_eq(virtio_env_used(&e, 0, head), 8);
	ck_assert_uint_eq(virtio_env_count(e.irq.vector_fds[Q_VECTOR]), 1);
	virtio_env_destroy(&e);
}
END_TEST

START_TEST(test_reset_drops_pending)
{
	const struct virtq_buf b = {.gpa = DATA_GPA, .len = 8, .writable = true};
	uint16_t head;
	struct virtio_env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	head = virtio_env_add(&e, 0, &b, 1);
	virtio_env_wr(&e, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	ck_assert_int_eq(eventfd_signal(e.drv[0].kick_fd), 0);
	virtio_env_run_loop(&e);
	ck_assert_int_eq(virtio_env_used(&e, 0, head), -1);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	head = virtio_env_add(&e, 0, &b, 1);
	virtio_env_kick(&e, 0);
	ck_assert_int_eq(virtio_env_used(&e, 0, head), 8);
	virtio_env_destroy(&e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_rng");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_device_identity);
	tcase_add_test(tc, test_entropy_fd_listed);
	tcase_add_test(tc, test_several_buffers);
	tcase_add_test(tc, test_indirect_chain);
	tcase_add_test(tc, test_malformed_requests_complete_empty);
	tcase_add_test(tc, test_large_request_capped);
	tcase_add_test(tc, test_batch_in_one_kick);
	tcase_add_test(tc, test_interrupt_suppression);
	tcase_add_test(tc, test_broken_ring_needs_reset);
	tcase_add_test(tc, test_posted_before_driver_ok);
	tcase_add_test(tc, test_reset_drops_pending);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
