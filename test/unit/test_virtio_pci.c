/*
 * The virtio-pci transport driven the way a guest driver drives it, through BAR0 accesses
 * (device_io), without KVM: the interrupt eventfds are real and counted, the queue
 * ioeventfds are signalled as KVM would, and the loop is a real libevent base. The device
 * behind the transport is either virtio-rng or a fake that records what it is asked.
 */
#include <pthread.h>
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "core/device.h"
#include "core/guest_mem.h"
#include "core/pci.h"
#include "core/bus.h"
#include "core/kvm.h"
#include "test/unit/testutil.h"
#include "test/unit/virtq_driver.h"
#include "test/unit/virtio_env.h"
#include "virtio/pci.h"
#include "virtio/queue.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

#define RAM_SIZE       0x200000ULL
#define RING_GPA(q)    (0x10000ULL * ((q) + 1))
#define DATA_GPA       0x100000ULL
#define DATA_LEN       0x100000ULL
#define OUTSIDE_RAM    0x40000000ULL
#define NO_VECTOR      VIRTIO_MSI_NO_VECTOR
#define FAKE_QUEUES    2
#define FAKE_QMAX      128
#define FAKE_CFG_SIZE  8
#define FAKE_FEATURE   (1ULL << 5)
#define ISR	       VIRTIO_PCI_ISR_OFF
#define S_ACK	       VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRIVER       VIRTIO_CONFIG_S_DRIVER
#define S_FEATURES_OK  VIRTIO_CONFIG_S_FEATURES_OK
#define S_DRIVER_OK    VIRTIO_CONFIG_S_DRIVER_OK
#define S_FAILED       VIRTIO_CONFIG_S_FAILED
#define S_NEEDS_RESET  VIRTIO_CONFIG_S_NEEDS_RESET
#define S_ALL	       (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK)
#define FEATURES_LINUX (BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX))

/* ---- a device that records what the transport asks of it ---- */

struct fake {
	uint64_t features;
	int activate_ret;
	bool irq_from_thread; /* each call into the device waits for a thread raising an irq */
	unsigned raised;
	unsigned activations, resets, destroys;
	unsigned notifies[FAKE_QUEUES];
	struct virtio_activate act;
	uint8_t config[FAKE_CFG_SIZE];
};

static void *raise_thread(void *arg)
{
	struct fake *f = arg;

	virtio_irq_queue(f->act.irq, 0);
	virtio_irq_config(f->act.irq);
	return NULL;
}

/* Like a device that stops or wakes a worker which is raising an interrupt right then. */
static void raise_from_thread(struct fake *f)
{
	pthread_t t;

	if (!f->irq_from_thread || !f->act.irq)
		return;
	ck_assert_int_eq(pthread_create(&t, NULL, raise_thread, f), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	f->raised++;
}

static uint64_t fake_features(void *dev)
{
	return ((struct fake *)dev)->features;
}

static int fake_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
	struct fake *f = dev;

	ck_assert_uint_le(off + len, FAKE_CFG_SIZE);
	memcpy(data, &f->config[off], len);
	return 0;
}

static int fake_config_write(void *dev, uint32_t off, const void *data, uint32_t len)
{
	struct fake *f = dev;

	ck_assert_uint_le(off + len, FAKE_CFG_SIZE);
	memcpy(&f->config[off], data, len);
	raise_from_thread(f);
	return 0;
}

static int fake_activate(void *dev, const struct virtio_activate *a)
{
	struct fake *f = dev;

	f->activations++;
	f->act = *a;
	raise_from_thread(f);
	return f->activate_ret;
}

static void fake_notify(void *dev, unsigned queue)
{
	struct fake *f = dev;

	ck_assert_uint_lt(queue, FAKE_QUEUES);
	f->notifies[queue]++;
	raise_from_thread(f);
}

static void fake_reset(void *dev)
{
	struct fake *f = dev;

	f->resets++;
	raise_from_thread(f);
}

static void fake_destroy(void *dev)
{
	((struct fake *)dev)->destroys++;
}

static const struct virtio_dev_ops fake_ops = {
	.name = "virtio-fake",
	.device_type = 2, /* block, for its class code */
	.nr_queues = FAKE_QUEUES,
	.queue_max_size = FAKE_QMAX,
	.features = fake_features,
	.config_size = FAKE_CFG_SIZE,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.activate = fake_activate,
	.notify = fake_notify,
	.reset = fake_reset,
	.destroy = fake_destroy,
};

/* The same device, waiting on its queues' kick eventfds itself. */
static const struct virtio_dev_ops fake_own_kicks_ops = {
	.name = "virtio-fake",
	.device_type = 2,
	.nr_queues = FAKE_QUEUES,
	.queue_max_size = FAKE_QMAX,
	.features = fake_features,
	.config_size = FAKE_CFG_SIZE,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.activate = fake_activate,
	.own_kicks = true,
	.reset = fake_reset,
	.destroy = fake_destroy,
};

/* ---- environment ---- */

enum kind { FAKE, RNG, FAKE_OWN_KICKS };

struct env {
	struct virtio_env v;
	struct fake fake;
};

static void env_create(struct env *e, enum kind kind)
{
	const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};
	const struct virtio_dev_ops *ops = &fake_ops;
	void *dev = &e->fake;

	memset(e, 0, sizeof(*e));
	ck_assert_int_eq(
		virtio_env_create(&e->v, &(struct virtio_env_params){.ram = ram, .nr_ram = 1}), 0);
	if (kind == RNG)
		ck_assert_int_eq(virtio_rng_create(&e->v.lg, &ops, &dev), 0);
	if (kind == FAKE_OWN_KICKS)
		ops = &fake_own_kicks_ops;
	e->fake.features = FAKE_FEATURE | BIT(VIRTIO_F_ACCESS_PLATFORM);
	ck_assert_int_eq(virtio_env_attach(&e->v, ops, dev, "vtest0"), 0);
	ck_assert_int_eq(virtio_env_start(&e->v, false), 0);
}

static uint64_t offered(struct env *e)
{
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	uint64_t lo = virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_DF, 4);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	return lo | virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_DF, 4) << 32;
}

static void write_features(struct env *e, uint64_t f)
{
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_GF, 4, f >> 32);
}

static void add_status(struct env *e, uint8_t bits)
{
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_STATUS, 1, virtio_env_status(&e->v) | bits);
}

/* Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK as Linux's virtio core does. */
static void negotiate(struct env *e, uint64_t want)
{
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	ck_assert_uint_eq(virtio_env_status(&e->v), 0);
	add_status(e, S_ACK);
	add_status(e, S_DRIVER);
	write_features(e, offered(e) & want);
	add_status(e, S_FEATURES_OK);
	ck_assert_uint_eq(virtio_env_status(&e->v), S_ACK | S_DRIVER | S_FEATURES_OK);
}

/* Sets up queue q as vp_modern_find_vqs does, with rings at ring (RING_GPA(q) normally). */
static void setup_queue(struct env *e, unsigned q, uint16_t size, bool msix, uint64_t ring)
{
	struct virtq_driver *d = &e->v.drv[q];
	bool event_idx;

	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
	ck_assert_uint_ne(virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	ck_assert_uint_eq(virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
	ck_assert_uint_eq(virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_Q_SIZE, 2), size);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	event_idx = virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_GF, 4) & BIT(VIRTIO_RING_F_EVENT_IDX);
	if (e->v.drv_live[q])
		virtq_driver_destroy(d);
	if (ring == RING_GPA(q)) {
		ck_assert_int_eq(virtq_driver_init(d, &e->v.mem, size, ring, q ? 0 : DATA_GPA,
						   q ? 0 : DATA_LEN, event_idx),
				 0);
	} else {
		/* Rings the driver claims to have but that are not in RAM. */
		*d = (struct virtq_driver){
			.desc = ring, .avail = ring + 0x1000, .used = ring + 0x2000, .kick_fd = -1};
	}
	e->v.drv_live[q] = ring == RING_GPA(q);
	d->kick_fd = (int)e->v.desc.ioevents[q].fd;
	if (msix) {
		virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_Q_MSIX, 2, q + 1);
		ck_assert_uint_eq(virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_Q_MSIX, 2), q + 1);
	}
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)d->desc);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_Q_DESCHI, 4, d->desc >> 32);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)d->avail);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_Q_AVAILHI, 4, d->avail >> 32);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t)d->used);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_Q_USEDHI, 4, d->used >> 32);
	ck_assert_uint_eq(virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_Q_NOFF, 2) *
					  VIRTIO_PCI_NOTIFY_MULT +
				  VIRTIO_PCI_NOTIFY_OFF,
			  e->v.desc.ioevents[q].off);
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	ck_assert_uint_eq(virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
}

/* The whole Linux sequence, up to DRIVER_OK; then the loop consumes the start-up kicks. */
static void linux_init(struct env *e, bool msix, uint16_t size)
{
	device_msix_state(e->v.dev, msix);
	negotiate(e, FEATURES_LINUX | FAKE_FEATURE);
	if (msix) {
		virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_MSIX, 2, 0);
		ck_assert_uint_eq(virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_MSIX, 2), 0);
	}
	ck_assert_uint_eq(virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_NUMQ, 2), e->v.nr_queues);
	for (unsigned q = 0; q < e->v.nr_queues; q++)
		setup_queue(e, q, size, msix, RING_GPA(q));
	add_status(e, S_DRIVER_OK);
	ck_assert_uint_eq(virtio_env_status(&e->v), S_ALL);
	virtio_env_run_loop(&e->v);
	memset(e->fake.notifies, 0, sizeof(e->fake.notifies));
	virtio_env_drain_irqs(&e->v);
}

/* One rng request of len bytes at gpa; returns the used length. */
static uint32_t rng_request(struct env *e, uint64_t gpa, uint32_t len)
{
	struct virtq_buf b = {.gpa = gpa, .len = len, .writable = true};
	uint16_t head = virtio_env_add(&e->v, 0, &b, 1);
	int64_t used;

	virtio_env_kick(&e->v, 0);
	used = virtio_env_used(&e->v, 0, head);
	ck_assert_int_ge(used, 0);
	return (uint32_t)used;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- PCI description ---- */

struct vcap {
	uint8_t type, bar;
	uint32_t off, len;
	const struct pci_cap_desc *c;
};

/* Finds the one virtio capability of cfg_type type (fails on duplicates). */
static bool find_vcap(const struct pci_dev_desc *d, uint8_t type, struct vcap *out)
{
	bool found = false;

	for (unsigned i = 0; i < d->nr_caps; i++) {
		const struct pci_cap_desc *c = &d->caps[i];

		ck_assert_uint_eq(c->id, 0x09); /* vendor specific */
		ck_assert_uint_eq(c->body[0], c->len);
		if (c->body[1] != type)
			continue;
		ck_assert(!found);
		found = true;
		*out = (struct vcap){.type = type,
				     .bar = c->body[2],
				     .off = (uint32_t)get_le(&c->body[6], 4),
				     .len = (uint32_t)get_le(&c->body[10], 4),
				     .c = c};
	}
	return found;
}

static void check_vcap(const struct pci_dev_desc *d, uint8_t type, uint32_t off, uint32_t min_len,
		       uint8_t cap_len)
{
	struct vcap v;

	ck_assert(find_vcap(d, type, &v));
	ck_assert_uint_eq(v.c->len, cap_len);
	ck_assert_uint_eq(v.bar, 0);
	ck_assert_uint_eq(v.off, off);
	ck_assert_uint_ge(v.len, min_len);
	ck_assert(range_contains(0, d->bars[0].size, v.off, v.len));
	/* No virtio area may overlap the MSI-X table or PBA. */
	ck_assert(!ranges_overlap(v.off, v.len, d->msix_table_off, 16 * d->msix_vectors));
	ck_assert(!ranges_overlap(v.off, v.len, d->msix_pba_off, 8));
	ck_assert(!v.c->window);
}

static void check_common_desc(const struct pci_dev_desc *d, unsigned nr_queues)
{
	struct vcap v;

	ck_assert_uint_eq(d->vendor_id, 0x1af4);
	ck_assert_uint_eq(d->subsys_vendor_id, 0x1af4);
	ck_assert_uint_eq(d->revision, 1);
	ck_assert_uint_ge(d->subsys_id, 0x40);
	ck_assert_uint_eq(d->bars[0].size, 0x8000);
	ck_assert(d->bars[0].mem64);
	for (unsigned b = 1; b < PCI_NUM_BARS; b++)
		ck_assert_uint_eq(d->bars[b].size, 0);
	ck_assert_uint_eq(d->msix_vectors, nr_queues + 1);
	ck_assert_uint_eq(d->msix_bar, 0);
	ck_assert_uint_eq(d->msix_table_off, 0x6000);
	ck_assert_uint_eq(d->msix_pba_off, 0x7000);
	ck_assert(d->intx);

	check_vcap(d, VIRTIO_PCI_CAP_COMMON_CFG, 0x0000, 0x3c, 16);
	check_vcap(d, VIRTIO_PCI_CAP_ISR_CFG, 0x1000, 1, 16);
	check_vcap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, 0x3000, 4 * nr_queues, 20);
	ck_assert(find_vcap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, &v));
	ck_assert_uint_eq((uint32_t)get_le(&v.c->body[14], 4), 4); /* notify_off_multiplier */
	ck_assert(find_vcap(d, VIRTIO_PCI_CAP_PCI_CFG, &v));
	ck_assert(v.c->window);
	ck_assert_uint_eq(v.c->len, 20);

	ck_assert_uint_eq(d->nr_ioevents, nr_queues);
	for (unsigned q = 0; q < nr_queues; q++) {
		const struct pci_ioevent_desc *io = &d->ioevents[q];

		ck_assert_uint_eq(io->bar, 0);
		ck_assert_uint_eq(io->off, 0x3000 + 4 * q);
		ck_assert_uint_eq(io->len, 2);
		ck_assert(io->datamatch);
		ck_assert_uint_eq(io->data, q);
		ck_assert_int_ge(io->fd, 0);
		for (unsigned r = 0; r < q; r++)
			ck_assert_int_ne(io->fd, d->ioevents[r].fd);
	}
}

