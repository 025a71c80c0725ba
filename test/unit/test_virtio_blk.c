/*
 * virtio-blk behind the virtio-pci transport, driven as a guest would: every request type,
 * data spread over descriptors, requests the spec says must fail (beyond the capacity,
 * odd lengths, read-only disks, malformed chains), FLUSH ordering, discard holes, resize
 * through the control command, advisory locks and O_DIRECT, several queues, more requests
 * than the device serves at once, reset and resize with requests in flight. The worker
 * completes requests on its own thread, so the tests wait for the used ring (bounded, a hang
 * guard only).
 *
 * Every test runs on both back ends: TCase "sync" (async-executor=epoll) and "uring" (the
 * io_uring back end, with its ring's restrictions checked), each test in its own process.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <liburing.h>

#include "virtio/disk.h"
#include "virtio/disk_uring.h"
#include "control/proto.h"
#include "core/device.h"
#include "core/guest_mem.h"
#include "core/log.h"
#include "test/unit/testutil.h"
#include "test/unit/virtq_driver.h"
#include "test/unit/virtio_env.h"
#include "virtio/blk.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"

#define RAM_SIZE   0x400000ULL
#define RING_GPA   0x10000ULL
#define HDR_GPA	   0x20000ULL
#define STATUS_GPA 0x20100ULL
#define SEG_GPA	   0x21000ULL
#define DATA_GPA   0x100000ULL
#define DATA_LEN   0x200000ULL
#define QSIZE	   64
#define SECTOR	   512u
/* The helper's vectors and live status (virtio_env.h), under this suite's names. */
#define S_LIVE	     VIRTIO_ENV_S_LIVE
#define CFG_VECTOR   VIRTIO_ENV_CFG_VECTOR
#define Q_VECTOR     VIRTIO_ENV_Q_VECTOR(0)
#define FEATURES     (BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX))
#define NO_STATUS    0xee
#define WAIT_US	     200
#define WAIT_ROUNDS  50000 /* 10 s: only a guard against a hung worker */
#define DEFAULT_SIZE (64 * SECTOR)

/*
 * fdatasync is interposed (the executable's definition wins over libc's) so the FLUSH test
 * can see what the guest could observe at the moment the data reached the disk.
 */
struct flush_probe {
	struct virtq_driver *drv;
	int calls;
	int used_at_call;
};
static struct flush_probe probe;

/* The back end of this test's TCase (set by its fixture; each test runs in its own process). */
static enum disk_engine engine;

static void use_sync(void)
{
	engine = DISK_ENGINE_SYNC;
}

static void use_uring(void)
{
	engine = DISK_ENGINE_URING;
}

int fdatasync(int fd)
{
	if (__atomic_load_n(&probe.drv, __ATOMIC_ACQUIRE))
		__atomic_store_n(&probe.used_at_call, virtq_driver_used_idx(probe.drv),
				 __ATOMIC_RELAXED);
	__atomic_add_fetch(&probe.calls, 1, __ATOMIC_RELEASE);
	return (int)syscall(SYS_fdatasync, fd);
}

struct opts {
	uint64_t size;
	bool ro;
	bool not_sparse;
	bool direct;
	bool no_lock;
	const char *id;
	uint32_t block_size;
	uint16_t num_queues;
	const struct virtio_env_params *params; /* NULL: env_params */
};

struct env {
	struct virtio_env v;
	char path[PATH_MAX];
	struct disk_config cfg;
};

static uint8_t pat(uint64_t off, uint8_t seed)
{
	return (uint8_t)(off * 31 + (off >> 9) * 17 + seed) | 1; /* never 0 */
}

static void make_image(char *path, size_t path_len, uint64_t size, uint8_t seed)
{
	uint8_t *buf = malloc(size ? size : 1);
	int fd;

	ck_assert_ptr_nonnull(buf);
	snprintf(path, path_len, "%s/virtio-blk-XXXXXX", TEST_BUILD_DIR);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	for (uint64_t i = 0; i < size; i++)
		buf[i] = pat(i, seed);
	ck_assert_int_eq(pwrite_full(fd, buf, size, 0), 0);
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	free(buf);
}

static struct disk_config config_of(const char *path, const struct opts *o)
{
	struct disk_config c = {
		.path = (char *)path,
		.ro = o->ro,
		.sparse = !o->not_sparse,
		.direct = o->direct,
		.lock = !o->no_lock,
		.block_size = o->block_size ? o->block_size : SECTOR,
		.num_queues = o->num_queues,
		.engine = engine,
	};

	if (o->id) {
		snprintf(c.id, sizeof(c.id), "%s", o->id);
		c.has_id = true;
	}
	return c;
}

static const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};
static const struct virtio_env_params env_params = {.ram = ram,
						    .nr_ram = ARRAY_SIZE(ram),
						    .queue_size = QSIZE,
						    .ring_gpa = RING_GPA,
						    .data_gpa = DATA_GPA,
						    .data_len = DATA_LEN};
/* Several queues: their rings side by side, no driver-side data areas. */
static const struct virtio_env_params mq_params = {
	.ram = ram, .nr_ram = ARRAY_SIZE(ram), .queue_size = QSIZE, .ring_gpa = RING_GPA};

/* Returns the device's creation status; on success the env is live. */
static int env_try(struct env *e, const struct opts *o)
{
	const struct virtio_dev_ops *ops;
	void *dev;
	int ret;

	memset(e, 0, sizeof(*e));
	ck_assert_int_eq(virtio_env_create(&e->v, o->params ? o->params : &env_params), 0);
	make_image(e->path, sizeof(e->path), o->size, 1);
	e->cfg = config_of(e->path, o);
	ret = virtio_blk_create(&e->cfg, &e->v.lg, &ops, &dev);
	if (ret) {
		virtio_env_destroy(&e->v);
		unlink(e->path);
		return ret;
	}
	ck_assert_int_eq(virtio_env_attach(&e->v, ops, dev, "virtio-blk0"), 0);
	ck_assert_int_eq(virtio_env_start(&e->v, true), 0);
	return 0;
}

static void env_create(struct env *e, const struct opts *o)
{
	struct opts d = *o;

	if (!d.size)
		d.size = DEFAULT_SIZE;
	ck_assert_int_eq(env_try(e, &d), 0);
}

static void env_destroy(struct env *e)
{
	__atomic_store_n(&probe.drv, NULL, __ATOMIC_RELEASE);
	virtio_env_destroy(&e->v);
	unlink(e->path);
}

