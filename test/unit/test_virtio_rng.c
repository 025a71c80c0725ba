/*
 * virtio-rng behind the virtio-pci transport, driven as a guest would: requests of every
 * shape (several buffers, indirect, malformed, oversized), interrupt suppression, a ring the
 * guest corrupts, and requests posted before the device is live.
 */
#include <string.h>
#include <sys/eventfd.h>
#include <event2/event.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "core/device.h"
#include "core/guest_mem.h"
#include "core/log.h"
#include "core/pci.h"
#include "test/unit/testutil.h"
#include "test/unit/virtq_driver.h"
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
#define BIT(n)	    (1ULL << (n))
#define S_LIVE                                                                                     \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |      \
	 VIRTIO_CONFIG_S_DRIVER_OK)
#define CFG_VECTOR 0
#define Q_VECTOR   1

struct env {
	struct logger lg;
	struct guest_mem mem;
	struct event_base *eb;
	struct pci_irq_fds irq;
	struct device *dev;
	struct pci_dev_desc desc;
	const struct virtio_dev_ops *ops;
	struct virtq_driver drv;
	bool drv_live;
};

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	ck_assert_int_ge(fd, 0);
	return fd;
}

static void env_create(struct env *e)
{
	const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};
	void *dev;

	memset(e, 0, sizeof(*e));
	log_init(&e->lg);
	e->lg.level = LOG_LVL_OFF;
	ck_assert_int_eq(guest_mem_create_regions(&e->mem, ram, 1), 0);
	e->eb = event_base_new();
	ck_assert_ptr_nonnull(e->eb);
	ck_assert_int_eq(virtio_rng_create(&e->lg, &e->ops, &dev), 0);
	e->irq.nr_vectors = 2;
	for (unsigned i = 0; i < e->irq.nr_vectors; i++)
		e->irq.vector_fds[i] = new_eventfd();
	e->irq.intx_fd = new_eventfd();
	e->irq.intx_resample_fd = new_eventfd();
	ck_assert_int_eq(
		virtio_pci_transport_create(&(struct virtio_pci_params){.ops = e->ops,
									.dev = dev,
									.label = "virtio-rng0",
									.mem = &e->mem,
									.irq = &e->irq,
									.log = &e->lg},
					    &e->dev, &e->desc),
		0);
	ck_assert_int_eq(e->dev->ops->start(e->dev->priv, e->eb), 0);
	device_msix_state(e->dev, true);
}

static void env_destroy(struct env *e)
{
	e->dev->ops->destroy(e->dev->priv);
	if (e->drv_live)
		virtq_driver_destroy(&e->drv);
	event_base_free(e->eb);
	guest_mem_destroy(&e->mem);
}

static uint64_t rd(struct env *e, uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	ck_assert_int_eq(device_io(e->dev, VIRTIO_PCI_BAR, off, &v, len, false), 0);
	return v;
}

static void wr(struct env *e, uint64_t off, uint32_t len, uint64_t v)
{
	ck_assert_int_eq(device_io(e->dev, VIRTIO_PCI_BAR, off, &v, len, true), 0);
}

static uint64_t count(int fd)
{
	uint64_t n;

	ck_assert_int_eq(eventfd_drain(fd, &n), 0);
	return n;
}

static void run_loop(struct env *e)
{
	ck_assert_int_ge(event_base_loop(e->eb, EVLOOP_NONBLOCK), 0);
}

static uint8_t status(struct env *e)
{
	return (uint8_t)rd(e, VIRTIO_PCI_COMMON_STATUS, 1);
}