START_TEST(test_desc_rng)
{
	struct env e;
	struct vcap v;

	env_create(&e, RNG);
	check_common_desc(&e.v.desc, 1);
	ck_assert_uint_eq(e.v.desc.device_id, 0x1044);
	ck_assert_uint_eq(e.v.desc.subsys_id, 0x44);
	/* As QEMU's virtio-rng-pci: class "other". */
	ck_assert_uint_eq(e.v.desc.class_code, 0xff);
	ck_assert_uint_eq(e.v.desc.subclass, 0x00);
	ck_assert_uint_eq(e.v.desc.prog_if, 0x00);
	/* No device configuration, so no capability for it. */
	ck_assert(!find_vcap(&e.v.desc, VIRTIO_PCI_CAP_DEVICE_CFG, &v));
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_desc_block_class)
{
	struct env e;

	env_create(&e, FAKE);
	check_common_desc(&e.v.desc, FAKE_QUEUES);
	ck_assert_uint_eq(e.v.desc.device_id, 0x1042);
	/* As QEMU's virtio-blk-pci: mass storage, SCSI. */
	ck_assert_uint_eq(e.v.desc.class_code, 0x01);
	ck_assert_uint_eq(e.v.desc.subclass, 0x00);
	check_vcap(&e.v.desc, VIRTIO_PCI_CAP_DEVICE_CFG, 0x2000, FAKE_CFG_SIZE, 16);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_fds_listed)
{
	struct fd_list l = {.nr = 0};
	struct env e;
	bool seen;

	env_create(&e, FAKE);
	ck_assert_int_eq(device_fds(e.v.dev, &l), 0);
	int want[] = {e.v.irq.vector_fds[0],  e.v.irq.vector_fds[1],	e.v.irq.vector_fds[2],
		      e.v.irq.intx_fd,	      e.v.irq.intx_resample_fd, e.v.desc.ioevents[0].fd,
		      e.v.desc.ioevents[1].fd};
	for (unsigned i = 0; i < ARRAY_SIZE(want); i++) {
		seen = false;
		for (unsigned j = 0; j < l.nr; j++)
			seen |= l.fds[j] == want[i];
		ck_assert_msg(seen, "fd %d not listed", want[i]);
	}
	virtio_env_destroy(&e.v);
	ck_assert_uint_eq(e.fake.destroys, 1);
}
END_TEST

/* ---- driver initialisation and rng traffic ---- */

START_TEST(test_rng_linux_init_msix)
{
	uint8_t first[64];
	uint64_t f;
	struct env e;

	env_create(&e, RNG);
	f = offered(&e);
	ck_assert(f & BIT(VIRTIO_F_VERSION_1));
	ck_assert(f & BIT(VIRTIO_RING_F_EVENT_IDX));
	ck_assert(f & BIT(VIRTIO_RING_F_INDIRECT_DESC));
	ck_assert(!(f & BIT(VIRTIO_F_ACCESS_PLATFORM)));
	ck_assert(!(f & BIT(VIRTIO_F_RING_PACKED)));
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2), VIRTIO_RNG_QUEUE_SIZE);
	linux_init(&e, true, 64);

	ck_assert_uint_eq(rng_request(&e, DATA_GPA, 64), 64);
	memcpy(first, virtio_env_ptr(&e.v, DATA_GPA, 64), 64);
	ck_assert(!all_zero(first, 64));
	ck_assert_uint_eq(rng_request(&e, DATA_GPA, 64), 64);
	ck_assert(memcmp(first, virtio_env_ptr(&e.v, DATA_GPA, 64), 64) != 0);

	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[1]), 2); /* the queue's vector */
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[0]), 0);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.intx_fd), 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, ISR, 1), 0); /* the ISR is for INTx only */
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_rng_intx)
{
	struct env e;

	env_create(&e, RNG);
	linux_init(&e, false, 32);
	/* Linux leaves the vectors alone without MSI-X. */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_MSIX, 2), NO_VECTOR);

	ck_assert_uint_eq(rng_request(&e, DATA_GPA, 16), 16);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.intx_fd), 1);
	ck_assert_uint_eq(virtio_env_rd(&e.v, ISR, 1), 1); /* queue interrupt */
	ck_assert_uint_eq(virtio_env_rd(&e.v, ISR, 1), 0); /* read-to-clear */

	/* EOI with the ISR still set: INTx is asserted again. */
	ck_assert_uint_eq(rng_request(&e, DATA_GPA, 16), 16);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.intx_fd), 1);
	ck_assert_int_eq(eventfd_signal(e.v.irq.intx_resample_fd), 0);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.intx_fd), 1);

	/* Once the driver has read the ISR, EOI leaves the line alone. */
	ck_assert_uint_eq(virtio_env_rd(&e.v, ISR, 4), 1);
	ck_assert_int_eq(eventfd_signal(e.v.irq.intx_resample_fd), 0);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.intx_fd), 0);
	for (unsigned i = 0; i < e.v.irq.nr_vectors; i++)
		ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[i]), 0);
	virtio_env_destroy(&e.v);
}
END_TEST