static uint64_t device_features(struct env *e)
{
	virtio_env_wr(&e->v, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	return virtio_env_rd(&e->v, VIRTIO_PCI_COMMON_DF, 4);
}

/* Linux's order: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queue, DRIVER_OK. */
static void init(struct env *e, uint64_t features)
{
	/* The driver the probe reads is replaced. */
	__atomic_store_n(&probe.drv, NULL, __ATOMIC_RELEASE);
	virtio_env_init(&e->v, features, 1);
}

static void env_init(struct env *e, const struct opts *o)
{
	env_create(e, o);
	init(e, FEATURES);
}

/* Waits for the next used entry, which must be head; returns its length. */
static uint32_t wait_used(struct env *e, uint16_t head)
{
	for (unsigned i = 0; i < WAIT_ROUNDS; i++) {
		int64_t len;

		virtio_env_run_loop(&e->v);
		len = virtio_env_used(&e->v, 0, head);
		if (len >= 0)
			return (uint32_t)len;
		usleep(WAIT_US);
	}
	ck_abort_msg("request %u never completed", head);
	return 0;
}

/* Submits a chain and waits for it; returns the used length, *st the status byte. */
static uint32_t submit(struct env *e, const struct virtq_buf *b, unsigned nr, uint8_t *st)
{
	uint16_t head;
	uint32_t len;

	*virtio_env_ptr(&e->v, STATUS_GPA, 1) = NO_STATUS;
	head = virtio_env_add(&e->v, 0, b, nr);
	virtio_env_kick(&e->v, 0);
	len = wait_used(e, head);
	*st = *virtio_env_ptr(&e->v, STATUS_GPA, 1);
	return len;
}

static uint64_t wait_irq(struct env *e, unsigned vector)
{
	struct pollfd p = {.fd = e->v.irq.vector_fds[vector], .events = POLLIN};

	ck_assert_int_eq(poll(&p, 1, WAIT_ROUNDS * WAIT_US / 1000), 1);
	return virtio_env_count(e->v.irq.vector_fds[vector]);
}

static void put_hdr(struct env *e, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = {.type = htole32(type), .sector = htole64(sector)};

	ck_assert_int_eq(guest_mem_write(&e->v.mem, HDR_GPA, &h, sizeof(h)), 0);
}

/* header, one data buffer (none when len is 0), status. */
static uint32_t request(struct env *e, uint32_t type, uint64_t sector, uint64_t gpa, uint32_t len,
			bool dev_writes, uint8_t *st)
{
	struct virtq_buf b[3];
	unsigned n = 0;

	put_hdr(e, type, sector);
	b[n++] = (struct virtq_buf){.gpa = HDR_GPA, .len = 16};
	if (len)
		b[n++] = (struct virtq_buf){.gpa = gpa, .len = len, .writable = dev_writes};
	b[n++] = (struct virtq_buf){.gpa = STATUS_GPA, .len = 1, .writable = true};
	return submit(e, b, n, st);
}

static uint32_t rq_read(struct env *e, uint64_t sector, uint64_t gpa, uint32_t len, uint8_t *st)
{
	return request(e, VIRTIO_BLK_T_IN, sector, gpa, len, true, st);
}

static uint32_t rq_write(struct env *e, uint64_t sector, uint64_t gpa, uint32_t len, uint8_t *st)
{
	return request(e, VIRTIO_BLK_T_OUT, sector, gpa, len, false, st);
}

static struct virtio_blk_discard_write_zeroes seg(uint64_t sector, uint32_t n, uint32_t flags)
{
	return (struct virtio_blk_discard_write_zeroes){
		.sector = htole64(sector), .num_sectors = htole32(n), .flags = htole32(flags)};
}

static uint32_t rq_segments(struct env *e, uint32_t type,
			    const struct virtio_blk_discard_write_zeroes *s, unsigned n,
			    uint8_t *st)
{
	ck_assert_int_eq(guest_mem_write(&e->v.mem, SEG_GPA, s, n * sizeof(*s)), 0);
	return request(e, type, 0, SEG_GPA, n * sizeof(*s), false, st);
}

static void file_read(struct env *e, void *buf, size_t len, off_t off)
{
	int fd = open(e->path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread_full(fd, buf, len, off), 0);
	close(fd);
}

static struct stat file_stat(struct env *e)
{
	struct stat st;

	ck_assert_int_eq(stat(e->path, &st), 0);
	return st;
}

/* The image still holds pattern `seed` from byte from to byte to. */
static bool file_is_pattern(struct env *e, uint64_t from, uint64_t to, uint8_t seed)
{
	uint8_t *buf = malloc(to - from);
	bool ok = true;

	ck_assert_ptr_nonnull(buf);
	file_read(e, buf, to - from, (off_t)from);
	for (uint64_t i = 0; i < to - from && ok; i++)
		ok = buf[i] == pat(from + i, seed);
	free(buf);
	return ok;
}

static bool is_hole(struct env *e, off_t off)
{
	int fd = open(e->path, O_RDONLY);
	off_t h;

	ck_assert_int_ge(fd, 0);
	h = lseek(fd, off, SEEK_HOLE);
	close(fd);
	return h == off;
}

static bool all_byte(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static uint64_t cfg_rd(struct env *e, uint32_t off, uint32_t len)
{
	return virtio_env_rd(&e->v, VIRTIO_PCI_DEVICE_OFF + off, len);
}

struct reply {
	int calls;
	char text[256];
};

/* The reply as the control socket would send it (control/proto.h). */
static void on_reply(void *ctx, const struct dev_reply *rep)
{
	struct reply *r = ctx;
	char *line = NULL;

	r->calls++;
	if (rep->err)
		ck_assert_int_eq(control_proto_format_error(rep->msg, &line), 0);
	else
		ck_assert_int_eq(control_proto_format_ok(&line), 0);
	snprintf(r->text, sizeof(r->text), "%s", line);
	free(line);
}

static const char *resize_to(struct env *e, uint64_t size, struct reply *r)
{
	struct dev_cmd cmd = {.op = DEV_CMD_DISK_RESIZE, .arg = size};

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(device_command(e->v.dev, &cmd, on_reply, r), 0);
	ck_assert_int_eq(r->calls, 1);
	return r->text;
}

START_TEST(test_identity_and_config)
{
	uint64_t f;
	struct env e;

	env_create(&e, &(struct opts){.block_size = 4096});
	ck_assert_str_eq(e.v.ops->name, "virtio-blk");
	ck_assert_uint_eq(e.v.ops->device_type, VIRTIO_ID_BLOCK);
	/* crosvm's default: 16 queues, the driver told so through F_MQ and num_queues. */
	ck_assert_uint_eq(e.v.nr_queues, 16);
	ck_assert_uint_eq(e.v.ops->config_size, 60);
	f = device_features(&e);
	ck_assert(f & BIT(VIRTIO_BLK_F_SEG_MAX));
	ck_assert(f & BIT(VIRTIO_BLK_F_SIZE_MAX));
	ck_assert(f & BIT(VIRTIO_BLK_F_BLK_SIZE));
	ck_assert(f & BIT(VIRTIO_BLK_F_FLUSH));
	ck_assert(f & BIT(VIRTIO_BLK_F_DISCARD));
	ck_assert(f & BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	ck_assert(f & BIT(VIRTIO_BLK_F_MQ));
	ck_assert(!(f & (BIT(VIRTIO_BLK_F_RO) | BIT(VIRTIO_BLK_F_GEOMETRY) |
			 BIT(VIRTIO_BLK_F_TOPOLOGY) | BIT(VIRTIO_BLK_F_CONFIG_WCE))));

	ck_assert_uint_eq(cfg_rd(&e, 0, 8), 64);
	ck_assert_uint_eq(cfg_rd(&e, 8, 4), VIRTIO_BLK_SIZE_MAX);
	ck_assert_uint_eq(cfg_rd(&e, 12, 4), VIRTIO_BLK_QUEUE_SIZE - 2);
	ck_assert_uint_eq(cfg_rd(&e, 16, 4), 0); /* geometry */
	ck_assert_uint_eq(cfg_rd(&e, 20, 4), 4096);
	ck_assert_uint_eq(cfg_rd(&e, 24, 8), 0); /* topology */
	ck_assert_uint_eq(cfg_rd(&e, 32, 1), 0); /* writeback */
	ck_assert_uint_eq(cfg_rd(&e, 34, 2), 16);
	ck_assert_uint_eq(cfg_rd(&e, 36, 4), UINT32_MAX);
	ck_assert_uint_eq(cfg_rd(&e, 40, 4), 32);
	ck_assert_uint_eq(cfg_rd(&e, 44, 4), 128);
	ck_assert_uint_eq(cfg_rd(&e, 48, 4), UINT32_MAX);
	ck_assert_uint_eq(cfg_rd(&e, 52, 4), 32);
	ck_assert_uint_eq(cfg_rd(&e, 56, 1), 1);
	/* Byte-wise reads see the same little-endian value. */
	ck_assert_uint_eq(cfg_rd(&e, 0, 1), 64);
	ck_assert_uint_eq(cfg_rd(&e, 13, 1), 0);
	/* The guest cannot change the configuration. */
	virtio_env_wr(&e.v, VIRTIO_PCI_DEVICE_OFF, 8, 12345);
	virtio_env_wr(&e.v, VIRTIO_PCI_DEVICE_OFF + 20, 4, 512);
	ck_assert_uint_eq(cfg_rd(&e, 0, 8), 64);
	ck_assert_uint_eq(cfg_rd(&e, 20, 4), 4096);
	env_destroy(&e);

	/* One queue is the plain device, as crosvm has it. */
	env_create(&e, &(struct opts){.num_queues = 1});
	ck_assert_uint_eq(e.v.nr_queues, 1);
	ck_assert(!(device_features(&e) & BIT(VIRTIO_BLK_F_MQ)));
	ck_assert_uint_eq(cfg_rd(&e, 34, 2), 0);
	env_destroy(&e);
	env_create(&e, &(struct opts){.num_queues = 3});
	ck_assert_uint_eq(e.v.nr_queues, 3);
	ck_assert_uint_eq(cfg_rd(&e, 34, 2), 3);
	env_destroy(&e);
}
END_TEST

START_TEST(test_feature_variants)
{
	uint64_t f;
	struct env e;

	env_create(&e, &(struct opts){.ro = true});
	f = device_features(&e);
	ck_assert(f & BIT(VIRTIO_BLK_F_RO));
	ck_assert(f & BIT(VIRTIO_BLK_F_FLUSH));
	ck_assert(!(f & (BIT(VIRTIO_BLK_F_DISCARD) | BIT(VIRTIO_BLK_F_WRITE_ZEROES))));
	ck_assert_uint_eq(cfg_rd(&e, 36, 8), 0);
	ck_assert_uint_eq(cfg_rd(&e, 48, 8), 0);
	env_destroy(&e);

	env_create(&e, &(struct opts){.not_sparse = true});
	f = device_features(&e);
	ck_assert(!(f & BIT(VIRTIO_BLK_F_RO)));
	ck_assert(!(f & BIT(VIRTIO_BLK_F_DISCARD)));
	ck_assert(f & BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	ck_assert_uint_eq(cfg_rd(&e, 40, 4), 0);
	ck_assert_uint_eq(cfg_rd(&e, 52, 4), 32);
	ck_assert_uint_eq(cfg_rd(&e, 56, 1), 0); /* never unmaps */
	env_destroy(&e);
}
END_TEST

START_TEST(test_read_write_every_sector)
{
	const struct virtq_buf split_read[] = {
		{.gpa = HDR_GPA, .len = 16},
		{.gpa = DATA_GPA, .len = 100, .writable = true},
		{.gpa = DATA_GPA + 0x1000, .len = 1000, .writable = true},
		{.gpa = DATA_GPA + 0x2000, .len = 948, .writable = true},
		{.gpa = STATUS_GPA, .len = 1, .writable = true},
	};
	const struct virtq_buf split_write[] = {
		{.gpa = HDR_GPA, .len = 8},
		{.gpa = HDR_GPA + 8, .len = 8},
		{.gpa = DATA_GPA, .len = 1},
		{.gpa = DATA_GPA + 0x1000, .len = 1023},
		{.gpa = STATUS_GPA, .len = 1, .writable = true},
	};
	uint8_t st, buf[2048];
	struct env e;

	env_init(&e, &(struct opts){0});
	for (unsigned s = 0; s < 64; s++) {
		uint8_t *p = virtio_env_ptr(&e.v, DATA_GPA, SECTOR);

		memset(p, 0, SECTOR);
		ck_assert_uint_eq(rq_read(&e, s, DATA_GPA, SECTOR, &st), SECTOR + 1);
		ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
		for (unsigned i = 0; i < SECTOR; i++)
			ck_assert_uint_eq(p[i], pat(s * SECTOR + i, 1));
	}
	ck_assert_uint_ge(wait_irq(&e, Q_VECTOR), 1);
	for (unsigned s = 0; s < 64; s++) {
		uint8_t *p = virtio_env_ptr(&e.v, DATA_GPA, SECTOR);

		for (unsigned i = 0; i < SECTOR; i++)
			p[i] = pat(s * SECTOR + i, 9);
		ck_assert_uint_eq(rq_write(&e, s, DATA_GPA, SECTOR, &st), 1);
		ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	}
	ck_assert(file_is_pattern(&e, 0, 64 * SECTOR, 9));

	/* Data spread over descriptors of any size. */
	put_hdr(&e, VIRTIO_BLK_T_IN, 10);
	ck_assert_uint_eq(submit(&e, split_read, ARRAY_SIZE(split_read), &st), 2049);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	file_read(&e, buf, sizeof(buf), 10 * SECTOR);
	ck_assert_mem_eq(virtio_env_ptr(&e.v, DATA_GPA, 100), buf, 100);
	ck_assert_mem_eq(virtio_env_ptr(&e.v, DATA_GPA + 0x1000, 1000), buf + 100, 1000);
	ck_assert_mem_eq(virtio_env_ptr(&e.v, DATA_GPA + 0x2000, 948), buf + 1100, 948);

	put_hdr(&e, VIRTIO_BLK_T_OUT, 20);
	memset(virtio_env_ptr(&e.v, DATA_GPA, 1), 0x77, 1);
	memset(virtio_env_ptr(&e.v, DATA_GPA + 0x1000, 1023), 0x78, 1023);
	ck_assert_uint_eq(submit(&e, split_write, ARRAY_SIZE(split_write), &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	file_read(&e, buf, 1024, 20 * SECTOR);
	ck_assert_uint_eq(buf[0], 0x77);
	ck_assert(all_byte(buf + 1, 1023, 0x78));
	ck_assert(file_is_pattern(&e, 22 * SECTOR, 64 * SECTOR, 9));
	ck_assert_uint_eq(virtio_env_status(&e.v), S_LIVE);
	env_destroy(&e);
}
END_TEST

START_TEST(test_flush_completes_after_fdatasync)
{
	uint8_t st;
	struct env e;

	env_init(&e, &(struct opts){0});
	memset(virtio_env_ptr(&e.v, DATA_GPA, SECTOR), 0x42, SECTOR);
	ck_assert_uint_eq(rq_write(&e, 3, DATA_GPA, SECTOR, &st), 1);
	ck_assert_uint_eq(virtq_driver_used_idx(&e.v.drv[0]), 1);

	__atomic_store_n(&probe.calls, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&probe.used_at_call, -1, __ATOMIC_RELAXED);
	__atomic_store_n(&probe.drv, &e.v.drv[0], __ATOMIC_RELEASE);
	ck_assert_uint_eq(request(&e, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	ck_assert_int_eq(__atomic_load_n(&probe.calls, __ATOMIC_ACQUIRE), 1);
	/* When the data reached the disk, the guest could not yet see the flush done. */
	ck_assert_int_eq(__atomic_load_n(&probe.used_at_call, __ATOMIC_RELAXED), 1);
	ck_assert_uint_eq(virtq_driver_used_idx(&e.v.drv[0]), 2);
	/* Reads and writes sync nothing. */
	ck_assert_uint_eq(rq_read(&e, 3, DATA_GPA, SECTOR, &st), SECTOR + 1);
	ck_assert_int_eq(__atomic_load_n(&probe.calls, __ATOMIC_ACQUIRE), 1);
	env_destroy(&e);
}
END_TEST

/* Request i of a batch: its own header and status byte, data at gpa (none when len is 0). */
static uint16_t add_slot(struct env *e, unsigned i, uint32_t type, uint64_t sector, uint64_t gpa,
			 uint32_t len, bool dev_writes)
{
	struct virtio_blk_outhdr h = {.type = htole32(type), .sector = htole64(sector)};
	struct virtq_buf b[3];
	unsigned n = 0;

	ck_assert_int_eq(guest_mem_write(&e->v.mem, HDR_GPA + 16 * i, &h, sizeof(h)), 0);
	*virtio_env_ptr(&e->v, STATUS_GPA + i, 1) = NO_STATUS;
	b[n++] = (struct virtq_buf){.gpa = HDR_GPA + 16 * i, .len = 16};
	if (len)
		b[n++] = (struct virtq_buf){.gpa = gpa, .len = len, .writable = dev_writes};
	b[n++] = (struct virtq_buf){.gpa = STATUS_GPA + i, .len = 1, .writable = true};
	return virtio_env_add(&e->v, 0, b, n);
}

/* Waits until the device has used `n` entries in all. */
static void wait_used_idx(struct env *e, uint16_t n)
{
	for (unsigned i = 0; i < WAIT_ROUNDS; i++) {
		if (virtq_driver_used_idx(&e->v.drv[0]) == n)
			return;
		usleep(WAIT_US);
	}
	ck_abort_msg("the device used %u entries, not %u", virtq_driver_used_idx(&e->v.drv[0]), n);
}

/* Flushes queued together are each made durable before their own completion. */
START_TEST(test_flush_each_in_a_batch)
{
	struct env e;

	env_init(&e, &(struct opts){0});
	memset(virtio_env_ptr(&e.v, DATA_GPA, 2 * SECTOR), 0x42, 2 * SECTOR);
	__atomic_store_n(&probe.calls, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&probe.used_at_call, -1, __ATOMIC_RELAXED);
	__atomic_store_n(&probe.drv, &e.v.drv[0], __ATOMIC_RELEASE);
	add_slot(&e, 0, VIRTIO_BLK_T_OUT, 1, DATA_GPA, SECTOR, false);
	add_slot(&e, 1, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	add_slot(&e, 2, VIRTIO_BLK_T_OUT, 2, DATA_GPA + SECTOR, SECTOR, false);
	add_slot(&e, 3, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	virtq_driver_kick(&e.v.drv[0]);
	wait_used_idx(&e, 4);
	for (unsigned i = 0; i < 4; i++)
		ck_assert_uint_eq(*virtio_env_ptr(&e.v, STATUS_GPA + i, 1), VIRTIO_BLK_S_OK);
	/* Two flushes, two syncs; the second one before its own completion was visible. */
	ck_assert_int_eq(__atomic_load_n(&probe.calls, __ATOMIC_ACQUIRE), 2);
	ck_assert_int_eq(__atomic_load_n(&probe.used_at_call, __ATOMIC_RELAXED), 3);
	env_destroy(&e);
}
END_TEST

/*
 * Requests served in one batch end with the interrupt the driver asked for (used_event at
 * the last request), so no completion is left without one, and the driver gets no other.
 */
START_TEST(test_batch_interrupt)
{
	enum { N = 16 };
	uint16_t head[N], id;
	uint32_t len;
	uint8_t st;
	struct env e;

	env_init(&e, &(struct opts){0});
	/* The queue's first interrupt is unconditional: have it now. */
	ck_assert_uint_eq(rq_read(&e, 0, DATA_GPA, SECTOR, &st), SECTOR + 1);
	ck_assert_uint_eq(wait_irq(&e, Q_VECTOR), 1);
	for (unsigned i = 0; i < N; i++)
		head[i] = add_slot(&e, i, VIRTIO_BLK_T_IN, i, DATA_GPA + i * SECTOR, SECTOR, true);
	virtq_driver_set_used_event(&e.v.drv[0], N);
	virtq_driver_kick(&e.v.drv[0]);
	ck_assert_uint_eq(wait_irq(&e, Q_VECTOR), 1);
	ck_assert_uint_eq(virtq_driver_used_idx(&e.v.drv[0]), N + 1);
	/* Completions may come in any order (virtio allows it; io_uring does it). */
	for (unsigned k = 0; k < N; k++) {
		unsigned i = N;

		ck_assert_int_eq(virtq_driver_get_used(&e.v.drv[0], &id, &len), 0);
		for (unsigned j = 0; j < N; j++)
			if (head[j] == id)
				i = j;
		ck_assert_uint_lt(i, N);
		ck_assert_uint_eq(len, SECTOR + 1);
		ck_assert_uint_eq(*virtio_env_ptr(&e.v, STATUS_GPA + i, 1), VIRTIO_BLK_S_OK);
		for (unsigned j = 0; j < SECTOR; j++)
			ck_assert_uint_eq(virtio_env_ptr(&e.v, DATA_GPA + i * SECTOR, SECTOR)[j],
					  pat(i * SECTOR + j, 1));
	}
	env_destroy(&e);
}
END_TEST

/* A notification written to the BAR (no ioeventfd) reaches the worker too. */
START_TEST(test_notify_through_bar)
{
	uint16_t head;
	struct env e;

	env_init(&e, &(struct opts){0});
	head = add_slot(&e, 0, VIRTIO_BLK_T_IN, 3, DATA_GPA, SECTOR, true);
	virtio_env_wr(&e.v, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	ck_assert_uint_eq(wait_used(&e, head), SECTOR + 1);
	ck_assert_uint_eq(*virtio_env_ptr(&e.v, STATUS_GPA, 1), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(*virtio_env_ptr(&e.v, DATA_GPA, 1), pat(3 * SECTOR, 1));
	env_destroy(&e);
}
END_TEST

/* The fd the device keeps open on the image. */
static int image_fd(struct env *e)
{
	struct fd_list l = {0};
	struct stat img = file_stat(e), st;

	ck_assert_int_eq(device_fds(e->v.dev, &l), 0);
	for (unsigned i = 0; i < l.nr; i++)
		if (fstat(l.fds[i], &st) == 0 && st.st_ino == img.st_ino && st.st_dev == img.st_dev)
			return l.fds[i];
	ck_abort_msg("the image fd is not among the device's fds");
	return -1;
}

START_TEST(test_read_only_refuses_writes)
{
	struct virtio_blk_discard_write_zeroes s = seg(0, 8, 0);
	uint8_t st;
	struct env e;

	env_init(&e, &(struct opts){.ro = true});
	ck_assert_int_eq(fcntl(image_fd(&e), F_GETFL) & O_ACCMODE, O_RDONLY);
	memset(virtio_env_ptr(&e.v, DATA_GPA, SECTOR), 0, SECTOR);
	ck_assert_uint_eq(rq_write(&e, 0, DATA_GPA, SECTOR, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_DISCARD, &s, 1, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert(file_is_pattern(&e, 0, DEFAULT_SIZE, 1));
	/* Reading and flushing still work. */
	ck_assert_uint_eq(rq_read(&e, 1, DATA_GPA, SECTOR, &st), SECTOR + 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(*virtio_env_ptr(&e.v, DATA_GPA, 1), pat(SECTOR, 1));
	ck_assert_uint_eq(request(&e, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	env_destroy(&e);
}
END_TEST

START_TEST(test_get_id)
{
	const char full[] = "abcdefghijklmnopqrst";
	uint8_t st, want[20] = "serial-123";
	struct env e;

	env_init(&e, &(struct opts){.id = "serial-123"});
	memset(virtio_env_ptr(&e.v, DATA_GPA, 20), 0xff, 20);
	ck_assert_uint_eq(request(&e, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 20, true, &st), 21);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(virtio_env_ptr(&e.v, DATA_GPA, 20), want, 20);
	/* Too small a buffer for the 20 bytes. */
	ck_assert_uint_eq(request(&e, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 10, true, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	env_destroy(&e);

	env_init(&e, &(struct opts){.id = full});
	ck_assert_uint_eq(request(&e, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 20, true, &st), 21);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(virtio_env_ptr(&e.v, DATA_GPA, 20), full, 20);
	env_destroy(&e);

	env_init(&e, &(struct opts){0});
	memset(virtio_env_ptr(&e.v, DATA_GPA, 20), 0xff, 20);
	ck_assert_uint_eq(request(&e, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 20, true, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_UNSUPP);
	ck_assert(all_byte(virtio_env_ptr(&e.v, DATA_GPA, 20), 20, 0xff));
	env_destroy(&e);
}
END_TEST

START_TEST(test_discard_makes_holes)
{
	const uint64_t size = 1 << 20;
	struct virtio_blk_discard_write_zeroes s[33];
	blkcnt_t before;
	uint8_t st;
	struct env e;

	env_init(&e, &(struct opts){.size = size});
	before = file_stat(&e).st_blocks;
	s[0] = seg(128, 128, 0); /* 64 KiB at 64 KiB */
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_DISCARD, s, 1, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	ck_assert(is_hole(&e, 64 << 10));
	ck_assert_int_lt(file_stat(&e).st_blocks, before);
	ck_assert_int_eq(file_stat(&e).st_size, size);
	memset(virtio_env_ptr(&e.v, DATA_GPA, 64 << 10), 0xaa, 64 << 10);
	ck_assert_uint_eq(rq_read(&e, 128, DATA_GPA, 64 << 10, &st), (64 << 10) + 1);
	ck_assert(all_byte(virtio_env_ptr(&e.v, DATA_GPA, 64 << 10), 64 << 10, 0));
	ck_assert(file_is_pattern(&e, 0, 64 << 10, 1));
	ck_assert(file_is_pattern(&e, 128 << 10, size, 1));

	/* Unmap on a discard and unknown flags are unsupported; nothing happens. */
	s[0] = seg(0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_DISCARD, s, 1, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_UNSUPP);
	s[0] = seg(0, 8, 0x2);
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_DISCARD, s, 1, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_UNSUPP);
	/* Too many segments, a partial segment, one bad segment: nothing is discarded. */
	for (unsigned i = 0; i < ARRAY_SIZE(s); i++)
		s[i] = seg(i, 1, 0);
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_DISCARD, s, 33, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(guest_mem_write(&e.v.mem, SEG_GPA, s, 16), 0);
	ck_assert_uint_eq(request(&e, VIRTIO_BLK_T_DISCARD, 0, SEG_GPA, 24, false, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	s[0] = seg(0, 8, 0);
	s[1] = seg(size / SECTOR - 1, 2, 0);
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_DISCARD, s, 2, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert(file_is_pattern(&e, 0, 64 << 10, 1));
	env_destroy(&e);

	/* Not sparse: DISCARD is not offered, and refused. */
	env_init(&e, &(struct opts){.not_sparse = true});
	s[0] = seg(0, 8, 0);
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_DISCARD, s, 1, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_UNSUPP);
	ck_assert(file_is_pattern(&e, 0, DEFAULT_SIZE, 1));
	env_destroy(&e);
}
END_TEST

START_TEST(test_write_zeroes)
{
	const uint64_t size = 1 << 20;
	struct virtio_blk_discard_write_zeroes s[2];
	uint8_t st;
	struct env e;

	env_init(&e, &(struct opts){.size = size});
	s[0] = seg(1, 3, 0);
	s[1] = seg(256, 128, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP); /* 64 KiB at 128 KiB */
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_WRITE_ZEROES, s, 2, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	memset(virtio_env_ptr(&e.v, DATA_GPA, 5 * SECTOR), 0xaa, 5 * SECTOR);
	ck_assert_uint_eq(rq_read(&e, 0, DATA_GPA, 5 * SECTOR, &st), 5 * SECTOR + 1);
	ck_assert_uint_eq(*virtio_env_ptr(&e.v, DATA_GPA, 1), pat(0, 1));
	ck_assert(all_byte(virtio_env_ptr(&e.v, DATA_GPA + SECTOR, 3 * SECTOR), 3 * SECTOR, 0));
	ck_assert_uint_eq(*virtio_env_ptr(&e.v, DATA_GPA + 4 * SECTOR, 1), pat(4 * SECTOR, 1));
	ck_assert_uint_eq(rq_read(&e, 256, DATA_GPA, 64 << 10, &st), (64 << 10) + 1);
	ck_assert(all_byte(virtio_env_ptr(&e.v, DATA_GPA, 64 << 10), 64 << 10, 0));
	/* Unmap was allowed and the image is sparse: the range is a hole now. */
	ck_assert(is_hole(&e, 128 << 10));
	ck_assert(file_is_pattern(&e, 192 << 10, size, 1));
	ck_assert_int_eq(file_stat(&e).st_size, size);

	s[0] = seg(8, 1, 0x4);
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_WRITE_ZEROES, s, 1, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_UNSUPP);
	ck_assert(file_is_pattern(&e, 8 * SECTOR, 9 * SECTOR, 1));
	env_destroy(&e);
}
END_TEST

START_TEST(test_beyond_capacity)
{
	struct virtio_blk_discard_write_zeroes s;
	uint8_t st;
	struct env e;

	env_init(&e, &(struct opts){0});
	memset(virtio_env_ptr(&e.v, DATA_GPA, 2 * SECTOR), 0xaa, 2 * SECTOR);
	ck_assert_uint_eq(rq_read(&e, 64, DATA_GPA, SECTOR, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(rq_read(&e, 63, DATA_GPA, 2 * SECTOR, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(rq_read(&e, UINT64_MAX, DATA_GPA, SECTOR, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	/* sector * 512 wraps to 0 here: must not read sector 0. */
	ck_assert_uint_eq(rq_read(&e, 1ULL << 55, DATA_GPA, SECTOR, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert(all_byte(virtio_env_ptr(&e.v, DATA_GPA, 2 * SECTOR), 2 * SECTOR, 0xaa));

	ck_assert_uint_eq(rq_write(&e, 64, DATA_GPA, SECTOR, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(rq_write(&e, 1ULL << 55, DATA_GPA, SECTOR, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	s = seg(UINT64_MAX, 1, 0);
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	s = seg(63, UINT32_MAX, 0);
	ck_assert_uint_eq(rq_segments(&e, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(file_stat(&e).st_size, DEFAULT_SIZE);
	ck_assert(file_is_pattern(&e, 0, DEFAULT_SIZE, 1));

	/* The last sector is fine. */
	ck_assert_uint_eq(rq_read(&e, 63, DATA_GPA, SECTOR, &st), SECTOR + 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	env_destroy(&e);
}
END_TEST

START_TEST(test_data_not_sector_multiple)
{
	uint8_t st;
	struct env e;

	env_init(&e, &(struct opts){0});
	memset(virtio_env_ptr(&e.v, DATA_GPA, 1024), 0xaa, 1024);
	ck_assert_uint_eq(rq_read(&e, 0, DATA_GPA, 100, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert(all_byte(virtio_env_ptr(&e.v, DATA_GPA, 1024), 1024, 0xaa));
	ck_assert_uint_eq(rq_write(&e, 0, DATA_GPA, 513, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert(file_is_pattern(&e, 0, DEFAULT_SIZE, 1));
	env_destroy(&e);
}
END_TEST

START_TEST(test_malformed_chains)
{
	const struct virtq_buf no_status[] = {
		{.gpa = HDR_GPA, .len = 16},
		{.gpa = DATA_GPA, .len = SECTOR},
	};
	const struct virtq_buf short_hdr[] = {
		{.gpa = HDR_GPA, .len = 8},
		{.gpa = STATUS_GPA, .len = 1, .writable = true},
	};
	const struct virtq_buf no_hdr[] = {
		{.gpa = STATUS_GPA, .len = 1, .writable = true},
	};
	const struct virtq_buf readable_after_writable[] = {
		{.gpa = HDR_GPA, .len = 16},
		{.gpa = STATUS_GPA, .len = 1, .writable = true},
		{.gpa = DATA_GPA, .len = SECTOR},
	};
	uint8_t st;
	struct env e;

	env_init(&e, &(struct opts){0});
	put_hdr(&e, VIRTIO_BLK_T_OUT, 0);
	memset(virtio_env_ptr(&e.v, DATA_GPA, SECTOR), 0, SECTOR);
	ck_assert_uint_eq(submit(&e, no_status, ARRAY_SIZE(no_status), &st), 0);
	ck_assert_uint_eq(st, NO_STATUS);
	ck_assert_uint_eq(submit(&e, short_hdr, ARRAY_SIZE(short_hdr), &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(submit(&e, no_hdr, ARRAY_SIZE(no_hdr), &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(
		submit(&e, readable_after_writable, ARRAY_SIZE(readable_after_writable), &st), 0);
	ck_assert_uint_eq(st, NO_STATUS);
	ck_assert(file_is_pattern(&e, 0, DEFAULT_SIZE, 1));

	/* Types the device does not implement. */
	ck_assert_uint_eq(request(&e, 99, 0, DATA_GPA, SECTOR, true, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(request(&e, VIRTIO_BLK_T_SECURE_ERASE, 0, SEG_GPA, 16, false, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_UNSUPP);

	/* The device goes on. */
	ck_assert_uint_eq(rq_read(&e, 0, DATA_GPA, SECTOR, &st), SECTOR + 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(virtio_env_status(&e.v), S_LIVE);
	env_destroy(&e);
}
END_TEST

START_TEST(test_odd_and_empty_images)
{
	uint8_t st;
	struct env e;

	/* 1000 bytes: one sector; the 488-byte tail is not visible. */
	env_init(&e, &(struct opts){.size = 1000});
	ck_assert_uint_eq(cfg_rd(&e, 0, 8), 1);
	ck_assert_uint_eq(rq_read(&e, 0, DATA_GPA, SECTOR, &st), SECTOR + 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(*virtio_env_ptr(&e.v, DATA_GPA + SECTOR - 1, 1), pat(SECTOR - 1, 1));
	ck_assert_uint_eq(rq_read(&e, 1, DATA_GPA, SECTOR, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	env_destroy(&e);

	/* An empty image is a disk of capacity 0, as crosvm has it. */
	ck_assert_int_eq(env_try(&e, &(struct opts){.size = 0}), 0);
	init(&e, FEATURES);
	ck_assert_uint_eq(cfg_rd(&e, 0, 8), 0);
	ck_assert_uint_eq(rq_read(&e, 0, DATA_GPA, SECTOR, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	env_destroy(&e);
}
END_TEST

START_TEST(test_resize)
{
	struct reply r;
	uint8_t st;
	struct env e;

	env_init(&e, &(struct opts){0});
	virtio_env_count(e.v.irq.vector_fds[CFG_VECTOR]);
	ck_assert_str_eq(resize_to(&e, 65536, &r), "{\"ok\":true}");
	ck_assert_uint_eq(cfg_rd(&e, 0, 8), 128);
	ck_assert_int_eq(file_stat(&e).st_size, 65536);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[CFG_VECTOR]), 1);
	memset(virtio_env_ptr(&e.v, DATA_GPA, SECTOR), 0xaa, SECTOR);
	ck_assert_uint_eq(rq_read(&e, 127, DATA_GPA, SECTOR, &st), SECTOR + 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	ck_assert(all_byte(virtio_env_ptr(&e.v, DATA_GPA, SECTOR), SECTOR, 0));

	/* Shrinking. */
	ck_assert_str_eq(resize_to(&e, 16384, &r), "{\"ok\":true}");
	ck_assert_uint_eq(cfg_rd(&e, 0, 8), 32);
	ck_assert_int_eq(file_stat(&e).st_size, 16384);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[CFG_VECTOR]), 1);
	ck_assert_uint_eq(rq_read(&e, 32, DATA_GPA, SECTOR, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(rq_read(&e, 31, DATA_GPA, SECTOR, &st), SECTOR + 1);
	ck_assert_uint_eq(*virtio_env_ptr(&e.v, DATA_GPA, 1), pat(31 * SECTOR, 1));

	/* Refusals change nothing. */
	ck_assert_ptr_nonnull(strstr(resize_to(&e, 1000, &r), "multiple of 512"));
	ck_assert_ptr_nonnull(strstr(resize_to(&e, UINT64_MAX - 511, &r), "\"ok\":false"));
	ck_assert_int_eq(device_command(e.v.dev,
					&(struct dev_cmd){.op = DEV_CMD_BALLOON_TARGET, .arg = 512},
					on_reply, &r),
			 -EOPNOTSUPP);
	ck_assert_uint_eq(cfg_rd(&e, 0, 8), 32);
	ck_assert_int_eq(file_stat(&e).st_size, 16384);
	ck_assert_uint_eq(virtio_env_count(e.v.irq.vector_fds[CFG_VECTOR]), 0);
	env_destroy(&e);

	env_init(&e, &(struct opts){.ro = true});
	ck_assert_str_eq(resize_to(&e, 65536, &r),
			 "{\"ok\":false,\"error\":\"disk is read-only\"}");
	ck_assert_uint_eq(cfg_rd(&e, 0, 8), 64);
	ck_assert_int_eq(file_stat(&e).st_size, DEFAULT_SIZE);
	env_destroy(&e);
}
END_TEST

START_TEST(test_lock_conflict)
{
	struct disk_config c;
	const struct virtio_dev_ops *ops;
	void *dev;
	struct env e;

	env_create(&e, &(struct opts){0});
	c = e.cfg;
	ck_assert_int_eq(virtio_blk_create(&c, &e.v.lg, &ops, &dev), -EBUSY);
	c.ro = true;
	ck_assert_int_eq(virtio_blk_create(&c, &e.v.lg, &ops, &dev), -EBUSY);
	c.ro = false;
	c.lock = false;
	ck_assert_int_eq(virtio_blk_create(&c, &e.v.lg, &ops, &dev), 0);
	ops->destroy(dev);
	env_destroy(&e);

	/* Two read-only users share the image. */
	env_create(&e, &(struct opts){.ro = true});
	c = e.cfg;
	ck_assert_int_eq(virtio_blk_create(&c, &e.v.lg, &ops, &dev), 0);
	ops->destroy(dev);
	env_destroy(&e);
}
END_TEST

START_TEST(test_direct_io)
{
	const struct virtq_buf split[] = {
		{.gpa = HDR_GPA, .len = 16},
		{.gpa = DATA_GPA + 3, .len = 100, .writable = true},
		{.gpa = DATA_GPA + 0x1001, .len = 1948, .writable = true},
		{.gpa = STATUS_GPA, .len = 1, .writable = true},
	};
	uint8_t st, buf[4096];
	struct env e;
	int ret;

	ret = env_try(&e, &(struct opts){.size = DEFAULT_SIZE, .direct = true});
	if (ret == -EINVAL) {
		fprintf(stderr, "test_direct_io: skipped, %s refuses O_DIRECT\n", TEST_BUILD_DIR);
		return;
	}
	ck_assert_int_eq(ret, 0);
	init(&e, FEATURES);
	ck_assert_int_eq(fcntl(image_fd(&e), F_GETFL) & O_DIRECT, O_DIRECT);

	/* Page-aligned guest buffer. */
	memset(virtio_env_ptr(&e.v, DATA_GPA, 4096), 0x33, 4096);
	ck_assert_uint_eq(rq_write(&e, 8, DATA_GPA, 4096, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	file_read(&e, buf, 4096, 8 * SECTOR);
	ck_assert(all_byte(buf, 4096, 0x33));

	/* Unaligned guest buffers: the bounce path. */
	for (unsigned i = 0; i < SECTOR; i++)
		virtio_env_ptr(&e.v, DATA_GPA + 5, SECTOR)[i] = (uint8_t)(i + 1);
	ck_assert_uint_eq(rq_write(&e, 2, DATA_GPA + 5, SECTOR, &st), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	file_read(&e, buf, SECTOR, 2 * SECTOR);
	ck_assert_mem_eq(buf, virtio_env_ptr(&e.v, DATA_GPA + 5, SECTOR), SECTOR);

	put_hdr(&e, VIRTIO_BLK_T_IN, 1);
	ck_assert_uint_eq(submit(&e, split, ARRAY_SIZE(split), &st), 2049);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	file_read(&e, buf, 2048, SECTOR);
	ck_assert_mem_eq(virtio_env_ptr(&e.v, DATA_GPA + 3, 100), buf, 100);
	ck_assert_mem_eq(virtio_env_ptr(&e.v, DATA_GPA + 0x1001, 1948), buf + 100, 1948);
	env_destroy(&e);
}
END_TEST

static bool is_transport_fd(struct env *e, int fd)
{
	if (fd == e->v.irq.intx_fd || fd == e->v.irq.intx_resample_fd)
		return true;
	for (unsigned i = 0; i < e->v.desc.nr_ioevents; i++)
		if (fd == e->v.desc.ioevents[i].fd)
			return true;
	for (unsigned i = 0; i < e->v.irq.nr_vectors; i++)
		if (fd == e->v.irq.vector_fds[i])
			return true;
	return false;
}

/*
 * The sandbox keeps only the listed fds: the image, the queue's kick eventfd (the worker
 * waits on it), the worker's wake eventfd and, on io_uring, the ring must be.
 */
START_TEST(test_fds)
{
	struct fd_list l = {0};
	unsigned eventfds = 0, rings = 0;
	char link[PATH_MAX], proc[64];
	bool kick = false;
	struct env e;
	int img;

	env_create(&e, &(struct opts){0});
	img = image_fd(&e);
	ck_assert_int_eq(device_fds(e.v.dev, &l), 0);
	for (unsigned i = 0; i < l.nr; i++) {
		ssize_t n;

		kick |= l.fds[i] == e.v.desc.ioevents[0].fd;
		if (l.fds[i] == img || is_transport_fd(&e, l.fds[i]))
			continue;
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", l.fds[i]);
		n = readlink(proc, link, sizeof(link) - 1);
		ck_assert_int_gt(n, 0);
		link[n] = 0;
		if (strcmp(link, "anon_inode:[io_uring]") == 0) {
			rings++;
			continue;
		}
		ck_assert_str_eq(link, "anon_inode:[eventfd]");
		eventfds++;
	}
	ck_assert(kick);
	ck_assert_uint_eq(eventfds, 1);
	ck_assert_uint_eq(rings, engine == DISK_ENGINE_URING ? 1 : 0);
	env_destroy(&e);
}
END_TEST

START_TEST(test_interrupt_suppression)
{
	uint8_t st;
	struct env e;

	env_create(&e, &(struct opts){0});
	init(&e, BIT(VIRTIO_F_VERSION_1));
	virtio_env_count(e.v.irq.vector_fds[Q_VECTOR]);
	virtq_driver_set_no_interrupt(&e.v.drv[0], true);
	ck_assert_uint_eq(rq_read(&e, 0, DATA_GPA, SECTOR, &st), SECTOR + 1);
	virtq_driver_set_no_interrupt(&e.v.drv[0], false);
	ck_assert_uint_eq(rq_read(&e, 1, DATA_GPA, SECTOR, &st), SECTOR + 1);
	/* The worker completes in order, so the first request's interrupt would be here. */
	ck_assert_uint_eq(wait_irq(&e, Q_VECTOR), 1);
	env_destroy(&e);
}
END_TEST

START_TEST(test_reset_and_broken_ring)
{
	uint8_t st;
	struct env e;

	env_init(&e, &(struct opts){0});
	ck_assert_uint_eq(rq_read(&e, 0, DATA_GPA, SECTOR, &st), SECTOR + 1);
	/* The driver resets and starts again: the worker is replaced. */
	init(&e, FEATURES);
	ck_assert_uint_eq(rq_read(&e, 1, DATA_GPA, SECTOR, &st), SECTOR + 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);

	/* The available index jumps by more than the ring holds. */
	virtio_env_count(e.v.irq.vector_fds[CFG_VECTOR]);
	virtq_driver_set_avail_idx(&e.v.drv[0], QSIZE + 5);
	ck_assert_int_eq(eventfd_signal(e.v.drv[0].kick_fd), 0);
	virtio_env_run_loop(&e.v);
	ck_assert_uint_eq(wait_irq(&e, CFG_VECTOR), 1);
	ck_assert_uint_eq(virtio_env_status(&e.v), S_LIVE | VIRTIO_CONFIG_S_NEEDS_RESET);

	init(&e, FEATURES);
	ck_assert_uint_eq(rq_read(&e, 2, DATA_GPA, SECTOR, &st), SECTOR + 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	env_destroy(&e);
}
END_TEST

/* ---- several queues, many requests in flight ---- */

/* Where request i of the many-request tests keeps its header and status. */
#define MANY_HDR_GPA	0x300000ULL
#define MANY_STATUS_GPA 0x310000ULL

/* Request i on queue q: a read of one sector into its own 512 bytes of the data area. */
static uint16_t add_read(struct env *e, unsigned q, unsigned i, uint64_t sector)
{
	struct virtio_blk_outhdr h = {.type = htole32(VIRTIO_BLK_T_IN), .sector = htole64(sector)};
	struct virtq_buf b[3] = {
		{.gpa = MANY_HDR_GPA + 16 * i, .len = 16},
		{.gpa = DATA_GPA + (uint64_t)i * SECTOR, .len = SECTOR, .writable = true},
		{.gpa = MANY_STATUS_GPA + i, .len = 1, .writable = true},
	};

	ck_assert_int_eq(guest_mem_write(&e->v.mem, MANY_HDR_GPA + 16 * i, &h, sizeof(h)), 0);
	*virtio_env_ptr(&e->v, MANY_STATUS_GPA + i, 1) = NO_STATUS;
	memset(virtio_env_ptr(&e->v, DATA_GPA + (uint64_t)i * SECTOR, SECTOR), 0, SECTOR);
	return virtio_env_add(&e->v, q, b, 3);
}

/* Collects n used entries of queue q into used[head] (their lengths). */
static void collect(struct env *e, unsigned q, unsigned n, int64_t *used)
{
	unsigned got = 0;

	for (unsigned r = 0; r < WAIT_ROUNDS && got < n; r++) {
		uint16_t id;
		uint32_t len;

		virtio_env_run_loop(&e->v);
		while (got < n && virtq_driver_get_used(&e->v.drv[q], &id, &len) == 0) {
			ck_assert_int_lt(id, QSIZE);
			ck_assert_int_eq(used[id], -1);
			used[id] = len;
			got++;
		}
		if (got < n)
			usleep(WAIT_US);
	}
	ck_assert_msg(got == n, "queue %u: %u of %u requests completed", q, got, n);
}

/*
 * A driver using several queues, as Linux does with F_MQ: each request completes on the
 * queue it was posted to, and each queue interrupts on its own vector.
 */
START_TEST(test_several_queues)
{
	enum { NQ = 4, PER_Q = 8 };
	uint16_t head[NQ][PER_Q];
	struct env e;

	env_create(&e, &(struct opts){.num_queues = NQ, .params = &mq_params});
	virtio_env_init(&e.v, FEATURES | BIT(VIRTIO_BLK_F_MQ), NQ);
	for (unsigned q = 0; q < NQ; q++)
		virtio_env_count(e.v.irq.vector_fds[VIRTIO_ENV_Q_VECTOR(q)]);
	for (unsigned q = 0; q < NQ; q++)
		for (unsigned k = 0; k < PER_Q; k++)
			head[q][k] = add_read(&e, q, q * PER_Q + k, q * PER_Q + k);
	for (unsigned q = 0; q < NQ; q++)
		virtq_driver_kick(&e.v.drv[q]);
	for (unsigned q = 0; q < NQ; q++) {
		int64_t used[QSIZE];

		for (unsigned i = 0; i < QSIZE; i++)
			used[i] = -1;
		collect(&e, q, PER_Q, used);
		for (unsigned k = 0; k < PER_Q; k++) {
			unsigned i = q * PER_Q + k;

			ck_assert_int_eq(used[head[q][k]], SECTOR + 1);
			ck_assert_uint_eq(*virtio_env_ptr(&e.v, MANY_STATUS_GPA + i, 1),
					  VIRTIO_BLK_S_OK);
			ck_assert(file_is_pattern(&e, (uint64_t)i * SECTOR,
						  (uint64_t)i * SECTOR + 1, 1));
			ck_assert_uint_eq(*virtio_env_ptr(&e.v, DATA_GPA + (uint64_t)i * SECTOR, 1),
					  pat((uint64_t)i * SECTOR, 1));
		}
		ck_assert_uint_ge(wait_irq(&e, VIRTIO_ENV_Q_VECTOR(q)), 1);
	}
	ck_assert_uint_eq(virtio_env_status(&e.v), S_LIVE);
	env_destroy(&e);
}
END_TEST

/*
 * More requests posted at once than the device serves at once (VIRTIO_BLK_MAX_INFLIGHT):
 * the rest wait in the rings and are served as slots free up, on every queue; all complete.
 */
START_TEST(test_more_requests_than_slots)
{
	enum { NQ = 16, PER_Q = QSIZE / 3 }; /* three descriptors a request */
	uint16_t head[NQ][PER_Q];
	struct env e;

	ck_assert_uint_gt(NQ * PER_Q, VIRTIO_BLK_MAX_INFLIGHT);
	env_create(&e, &(struct opts){.num_queues = NQ, .params = &mq_params});
	virtio_env_init(&e.v, FEATURES | BIT(VIRTIO_BLK_F_MQ), NQ);
	for (unsigned q = 0; q < NQ; q++)
		for (unsigned k = 0; k < PER_Q; k++)
			head[q][k] = add_read(&e, q, q * PER_Q + k, (q * PER_Q + k) % 64);
	for (unsigned q = 0; q < NQ; q++)
		virtq_driver_kick(&e.v.drv[q]);
	for (unsigned q = 0; q < NQ; q++) {
		int64_t used[QSIZE];

		for (unsigned i = 0; i < QSIZE; i++)
			used[i] = -1;
		collect(&e, q, PER_Q, used);
		for (unsigned k = 0; k < PER_Q; k++) {
			unsigned i = q * PER_Q + k;

			ck_assert_int_eq(used[head[q][k]], SECTOR + 1);
			ck_assert_uint_eq(*virtio_env_ptr(&e.v, MANY_STATUS_GPA + i, 1),
					  VIRTIO_BLK_S_OK);
			ck_assert_uint_eq(*virtio_env_ptr(&e.v, DATA_GPA + (uint64_t)i * SECTOR, 1),
					  pat((uint64_t)(i % 64) * SECTOR, 1));
		}
	}
	ck_assert_uint_eq(virtio_env_status(&e.v), S_LIVE);
	env_destroy(&e);
}
END_TEST

/*
 * A FLUSH posted behind writes in the same batch completes after every one of them, whatever
 * order the back end finishes them in, and their data is in the image by then.
 */
START_TEST(test_flush_after_the_writes_it_covers)
{
	enum { N = 8 };
	uint16_t flush, head[N], id;
	bool seen[N] = {0};
	uint32_t len;
	struct env e;

	env_init(&e, &(struct opts){0});
	for (unsigned i = 0; i < N; i++) {
		memset(virtio_env_ptr(&e.v, DATA_GPA + i * SECTOR, SECTOR), 0x60 + i, SECTOR);
		head[i] = add_slot(&e, i, VIRTIO_BLK_T_OUT, 8 + i, DATA_GPA + i * SECTOR, SECTOR,
				   false);
	}
	flush = add_slot(&e, N, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	virtq_driver_kick(&e.v.drv[0]);
	wait_used_idx(&e, N + 1);
	for (unsigned k = 0; k < N + 1; k++) {
		ck_assert_int_eq(virtq_driver_get_used(&e.v.drv[0], &id, &len), 0);
		ck_assert_uint_eq(len, 1);
		if (k == N) {
			ck_assert_uint_eq(id, flush);
			break;
		}
		for (unsigned i = 0; i < N; i++)
			if (head[i] == id)
				seen[i] = true;
	}
	for (unsigned i = 0; i < N; i++) {
		uint8_t buf[SECTOR];

		ck_assert(seen[i]);
		ck_assert_uint_eq(*virtio_env_ptr(&e.v, STATUS_GPA + i, 1), VIRTIO_BLK_S_OK);
		file_read(&e, buf, SECTOR, (8 + i) * SECTOR);
		ck_assert(all_byte(buf, SECTOR, 0x60 + i));
	}
	env_destroy(&e);
}
END_TEST

/* Posts n writes of one sector each (sector 4 + i) and kicks, without waiting. */
static void post_writes(struct env *e, unsigned n, uint8_t fill)
{
	for (unsigned i = 0; i < n; i++) {
		memset(virtio_env_ptr(&e->v, DATA_GPA + i * SECTOR, SECTOR), fill, SECTOR);
		add_slot(e, i, VIRTIO_BLK_T_OUT, 4 + i, DATA_GPA + i * SECTOR, SECTOR, false);
	}
	virtq_driver_kick(&e->v.drv[0]);
}

/*
 * The driver resets while requests are in flight: the reset waits for them to finish on the
 * disk, writes no used entry after it, and the device works again after the next init.
 */
START_TEST(test_reset_with_requests_in_flight)
{
	enum { N = 16 };
	uint8_t st;
	struct env e;

	env_init(&e, &(struct opts){0});
	for (unsigned round = 0; round < 4; round++) {
		uint16_t used_before;

		post_writes(&e, N, 0x30 + round);
		virtio_env_wr(&e.v, VIRTIO_PCI_COMMON_STATUS, 1, 0);
		ck_assert_uint_eq(virtio_env_status(&e.v), 0);
		used_before = virtq_driver_used_idx(&e.v.drv[0]);
		usleep(10000);
		/* Nothing is written to the rings after the reset returned. */
		ck_assert_uint_eq(virtq_driver_used_idx(&e.v.drv[0]), used_before);
		init(&e, FEATURES);
		ck_assert_uint_eq(rq_read(&e, 4, DATA_GPA + 0x10000, SECTOR, &st), SECTOR + 1);
		ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	}
	ck_assert_uint_eq(virtio_env_status(&e.v), S_LIVE);
	env_destroy(&e);
}
END_TEST

/* A resize while requests are in flight waits for them; they all complete, then it applies. */
START_TEST(test_resize_with_requests_in_flight)
{
	enum { N = 16 };
	struct reply r;
	struct env e;

	env_init(&e, &(struct opts){0});
	post_writes(&e, N, 0x5c);
	ck_assert_str_eq(resize_to(&e, 65536, &r), "{\"ok\":true}");
	wait_used_idx(&e, N);
	for (unsigned i = 0; i < N; i++)
		ck_assert_uint_eq(*virtio_env_ptr(&e.v, STATUS_GPA + i, 1), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(cfg_rd(&e, 0, 8), 128);
	ck_assert_int_eq(file_stat(&e).st_size, 65536);
	for (unsigned i = 0; i < N; i++) {
		uint8_t buf[SECTOR];

		file_read(&e, buf, SECTOR, (4 + i) * SECTOR);
		ck_assert(all_byte(buf, SECTOR, 0x5c));
	}
	env_destroy(&e);
}
END_TEST

/* ---- the io_uring back end's confinement ---- */

static struct disk *open_uring(struct env *e)
{
	struct disk_config c = e->cfg;
	struct disk *d;

	c.engine = DISK_ENGINE_URING;
	c.lock = false; /* the device holds the image's lock */
	ck_assert_int_eq(disk_open(&c, &e->v.lg, &d), 0);
	ck_assert_str_eq(d->engine, "io_uring");
	return d;
}

/*
 * The ring refuses, without running them, an operation it was not given (OPENAT, WRITE), a
 * file outside its table (a plain fd), and takes what the device uses (WRITEV on the image).
 */
START_TEST(test_ring_refuses_what_it_was_not_given)
{
	char other[PATH_MAX], created[PATH_MAX];
	uint8_t buf[SECTOR], before[SECTOR];
	struct iovec iov = {.iov_base = buf, .iov_len = SECTOR};
	struct io_uring_sqe sqe;
	struct disk *d;
	struct env e;
	int fd;

	env_create(&e, &(struct opts){0});
	d = open_uring(&e);
	memset(buf, 0xee, sizeof(buf));
	file_read(&e, before, SECTOR, 0);

	/* An operation outside the list: no file appears. */
	snprintf(created, sizeof(created), "%s/virtio-blk-ring-openat", TEST_BUILD_DIR);
	unlink(created);
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_openat(&sqe, AT_FDCWD, created, O_CREAT | O_RDWR, 0600);
	ck_assert_int_eq(disk_uring_test_sqe(d, &sqe), -EACCES);
	ck_assert_int_eq(access(created, F_OK), -1);

	/* WRITE is not WRITEV: refused even on the image. */
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_write(&sqe, 0, buf, SECTOR, 0);
	sqe.flags |= IOSQE_FIXED_FILE;
	ck_assert_int_eq(disk_uring_test_sqe(d, &sqe), -EACCES);
	ck_assert(file_is_pattern(&e, 0, SECTOR, 1));

	/* A file that is not the image, by its plain fd: refused, and it is left as it was. */
	make_image(other, sizeof(other), SECTOR, 7);
	fd = open(other, O_RDWR);
	ck_assert_int_ge(fd, 0);
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_writev(&sqe, fd, &iov, 1, 0);
	ck_assert_int_eq(disk_uring_test_sqe(d, &sqe), -EACCES);
	ck_assert_int_eq(pread_full(fd, before, SECTOR, 0), 0);
	for (unsigned i = 0; i < SECTOR; i++)
		ck_assert_uint_eq(before[i], pat(i, 7));
	close(fd);
	unlink(other);

	/* What the device does: a vectored write to the image, as its fixed file. */
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_writev(&sqe, 0, &iov, 1, 0);
	sqe.flags |= IOSQE_FIXED_FILE;
	ck_assert_int_eq(disk_uring_test_sqe(d, &sqe), SECTOR);
	file_read(&e, before, SECTOR, 0);
	ck_assert(all_byte(before, SECTOR, 0xee));
	disk_close(d);
	env_destroy(&e);
}
END_TEST

START_TEST(test_bad_block_size)
{
	struct disk_config c = {.path = "/nonexistent", .lock = true, .block_size = 1000};
	const struct virtio_dev_ops *ops;
	struct logger lg;
	void *dev;

	log_init(&lg);
	lg.level = LOG_LVL_OFF;
	ck_assert_int_eq(virtio_blk_create(&c, &lg, &ops, &dev), -EINVAL);
	c.block_size = 256;
	ck_assert_int_eq(virtio_blk_create(&c, &lg, &ops, &dev), -EINVAL);
	c.block_size = 512;
	ck_assert_int_eq(virtio_blk_create(&c, &lg, &ops, &dev), -ENOENT);
}
END_TEST

/* The tests every back end must pass. */
static void add_common(TCase *tc)
{
	tcase_add_test(tc, test_identity_and_config);
	tcase_add_test(tc, test_feature_variants);
	tcase_add_test(tc, test_read_write_every_sector);
	tcase_add_test(tc, test_flush_after_the_writes_it_covers);
	tcase_add_test(tc, test_batch_interrupt);
	tcase_add_test(tc, test_notify_through_bar);
	tcase_add_test(tc, test_read_only_refuses_writes);
	tcase_add_test(tc, test_get_id);
	tcase_add_test(tc, test_discard_makes_holes);
	tcase_add_test(tc, test_write_zeroes);
	tcase_add_test(tc, test_beyond_capacity);
	tcase_add_test(tc, test_data_not_sector_multiple);
	tcase_add_test(tc, test_malformed_chains);
	tcase_add_test(tc, test_odd_and_empty_images);
	tcase_add_test(tc, test_resize);
	tcase_add_test(tc, test_lock_conflict);
	tcase_add_test(tc, test_direct_io);
	tcase_add_test(tc, test_fds);
	tcase_add_test(tc, test_interrupt_suppression);
	tcase_add_test(tc, test_reset_and_broken_ring);
	tcase_add_test(tc, test_bad_block_size);
	tcase_add_test(tc, test_several_queues);
	tcase_add_test(tc, test_more_requests_than_slots);
	tcase_add_test(tc, test_reset_with_requests_in_flight);
	tcase_add_test(tc, test_resize_with_requests_in_flight);
}

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_blk");
	TCase *sync = tcase_create("sync");
	TCase *uring = tcase_create("uring");

	tcase_add_checked_fixture(sync, use_sync, NULL);
	add_common(sync);
	/* The synchronous back end calls fdatasync itself, where this suite can watch it. */
	tcase_add_test(sync, test_flush_completes_after_fdatasync);
	tcase_add_test(sync, test_flush_each_in_a_batch);
	suite_add_tcase(s, sync);

	tcase_add_checked_fixture(uring, use_uring, NULL);
	add_common(uring);
	tcase_add_test(uring, test_ring_refuses_what_it_was_not_given);
	suite_add_tcase(s, uring);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