/* Everything up to (not including) DRIVER_OK, as Linux does it. */
static void setup(struct env *e, uint64_t features)
{
	wr(e, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	wr(e, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(e, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(e, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	wr(e, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)features);
	wr(e, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	wr(e, VIRTIO_PCI_COMMON_GF, 4, features >> 32);
	wr(e, VIRTIO_PCI_COMMON_STATUS, 1, status(e) | VIRTIO_CONFIG_S_FEATURES_OK);
	ck_assert(status(e) & VIRTIO_CONFIG_S_FEATURES_OK);
	wr(e, VIRTIO_PCI_COMMON_MSIX, 2, CFG_VECTOR);

	if (e->drv_live)
		virtq_driver_destroy(&e->drv);
	ck_assert_int_eq(virtq_driver_init(&e->drv, &e->mem, QSIZE, RING_GPA, DATA_GPA, DATA_LEN,
					   features & BIT(VIRTIO_RING_F_EVENT_IDX)),
			 0);
	e->drv_live = true;
	e->drv.kick_fd = e->desc.ioevents[0].fd;
	wr(e, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	wr(e, VIRTIO_PCI_COMMON_Q_SIZE, 2, QSIZE);
	wr(e, VIRTIO_PCI_COMMON_Q_MSIX, 2, Q_VECTOR);
	wr(e, VIRTIO_PCI_COMMON_Q_DESCLO, 8, e->drv.desc);
	wr(e, VIRTIO_PCI_COMMON_Q_AVAILLO, 8, e->drv.avail);
	wr(e, VIRTIO_PCI_COMMON_Q_USEDLO, 8, e->drv.used);
	wr(e, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
}

static void driver_ok(struct env *e)
{
	wr(e, VIRTIO_PCI_COMMON_STATUS, 1, status(e) | VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert_uint_eq(status(e), S_LIVE);
	run_loop(e);
}

static void init(struct env *e, uint64_t features)
{
	setup(e, features);
	driver_ok(e);
	count(e->irq.vector_fds[Q_VECTOR]);
}

static uint16_t add(struct env *e, const struct virtq_buf *b, unsigned nr)
{
	uint16_t head;

	ck_assert_int_eq(virtq_driver_add(&e->drv, b, nr, &head), 0);
	return head;
}

static void kick(struct env *e)
{
	virtq_driver_kick(&e->drv);
	run_loop(e);
}

/* The used entry for head; -1 if the device has not returned it. */
static int64_t used(struct env *e, uint16_t head)
{
	uint16_t id = 0;
	uint32_t len = 0;

	if (virtq_driver_get_used(&e->drv, &id, &len) < 0)
		return -1;
	ck_assert_uint_eq(id, head);
	virtq_driver_set_used_event(&e->drv, e->drv.last_used);
	return len;
}

static uint8_t *ptr(struct env *e, uint64_t gpa, uint64_t len)
{
	void *p;

	ck_assert_int_eq(guest_mem_ptr(&e->mem, gpa, len, &p), 0);
	return p;
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
	struct env e;

	env_create(&e);
	ck_assert_uint_eq(e.ops->device_type, VIRTIO_ID_RNG);
	ck_assert_uint_eq(e.ops->nr_queues, 1);
	ck_assert_uint_eq(e.ops->config_size, 0);
	/* No device features: only the transport's. */
	wr(&e, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	ck_assert_uint_eq(rd(&e, VIRTIO_PCI_COMMON_DF, 4) & 0xffffff, 0);
	ck_assert_uint_eq(rd(&e, VIRTIO_PCI_DEVICE_OFF, 4), 0);
	env_destroy(&e);
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
	struct env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	head = add(&e, b, ARRAY_SIZE(b));
	kick(&e);
	ck_assert_int_eq(used(&e, head), 64);
	ck_assert(!all_zero(ptr(&e, b[0].gpa, 16), 16));
	ck_assert(!all_zero(ptr(&e, b[2].gpa, 47), 47));
	ck_assert(memcmp(ptr(&e, b[0].gpa, 16), ptr(&e, b[2].gpa, 16), 16) != 0);
	ck_assert_uint_eq(count(e.irq.vector_fds[Q_VECTOR]), 1);
	env_destroy(&e);
}
END_TEST

START_TEST(test_indirect_chain)
{
	struct virtq_buf b[] = {
		{.gpa = DATA_GPA, .len = 32, .writable = true},
		{.gpa = DATA_GPA + 0x1000, .len = 32, .writable = true},
	};
	uint16_t head;
	struct env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_INDIRECT_DESC) |
			 BIT(VIRTIO_RING_F_EVENT_IDX));
	ck_assert_int_eq(virtq_driver_add_indirect(&e.drv, b, 2, TABLE_GPA, &head), 0);
	kick(&e);
	ck_assert_int_eq(used(&e, head), 64);
	ck_assert(!all_zero(ptr(&e, DATA_GPA + 0x1000, 32), 32));
	env_destroy(&e);
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
	struct env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	memset(ptr(&e, DATA_GPA, 0x300), 0xaa, 0x300);
	h1 = add(&e, readable, 2); /* a request carries no data for the device */
	h2 = add(&e, &empty, 1);   /* no writable bytes */
	h3 = add(&e, &outside, 1); /* a buffer outside guest memory */
	h4 = add(&e, &good, 1);
	kick(&e);
	ck_assert_int_eq(used(&e, h1), 0);
	ck_assert_int_eq(used(&e, h2), 0);
	ck_assert_int_eq(used(&e, h3), 0);
	ck_assert_int_eq(used(&e, h4), 16);
	/* Nothing was written for the failed requests. */
	ck_assert(all_byte(ptr(&e, DATA_GPA, 0x200), 0x200, 0xaa));
	ck_assert(!all_byte(ptr(&e, good.gpa, 16), 16, 0xaa));
	ck_assert_uint_eq(status(&e), S_LIVE);
	env_destroy(&e);
}
END_TEST

START_TEST(test_large_request_capped)
{
	const uint32_t len = 2 * VIRTIO_RNG_MAX_REQUEST;
	const struct virtq_buf b = {.gpa = DATA_GPA, .len = len, .writable = true};
	uint16_t head;
	struct env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	head = add(&e, &b, 1);
	kick(&e);
	ck_assert_int_eq(used(&e, head), VIRTIO_RNG_MAX_REQUEST);
	ck_assert(!all_zero(ptr(&e, DATA_GPA, 64), 64));
	ck_assert(all_zero(ptr(&e, DATA_GPA + VIRTIO_RNG_MAX_REQUEST, len - VIRTIO_RNG_MAX_REQUEST),
			   len - VIRTIO_RNG_MAX_REQUEST));
	env_destroy(&e);
}
END_TEST

START_TEST(test_batch_in_one_kick)
{
	uint16_t heads[8];
	struct env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX));
	for (unsigned i = 0; i < ARRAY_SIZE(heads); i++) {
		struct virtq_buf b = {.gpa = DATA_GPA + 0x100 * i, .len = 8 + i, .writable = true};

		heads[i] = add(&e, &b, 1);
	}
	kick(&e);
	for (unsigned i = 0; i < ARRAY_SIZE(heads); i++)
		ck_assert_int_eq(used(&e, heads[i]), 8 + i);
	/* One interrupt for the batch. */
	ck_assert_uint_eq(count(e.irq.vector_fds[Q_VECTOR]), 1);
	env_destroy(&e);
}
END_TEST

START_TEST(test_interrupt_suppression)
{
	const struct virtq_buf b = {.gpa = DATA_GPA, .len = 8, .writable = true};
	uint16_t head;
	struct env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	virtq_driver_set_no_interrupt(&e.drv, true);
	head = add(&e, &b, 1);
	kick(&e);
	ck_assert_int_eq(used(&e, head), 8);
	ck_assert_uint_eq(count(e.irq.vector_fds[Q_VECTOR]), 0);
	virtq_driver_set_no_interrupt(&e.drv, false);
	head = add(&e, &b, 1);
	kick(&e);
	ck_assert_int_eq(used(&e, head), 8);
	ck_assert_uint_eq(count(e.irq.vector_fds[Q_VECTOR]), 1);
	env_destroy(&e);
}
END_TEST

START_TEST(test_broken_ring_needs_reset)
{
	const struct virtq_buf b = {.gpa = DATA_GPA, .len = 8, .writable = true};
	uint16_t head;
	struct env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	/* The available index jumps by more than the ring holds. */
	virtq_driver_set_avail_idx(&e.drv, QSIZE + 5);
	ck_assert_int_eq(eventfd_signal(e.drv.kick_fd), 0);
	run_loop(&e);
	ck_assert_uint_eq(status(&e), S_LIVE | VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(count(e.irq.vector_fds[CFG_VECTOR]), 1);
	/* Further kicks change nothing. */
	ck_assert_int_eq(eventfd_signal(e.drv.kick_fd), 0);
	run_loop(&e);
	ck_assert_uint_eq(count(e.irq.vector_fds[CFG_VECTOR]), 0);
	ck_assert_uint_eq(count(e.irq.vector_fds[Q_VECTOR]), 0);
	/* The driver resets; the device serves again. */
	init(&e, BIT(VIRTIO_F_VERSION_1));
	head = add(&e, &b, 1);
	kick(&e);
	ck_assert_int_eq(used(&e, head), 8);
	env_destroy(&e);
}
END_TEST

START_TEST(test_posted_before_driver_ok)
{
	const struct virtq_buf b = {.gpa = DATA_GPA, .len = 8, .writable = true};
	uint16_t head;
	struct env e;

	env_create(&e);
	setup(&e, BIT(VIRTIO_F_VERSION_1));
	head = add(&e, &b, 1);
	kick(&e);
	ck_assert_int_eq(used(&e, head), -1);
	ck_assert_uint_eq(count(e.irq.vector_fds[Q_VECTOR]), 0);
	/* Served once the device is live, without another kick. */
	driver_ok(&e);
	ck_assert_int_eq(used(&e, head), 8);
	ck_assert_uint_eq(count(e.irq.vector_fds[Q_VECTOR]), 1);
	env_destroy(&e);
}
END_TEST

START_TEST(test_reset_drops_pending)
{
	const struct virtq_buf b = {.gpa = DATA_GPA, .len = 8, .writable = true};
	uint16_t head;
	struct env e;

	env_create(&e);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	head = add(&e, &b, 1);
	wr(&e, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	ck_assert_int_eq(eventfd_signal(e.drv.kick_fd), 0);
	run_loop(&e);
	ck_assert_int_eq(used(&e, head), -1);
	init(&e, BIT(VIRTIO_F_VERSION_1));
	head = add(&e, &b, 1);
	kick(&e);
	ck_assert_int_eq(used(&e, head), 8);
	env_destroy(&e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_rng");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_device_identity);
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