/* ---- features and status ---- */

START_TEST(test_features_ok_refused)
{
	const uint64_t bad[] = {
		FAKE_FEATURE,			   /* no VERSION_1 */
		BIT(VIRTIO_F_VERSION_1) | BIT(40), /* never offered */
		BIT(VIRTIO_F_VERSION_1) | BIT(7),  /* device bit not offered */
		BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_ACCESS_PLATFORM), /* dropped by transport */
	};
	struct env e;

	env_create(&e, FAKE);
	ck_assert_uint_eq(offered(&e) & FAKE_FEATURE, FAKE_FEATURE);
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_STATUS, 1, 0);
		add_status(&e, S_ACK | S_DRIVER);
		write_features(&e, bad[i]);
		add_status(&e, S_FEATURES_OK);
		ck_assert_msg(!(virtio_env_status(&e.v) & S_FEATURES_OK), "accepted 0x%llx",
			      (unsigned long long)bad[i]);
	}
	/* Once the driver asks for a valid set, it is accepted. */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	negotiate(&e, BIT(VIRTIO_F_VERSION_1) | FAKE_FEATURE);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_features_frozen_after_features_ok)
{
	struct env e;

	env_create(&e, FAKE);
	negotiate(&e, BIT(VIRTIO_F_VERSION_1));
	write_features(&e, BIT(VIRTIO_F_VERSION_1) | FAKE_FEATURE);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_GF, 4), 0);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_GF, 4), 1);
	for (unsigned q = 0; q < FAKE_QUEUES; q++)
		setup_queue(&e, q, 16, false, RING_GPA(q));
	add_status(&e, S_DRIVER_OK);
	ck_assert_uint_eq(e.fake.activations, 1);
	ck_assert_uint_eq(e.fake.act.features, BIT(VIRTIO_F_VERSION_1));
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_driver_ok_without_features_ok)
{
	struct env e;

	env_create(&e, FAKE);
	add_status(&e, S_ACK | S_DRIVER);
	write_features(&e, BIT(VIRTIO_F_VERSION_1));
	add_status(&e, S_DRIVER_OK);
	ck_assert_uint_eq(e.fake.activations, 0);
	ck_assert(!(virtio_env_status(&e.v) & S_DRIVER_OK));
	ck_assert(virtio_env_status(&e.v) & S_NEEDS_RESET);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_status_bits_only_added)
{
	struct env e;

	env_create(&e, FAKE);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_STATUS, 1, S_ACK | S_DRIVER);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_STATUS, 1, S_ACK);
	ck_assert_uint_eq(virtio_env_status(&e.v), S_ACK | S_DRIVER);
	/* NEEDS_RESET is the device's to set. */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_STATUS, 1, S_ACK | S_DRIVER | S_NEEDS_RESET);
	ck_assert_uint_eq(virtio_env_status(&e.v), S_ACK | S_DRIVER);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_activation)
{
	struct env e;

	env_create(&e, FAKE);
	device_msix_state(e.v.dev, true);
	negotiate(&e, FEATURES_LINUX);
	setup_queue(&e, 0, 32, true, RING_GPA(0)); /* queue 1 stays disabled */
	add_status(&e, S_DRIVER_OK);
	ck_assert_uint_eq(e.fake.activations, 1);
	ck_assert_uint_eq(e.fake.act.nr_queues, FAKE_QUEUES);
	ck_assert_ptr_nonnull(e.fake.act.queues[0]);
	ck_assert_ptr_null(e.fake.act.queues[1]);
	ck_assert_uint_eq(e.fake.act.queues[0]->size, 32);
	ck_assert(e.fake.act.queues[0]->event_idx);
	ck_assert(!e.fake.act.queues[0]->indirect);
	ck_assert_uint_eq(e.fake.act.queues[0]->desc_gpa, e.v.drv[0].desc);
	ck_assert_ptr_eq(e.fake.act.mem, &e.v.mem);
	ck_assert_ptr_eq(e.fake.act.eb, e.v.eb);
	ck_assert_ptr_nonnull(e.fake.act.irq);
	/* The queue gets one kick on activation for anything posted before DRIVER_OK. */
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(e.fake.notifies[0], 1);
	ck_assert_uint_eq(e.fake.notifies[1], 0);
	/* Queue setup is frozen once the device is live. */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x5000);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 32);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_DESCLO, 4), e.v.drv[0].desc);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_activate_error_needs_reset)
{
	struct env e;

	env_create(&e, FAKE);
	e.fake.activate_ret = -EIO;
	device_msix_state(e.v.dev, true);
	negotiate(&e, FEATURES_LINUX);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	setup_queue(&e, 0, 32, true, RING_GPA(0));
	add_status(&e, S_DRIVER_OK);
	ck_assert_uint_eq(virtio_env_status(&e.v), S_ALL | S_NEEDS_RESET);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[0]), 1); /* config change */
	/* A failed device gets no kicks. */
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(e.fake.notifies[0], 0);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_bad_queue_address_needs_reset)
{
	struct env e, other;

	env_create(&e, FAKE);
	env_create(&other, RNG);
	device_msix_state(e.v.dev, true);
	negotiate(&e, FEATURES_LINUX);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	setup_queue(&e, 0, 32, true, RING_GPA(0));
	setup_queue(&e, 1, 32, true, OUTSIDE_RAM);
	add_status(&e, S_DRIVER_OK);
	ck_assert_uint_eq(virtio_env_status(&e.v), S_ALL | S_NEEDS_RESET);
	ck_assert_uint_eq(e.fake.activations, 0);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[0]), 1);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(e.fake.notifies[0], 0);

	/* Another device is not affected. */
	linux_init(&other, true, 16);
	ck_assert_uint_eq(rng_request(&other, DATA_GPA, 8), 8);

	/* The driver resets and tries again with good rings. */
	linux_init(&e, true, 32);
	ck_assert_uint_eq(e.fake.activations, 1);
	virtio_env_destroy(&other.v);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_failed_stops_device)
{
	struct env e;

	env_create(&e, FAKE);
	linux_init(&e, true, 16);
	ck_assert_uint_eq(e.fake.resets, 1); /* the initial reset */
	add_status(&e, S_FAILED);
	ck_assert_uint_eq(e.fake.resets, 2);
	ck_assert_uint_eq(virtio_env_status(&e.v), S_ALL | S_FAILED);
	ck_assert_int_eq(eventfd_signal(e.v.desc.ioevents[0].fd), 0);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(e.fake.notifies[0], 0);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_reset_mid_operation)
{
	struct virtq_buf b = {.gpa = DATA_GPA, .len = 32, .writable = true};
	uint16_t head, id;
	uint32_t len;
	struct env e;

	env_create(&e, RNG);
	linux_init(&e, true, 64);
	ck_assert_int_eq(virtq_driver_add(&e.v.drv[0], &b, 1, &head), 0);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	/* Complete when the write returns. */
	ck_assert_uint_eq(virtio_env_status(&e.v), 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_MSIX, 2), NO_VECTOR);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2), VIRTIO_RNG_QUEUE_SIZE);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_MSIX, 2), NO_VECTOR);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_GF, 4), 0);
	/* The request posted before the reset is never served. */
	ck_assert_int_eq(eventfd_signal(e.v.desc.ioevents[0].fd), 0);
	virtio_env_run_loop(&e.v);
	ck_assert_int_eq(virtq_driver_get_used(&e.v.drv[0], &id, &len), -ENOENT);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[1]), 0);
	/* And the device works again after a new initialisation. */
	linux_init(&e, true, 64);
	ck_assert_uint_eq(rng_request(&e, DATA_GPA, 32), 32);
	virtio_env_destroy(&e.v);
}
END_TEST

/* ---- common configuration details ---- */

START_TEST(test_queue_select_out_of_range)
{
	const uint16_t sel[] = {FAKE_QUEUES, 0x1234, 0xffff};
	struct env e;

	env_create(&e, FAKE);
	negotiate(&e, FEATURES_LINUX);
	for (unsigned i = 0; i < ARRAY_SIZE(sel); i++) {
		virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2, sel[i]);
		ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2), sel[i]);
		ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
		virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
		virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x1000);
		virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
		virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
		ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
		ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
		ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0);
	}
	for (unsigned q = 0; q < FAKE_QUEUES; q++) {
		virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
		ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2), FAKE_QMAX);
		ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
		ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0);
		ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_MSIX, 2), NO_VECTOR);
	}
	/* DRIVER_OK with no queue enabled still activates (nothing to map). */
	add_status(&e, S_DRIVER_OK);
	ck_assert_uint_eq(e.fake.activations, 1);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_queue_size_rules)
{
	struct env e;

	env_create(&e, FAKE);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2, 64);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
	const uint16_t bad[] = {0, 48, 2 * FAKE_QMAX, 0xffff};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2, bad[i]);
		ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
	}
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2, 1);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 1);
	/* Frozen once enabled. */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2, 8);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 1);
	/* Queue 0 was not touched. */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SIZE, 2), FAKE_QMAX);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_msix_vector_range)
{
	struct env e;

	env_create(&e, FAKE);
	/* 3 vectors: 0..2 are valid, anything else reads back as NO_VECTOR. */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_MSIX, 2, 2);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_MSIX, 2), 2);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_MSIX, 2, 3);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_MSIX, 2), NO_VECTOR);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_MSIX, 2), 0);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_MSIX, 2, 0x7ff);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_MSIX, 2), NO_VECTOR);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_config_change_interrupt)
{
	struct env e;
	uint8_t gen;

	env_create(&e, FAKE);
	linux_init(&e, true, 16);
	gen = (uint8_t)virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_CFGGENERATION, 1);
	virtio_irq_config(e.fake.act.irq);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_CFGGENERATION, 1),
			  (uint8_t)(gen + 1));
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[0]), 1);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[1]), 0);

	/* Without MSI-X: ISR bit 1 and INTx. */
	device_msix_state(e.v.dev, false);
	virtio_irq_config(e.fake.act.irq);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_CFGGENERATION, 1),
			  (uint8_t)(gen + 2));
	ck_assert_uint_eq(virtio_env_count(e.v.irq.intx_fd), 1);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[0]), 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, ISR, 1), VIRTIO_PCI_ISR_CONFIG);

	/* Queue interrupts go to the queue's vector, none for NO_VECTOR. */
	device_msix_state(e.v.dev, true);
	virtio_irq_queue(e.fake.act.irq, 1);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[2]), 1);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_MSIX, 2, NO_VECTOR);
	virtio_irq_queue(e.fake.act.irq, 1);
	virtio_irq_queue(e.fake.act.irq, 7); /* no such queue */
	for (unsigned i = 0; i < e.v.irq.nr_vectors; i++)
		ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[i]), 0);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.intx_fd), 0);

	/* The device may report a fatal error. */
	virtio_irq_needs_reset(e.fake.act.irq);
	ck_assert_uint_eq(virtio_env_status(&e.v), S_ALL | S_NEEDS_RESET);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[0]), 1);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_notify_paths)
{
	struct env e;

	env_create(&e, FAKE);
	/* Kicks before DRIVER_OK reach nobody. */
	ck_assert_int_eq(eventfd_signal(e.v.desc.ioevents[0].fd), 0);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(e.fake.notifies[0], 0);

	linux_init(&e, true, 16);
	/* Through the ioeventfd, as KVM signals it. */
	ck_assert_int_eq(eventfd_signal(e.v.desc.ioevents[1].fd), 0);
	ck_assert_int_eq(eventfd_signal(e.v.desc.ioevents[1].fd), 0);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(e.fake.notifies[0], 0);
	ck_assert_uint_eq(e.fake.notifies[1], 1); /* two kicks, one drain */
	/* Through io(), at any width, the queue being the address. */
	virtio_env_wr(&e.v, VIRTIO_PCI_NOTIFY_OFF + 4, 2, 1);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(e.fake.notifies[1], 2);
	virtio_env_wr(&e.v, VIRTIO_PCI_NOTIFY_OFF, 4, 0);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(e.fake.notifies[0], 1);
	/* Past the last queue: nothing. */
	virtio_env_wr(&e.v, VIRTIO_PCI_NOTIFY_OFF + 4 * FAKE_QUEUES, 2, FAKE_QUEUES);
	virtio_env_wr(&e.v, VIRTIO_PCI_NOTIFY_OFF + 0xffc, 4, 0);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(e.fake.notifies[0], 1);
	ck_assert_uint_eq(e.fake.notifies[1], 2);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_NOTIFY_OFF, 2), 0);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_access_sizes)
{
	uint8_t buf[16];
	uint64_t f;
	struct env e;

	env_create(&e, FAKE);
	negotiate(&e, FEATURES_LINUX | FAKE_FEATURE);

	/* Byte reads compose the 32-bit feature window. */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	f = virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_DF, 4);
	for (unsigned i = 0; i < 4; i++)
		ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_DF + i, 1),
				  (f >> (8 * i)) & 0xff);

	/* A 64-bit queue address as one 8-byte access or two 4-byte halves. */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_DESCLO, 8, 0x123456789abcdef0ULL);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0x9abcdef0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_DESCHI, 4), 0x12345678);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_USEDHI, 4, 0x1);
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_USEDLO, 4, 0x2000);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_USEDLO, 8), 0x100002000ULL);

	/* A 4-byte read over status, config_generation and queue_select. */
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_STATUS, 4),
			  (S_ACK | S_DRIVER | S_FEATURES_OK) |
				  virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_CFGGENERATION, 1) << 8 |
				  1u << 16);
	/* A byte write to the low half of queue_select. */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 1, 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);

	/* Read-only and 1.2 fields. */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_NUMQ, 2, 7);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_NUMQ, 2), FAKE_QUEUES);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_NDATA, 2), 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_COMMON_Q_RESET, 2), 0);

	/* Unknown offsets read 0 and ignore writes. */
	const uint64_t unknown[] = {0x3c, 0x100, 0xff8, 0x1004, 0x4000, 0x5ff8, 0x6000, 0x7000};
	for (unsigned i = 0; i < ARRAY_SIZE(unknown); i++) {
		virtio_env_wr(&e.v, unknown[i], 8, ~0ULL);
		ck_assert_uint_eq(virtio_env_rd(&e.v, unknown[i], 8), 0);
	}
	ck_assert_uint_eq(virtio_env_status(&e.v), S_ACK | S_DRIVER | S_FEATURES_OK);
	/* Straddling two areas: neither. */
	ck_assert_uint_eq(virtio_env_rd(&e.v, 0xffe, 4), 0);

	/* Accesses the bus can never produce are refused, not crashed on. */
	ck_assert_int_eq(device_io(e.v.dev, 1, 0, buf, 4, false), -EINVAL);
	ck_assert_int_eq(device_io(e.v.dev, 0, 0x7ffe, buf, 4, false), -EINVAL);
	ck_assert_int_eq(device_io(e.v.dev, 0, UINT64_MAX - 1, buf, 4, false), -EINVAL);
	ck_assert_int_eq(device_io(e.v.dev, 0, 0, buf, 0, false), -EINVAL);
	ck_assert_int_eq(device_io(e.v.dev, 0, 0, buf, 16, true), -EINVAL);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_isr_partial_reads)
{
	struct env e;

	env_create(&e, FAKE);
	linux_init(&e, false, 16);
	virtio_irq_queue(e.fake.act.irq, 0);
	/* Only a read of the ISR byte itself returns and clears it. */
	ck_assert_uint_eq(virtio_env_rd(&e.v, ISR + 1, 1), 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, ISR + 0x800, 4), 0);
	virtio_env_wr(&e.v, ISR, 1, 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, ISR, 2), 1);
	ck_assert_uint_eq(virtio_env_rd(&e.v, ISR, 1), 0);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_device_config)
{
	struct env e;

	env_create(&e, FAKE);
	for (unsigned i = 0; i < FAKE_CFG_SIZE; i++)
		e.fake.config[i] = (uint8_t)(i + 1);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_DEVICE_OFF, 4), 0x04030201);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_DEVICE_OFF, 8), 0x0807060504030201ULL);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_DEVICE_OFF + 5, 1), 6);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_DEVICE_OFF + 1, 3), 0x040302);
	/* Past the end: zeros, the part inside still read. */
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_DEVICE_OFF + 6, 4), 0x0807);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_DEVICE_OFF + FAKE_CFG_SIZE, 8), 0);
	ck_assert_uint_eq(virtio_env_rd(&e.v, VIRTIO_PCI_DEVICE_OFF + 0xff8, 8), 0);
	virtio_env_wr(&e.v, VIRTIO_PCI_DEVICE_OFF + 2, 2, 0xbbaa);
	ck_assert_uint_eq(e.fake.config[2], 0xaa);
	ck_assert_uint_eq(e.fake.config[3], 0xbb);
	virtio_env_wr(&e.v, VIRTIO_PCI_DEVICE_OFF + 7, 4, 0x11223344);
	ck_assert_uint_eq(e.fake.config[7], 0x44);
	virtio_env_destroy(&e.v);
}
END_TEST

/* The transport must not hold its lock while the device runs (it would deadlock here). */
START_TEST(test_device_may_raise_irqs_from_any_call)
{
	struct env e;

	env_create(&e, FAKE);
	e.fake.irq_from_thread = true;
	linux_init(&e, true, 16); /* activate, then notify for the start-up kick of each queue */
	ck_assert_uint_eq(e.fake.raised, 1 + FAKE_QUEUES);
	ck_assert_int_eq(eventfd_signal(e.v.desc.ioevents[0].fd), 0);
	virtio_env_run_loop(&e.v);			     /* notify */
	virtio_env_wr(&e.v, VIRTIO_PCI_DEVICE_OFF, 1, 1);    /* config_write */
	add_status(&e, S_FAILED);			     /* reset, to stop the device */
	virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_STATUS, 1, 0); /* reset by the driver */
	ck_assert_uint_eq(e.fake.raised, 5 + FAKE_QUEUES);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[1]), 4);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[0]), 4);
	virtio_env_destroy(&e.v);
}
END_TEST

/* ---- through the generic PCI layer, as a guest's PCI code sees the function ---- */

struct pci_env {
	struct env e;
	/* no KVM: the PCI layer only needs the buses, memory and a logger */
	struct bus pio, mmio;
	struct kvm kvm;
	struct guest_mem mem;
	struct pci_root *root;
};

static void pci_env_create(struct pci_env *p)
{
	const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};

	env_create(&p->e, FAKE);
	p->kvm = (struct kvm){.dev_fd = -1, .vm_fd = -1};
	ck_assert_int_eq(guest_mem_create_regions(&p->mem, ram, 1), 0);
	ck_assert_int_eq(bus_init(&p->pio, "io"), 0);
	ck_assert_int_eq(bus_init(&p->mmio, "mmio"), 0);
	ck_assert_int_eq(pci_root_create(&(struct pci_root_params){.pio = &p->pio,
								   .mmio = &p->mmio,
								   .kvm = &p->kvm,
								   .mem = &p->mem,
								   .log = &p->e.v.lg},
					 &p->root),
			 0);
	ck_assert_int_eq(pci_add_device(p->root, 1, p->e.v.dev, &p->e.v.desc, &p->e.v.irq), 0);
}

static void pci_env_destroy(struct pci_env *p)
{
	pci_root_destroy(p->root);
	virtio_env_destroy(&p->e.v);
	bus_destroy(&p->pio);
	bus_destroy(&p->mmio);
	guest_mem_destroy(&p->mem);
}

static uint32_t cfg_rd(struct pci_env *p, uint32_t reg, uint32_t len)
{
	uint32_t v = 0;

	ck_assert_int_eq(pci_config_access(p->root, 0, 1, 0, reg, &v, len, false), 0);
	return v;
}

static void cfg_wr(struct pci_env *p, uint32_t reg, uint32_t len, uint32_t v)
{
	ck_assert_int_eq(pci_config_access(p->root, 0, 1, 0, reg, &v, len, true), 0);
}

START_TEST(test_pci_config_space)
{
	unsigned seen[VIRTIO_PCI_CAP_PCI_CFG + 1] = {0};
	uint32_t pos, window = 0, msix = 0;
	struct pci_env p;

	pci_env_create(&p);
	ck_assert_uint_eq(cfg_rd(&p, 0x00, 4), 0x10421af4);
	ck_assert_uint_eq(cfg_rd(&p, 0x08, 1), 1);	    /* revision */
	ck_assert_uint_eq(cfg_rd(&p, 0x0a, 2), 0x0100);	    /* class: mass storage, SCSI */
	ck_assert_uint_eq(cfg_rd(&p, 0x2c, 4), 0x00421af4); /* subsystem */
	ck_assert_uint_eq(cfg_rd(&p, 0x3d, 1), 1);	    /* INTA# */
	ck_assert(cfg_rd(&p, 0x06, 2) & 0x10);		    /* capability list */
	/* Walk the capabilities as Linux's virtio_pci_find_capability does. */
	for (pos = cfg_rd(&p, 0x34, 1); pos; pos = cfg_rd(&p, pos + 1, 1)) {
		uint8_t type = (uint8_t)cfg_rd(&p, pos + 3, 1);
		uint32_t off = cfg_rd(&p, pos + 8, 4), len = cfg_rd(&p, pos + 12, 4);

		ck_assert_uint_lt(pos, PCI_CFG_SIZE);
		if (cfg_rd(&p, pos, 1) == 0x11) {
			msix = pos;
			continue;
		}
		ck_assert_uint_eq(cfg_rd(&p, pos, 1), 0x09);
		ck_assert_uint_ge(type, VIRTIO_PCI_CAP_COMMON_CFG);
		ck_assert_uint_le(type, VIRTIO_PCI_CAP_PCI_CFG);
		seen[type]++;
		if (type == VIRTIO_PCI_CAP_PCI_CFG) {
			window = pos;
			continue;
		}
		ck_assert_uint_eq(cfg_rd(&p, pos + 4, 1), 0); /* BAR0 */
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON_CFG:
			ck_assert_uint_eq(off, 0x0000);
			ck_assert_uint_ge(len, 0x3c);
			break;
		case VIRTIO_PCI_CAP_NOTIFY_CFG:
			ck_assert_uint_eq(off, 0x3000);
			ck_assert_uint_ge(len, 4 * FAKE_QUEUES);
			ck_assert_uint_eq(cfg_rd(&p, pos + 16, 4), 4);
			break;
		case VIRTIO_PCI_CAP_ISR_CFG:
			ck_assert_uint_eq(off, 0x1000);
			ck_assert_uint_ge(len, 1);
			break;
		case VIRTIO_PCI_CAP_DEVICE_CFG:
			ck_assert_uint_eq(off, 0x2000);
			ck_assert_uint_ge(len, FAKE_CFG_SIZE);
			break;
		}
	}
	for (unsigned t = VIRTIO_PCI_CAP_COMMON_CFG; t <= VIRTIO_PCI_CAP_PCI_CFG; t++)
		ck_assert_uint_eq(seen[t], 1);
	ck_assert_uint_ne(msix, 0);
	ck_assert_uint_eq(cfg_rd(&p, msix + 2, 2) & 0x7ff, FAKE_QUEUES); /* table size - 1 */
	ck_assert_uint_eq(cfg_rd(&p, msix + 4, 4), 0x6000);		 /* table, BAR0 */
	ck_assert_uint_eq(cfg_rd(&p, msix + 8, 4), 0x7000);		 /* PBA, BAR0 */

	/* VIRTIO_PCI_CAP_PCI_CFG: BAR0 reached through config space only. */
	ck_assert_uint_ne(window, 0);
	cfg_wr(&p, window + 4, 1, 0);
	cfg_wr(&p, window + 8, 4, VIRTIO_PCI_COMMON_NUMQ);
	cfg_wr(&p, window + 12, 4, 2);
	ck_assert_uint_eq(cfg_rd(&p, window + 16, 2), FAKE_QUEUES);
	cfg_wr(&p, window + 8, 4, VIRTIO_PCI_COMMON_STATUS);
	cfg_wr(&p, window + 12, 4, 1);
	cfg_wr(&p, window + 16, 1, S_ACK);
	ck_assert_uint_eq(virtio_env_status(&p.e.v), S_ACK);

	/* Enabling MSI-X in config space moves interrupts from INTx to the vectors. */
	linux_init(&p.e, false, 16);
	cfg_wr(&p, msix + 2, 2, 0x8000);
	virtio_env_wr(&p.e.v, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	virtio_irq_config(p.e.fake.act.irq);
	ck_assert_uint_eq(virtio_env_count(p.e.v.irq.vector_fds[0]), 1);
	ck_assert_uint_eq(virtio_env_count(p.e.v.irq.intx_fd), 0);
	cfg_wr(&p, msix + 2, 2, 0);
	virtio_irq_config(p.e.fake.act.irq);
	ck_assert_uint_eq(virtio_env_count(p.e.v.irq.vector_fds[0]), 0);
	ck_assert_uint_eq(virtio_env_count(p.e.v.irq.intx_fd), 1);
	pci_env_destroy(&p);
}
END_TEST

/* A device with own_kicks gets the kick eventfds, and the loop never reads them. */
START_TEST(test_own_kicks)
{
	struct env e;

	env_create(&e, FAKE_OWN_KICKS);
	linux_init(&e, true, 16);
	for (unsigned q = 0; q < FAKE_QUEUES; q++) {
		ck_assert_int_eq(e.fake.act.kick_fds[q], e.v.desc.ioevents[q].fd);
		/* The start-up kick is still there for the device to find. */
		ck_assert_uint_eq(virtio_env_count(e.v.desc.ioevents[q].fd), 1);
	}
	ck_assert_int_eq(eventfd_signal(e.v.desc.ioevents[1].fd), 0);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(virtio_env_count(e.v.desc.ioevents[1].fd), 1);
	/* A notification that reaches io() lands in the same eventfd. */
	virtio_env_wr(&e.v, VIRTIO_PCI_NOTIFY_OFF + 4, 2, 1);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(virtio_env_count(e.v.desc.ioevents[1].fd), 1);
	ck_assert_uint_eq(e.fake.notifies[0] + e.fake.notifies[1], 0);
	virtio_env_destroy(&e.v);
}
END_TEST

/* A queue the driver leaves disabled has no kick eventfd to wait on. */
START_TEST(test_own_kicks_disabled_queue)
{
	struct env e;

	env_create(&e, FAKE_OWN_KICKS);
	device_msix_state(e.v.dev, true);
	negotiate(&e, FEATURES_LINUX | FAKE_FEATURE);
	setup_queue(&e, 0, 16, true, RING_GPA(0));
	add_status(&e, S_DRIVER_OK);
	ck_assert_uint_eq(virtio_env_status(&e.v), S_ALL);
	ck_assert_ptr_nonnull(e.fake.act.queues[0]);
	ck_assert_int_eq(e.fake.act.kick_fds[0], e.v.desc.ioevents[0].fd);
	ck_assert_ptr_null(e.fake.act.queues[1]);
	ck_assert_int_eq(e.fake.act.kick_fds[1], -1);
	virtio_env_destroy(&e.v);
}
END_TEST

START_TEST(test_rejects_bad_params)
{
	const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};
	struct virtio_dev_ops ops = fake_ops;
	struct pci_irq_fds irq = {.nr_vectors = 0, .intx_fd = -1, .intx_resample_fd = -1};
	struct guest_mem mem;
	struct pci_dev_desc desc;
	struct device *dev;
	struct fake f = {0};
	struct virtio_pci_params p = {.ops = &ops, .dev = &f, .mem = &mem, .irq = &irq};

	ck_assert_int_eq(guest_mem_create_regions(&mem, ram, 1), 0);
	ops.nr_queues = VIRTIO_MAX_QUEUES + 1;
	ck_assert_int_eq(virtio_pci_transport_create(&p, &dev, &desc), -EINVAL);
	ops = fake_ops;
	ops.queue_max_size = 100;
	ck_assert_int_eq(virtio_pci_transport_create(&p, &dev, &desc), -EINVAL);
	ops = fake_ops;
	ops.config_size = 0x2000;
	ck_assert_int_eq(virtio_pci_transport_create(&p, &dev, &desc), -EINVAL);
	ops = fake_ops;
	ops.notify = NULL;
	ck_assert_int_eq(virtio_pci_transport_create(&p, &dev, &desc), -EINVAL);
	/* ...unless the device waits on its kicks itself. */
	ops.own_kicks = true;
	ck_assert_int_eq(virtio_pci_transport_create(&p, &dev, &desc), 0);
	device_destroy(dev);
	ck_assert_uint_eq(f.destroys, 1);
	f.destroys = 0;
	/* Without interrupts at all the transport still works: no MSI-X, no INTx. */
	ops = fake_ops;
	ck_assert_int_eq(virtio_pci_transport_create(&p, &dev, &desc), 0);
	ck_assert_uint_eq(desc.msix_vectors, 0);
	ck_assert(!desc.intx);
	device_destroy(dev);
	ck_assert_uint_eq(f.destroys, 1);
	guest_mem_destroy(&mem);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_pci");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_desc_rng);
	tcase_add_test(tc, test_desc_block_class);
	tcase_add_test(tc, test_fds_listed);
	tcase_add_test(tc, test_rng_linux_init_msix);
	tcase_add_test(tc, test_rng_intx);
	tcase_add_test(tc, test_features_ok_refused);
	tcase_add_test(tc, test_features_frozen_after_features_ok);
	tcase_add_test(tc, test_driver_ok_without_features_ok);
	tcase_add_test(tc, test_status_bits_only_added);
	tcase_add_test(tc, test_activation);
	tcase_add_test(tc, test_activate_error_needs_reset);
	tcase_add_test(tc, test_bad_queue_address_needs_reset);
	tcase_add_test(tc, test_failed_stops_device);
	tcase_add_test(tc, test_reset_mid_operation);
	tcase_add_test(tc, test_queue_select_out_of_range);
	tcase_add_test(tc, test_queue_size_rules);
	tcase_add_test(tc, test_msix_vector_range);
	tcase_add_test(tc, test_config_change_interrupt);
	tcase_add_test(tc, test_notify_paths);
	tcase_add_test(tc, test_own_kicks);
	tcase_add_test(tc, test_own_kicks_disabled_queue);
	tcase_add_test(tc, test_access_sizes);
	tcase_add_test(tc, test_isr_partial_reads);
	tcase_add_test(tc, test_device_config);
	tcase_add_test(tc, test_device_may_raise_irqs_from_any_call);
	tcase_add_test(tc, test_pci_config_space);
	tcase_add_test(tc, test_rejects_bad_params);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
