/*
 * virtio-blk throughput against the raw file it serves, on this machine.
 *
 * The device is built as the VMM builds it: virtio_blk_create behind the virtio-pci
 * transport, its kicks served by an event loop on its own thread (ioeventfd -> loop ->
 * worker eventfd), the worker doing the I/O and raising the queue's MSI-X eventfd. This
 * thread plays the Linux driver with virtq_driver: it keeps `qd` requests in flight,
 * kicks as the ring asks, sleeps on the interrupt eventfd and re-arms used_event as Linux
 * does with EVENT_IDX. The raw figures are one thread doing pread/pwrite back to back on
 * the same file, the best a single synchronous I/O thread gets; no thresholds, a report.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "core/config.h"
#include "core/device.h"
#include "core/guest_mem.h"
#include "core/log.h"
#include "core/pci.h"
#include "test/unit/virtq_driver.h"
#include "virtio/blk.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"

#define RAM_SIZE   (64ULL << 20)
#define RING_GPA   0x10000ULL
#define SLOT_GPA   0x100000ULL /* per request slot: header at +0, status at +32 */
#define SLOT_SIZE  64ULL
#define DATA_GPA   0x1000000ULL /* per slot data, MAX_BS apart */
#define MAX_QD	   32u
#define MAX_BS	   (1u << 20)
#define QSIZE	   256
#define CFG_VECTOR 0
#define Q_VECTOR   1
#define BIT(n)	   (1ULL << (n))
#define STALL_MS   5000

struct options {
	const char *file;
	uint64_t size_mib;
	double seconds;
	bool direct;
	bool keep;
};

struct pattern {
	const char *name;
	bool write;
	bool random;
	uint32_t bs;
	unsigned qd;
};

struct result {
	uint64_t ops;
	double secs;
	double cpu; /* process CPU seconds (all threads) */
};

struct bench {
	struct options o;
	uint64_t size;
	struct logger lg;
	struct guest_mem mem;
	struct event_base *eb;
	pthread_t loop;
	bool loop_running;
	struct pci_irq_fds irq;
	struct device *dev;
	struct pci_dev_desc desc;
	struct virtq_driver drv;
	uint64_t rng;
	uint64_t seq;
	uint64_t slot_off[QSIZE]; /* head -> slot index */
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct rusage r;

	getrusage(RUSAGE_SELF, &r);
	return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
	       (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static uint64_t next_rand(struct bench *b)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return b->rng;
}

static uint64_t next_offset(struct bench *b, const struct pattern *p)
{
	uint64_t blocks = b->size / p->bs, off;

	if (p->random)
		return (next_rand(b) % blocks) * p->bs;
	off = b->seq;
	b->seq = (b->seq + p->bs) % (blocks * p->bs);
	return off;
}

/* ---- machine ---- */

static void cpu_model(char *out, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(out, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && colon) {
			snprintf(out, len, "%s", colon + 2);
			out[strcspn(out, "\n")] = 0;
			break;
		}
	}
	fclose(f);
}

static const char *fs_name(long type)
{
	static const struct {
		long magic;
		const char *name;
	} fs[] = {
		{0xEF53, "ext2/3/4"},  {0x58465342, "xfs"},	  {0x9123683E, "btrfs"},
		{0x01021994, "tmpfs"}, {0x794C7630, "overlayfs"}, {0x6969, "nfs"},
		{0x65735546, "fuse"},  {0xF2F52010, "f2fs"},	  {0x2FC12FC1, "zfs"},
		{0x858458F6, "ramfs"}, {0x4d44, "vfat"},
	};

	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
		if (fs[i].magic == type)
			return fs[i].name;
	return "unknown";
}

static void print_machine(struct bench *b)
{
	struct utsname u;
	struct statfs sf;
	char cpu[128];

	cpu_model(cpu, sizeof(cpu));
	uname(&u);
	printf("machine:  %s, %ld CPUs online\n", cpu, sysconf(_SC_NPROCESSORS_ONLN));
	printf("kernel:   %s %s %s\n", u.sysname, u.release, u.machine);
	if (statfs(b->o.file, &sf) == 0)
		printf("file:     %s, %llu MiB on %s (magic 0x%lx), %s\n", b->o.file,
		       (unsigned long long)(b->size >> 20), fs_name((long)sf.f_type),
		       (unsigned long)sf.f_type,
		       b->o.direct ? "O_DIRECT" : "buffered (page cache)");
	printf("runs:     %.1f s each; device = virtio-blk through the virtio-pci transport "
	       "(ioeventfd kick, event loop thread, worker thread, MSI-X eventfd),\n"
	       "          driven by a host thread playing the guest driver; raw = one thread, "
	       "pread/pwrite back to back\n\n",
	       b->o.seconds);
}

/* ---- the image ---- */

static int prepare_file(struct bench *b)
{
	uint8_t *buf = malloc(MAX_BS);
	struct stat st;
	int fd, ret = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(b->o.file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "bench_block: cannot create %s: %s\n", b->o.file, strerror(errno));
		goto out;
	}
	/* Real data everywhere, so reads hit allocated blocks rather than holes. */
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == b->size &&
	    (uint64_t)st.st_blocks * 512 >= b->size)
		goto out_close;
	printf("writing %llu MiB of data to %s ...\n", (unsigned long long)(b->size >> 20),
	       b->o.file);
	for (uint64_t off = 0; off < b->size && !ret; off += MAX_BS) {
		for (uint32_t i = 0; i < MAX_BS; i += 8)
			*(uint64_t *)(buf + i) = next_rand(b);
		ret = pwrite_full(fd, buf, MAX_BS, (off_t)off);
	}
	if (!ret && (ftruncate(fd, (off_t)b->size) || fsync(fd)))
		ret = -errno;
	if (ret)
		fprintf(stderr, "bench_block: cannot fill %s: %s\n", b->o.file, strerror(-ret));
out_close:
	close(fd);
out:
	free(buf);
	return ret;
}

/* ---- the device ---- */

static uint64_t rd(struct bench *b, uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	(void)device_io(b->dev, VIRTIO_PCI_BAR, off, &v, len, false);
	return v;
}

static void wr(struct bench *b, uint64_t off, uint32_t len, uint64_t v)
{
	(void)device_io(b->dev, VIRTIO_PCI_BAR, off, &v, len, true);
}

static void *loop_thread(void *arg)
{
	struct bench *b = arg;

	event_base_dispatch(b->eb);
	return NULL;
}

static int new_eventfd(int *fd)
{
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return *fd < 0 ? -errno : 0;
}

/* Linux's probe order, with EVENT_IDX as Linux negotiates it. */
static int driver_init(struct bench *b)
{
	uint64_t features = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX) |
			    BIT(VIRTIO_BLK_F_FLUSH) | BIT(VIRTIO_BLK_F_SEG_MAX);
	int ret;

	wr(b, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	wr(b, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(b, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(b, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	wr(b, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)features);
	wr(b, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	wr(b, VIRTIO_PCI_COMMON_GF, 4, features >> 32);
	wr(b, VIRTIO_PCI_COMMON_STATUS, 1,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(rd(b, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -EPROTO;
	wr(b, VIRTIO_PCI_COMMON_MSIX, 2, CFG_VECTOR);
	ret = virtq_driver_init(&b->drv, &b->mem, QSIZE, RING_GPA, 0, 0, true);
	if (ret)
		return ret;
	b->drv.kick_fd = b->desc.ioevents[0].fd;
	wr(b, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	wr(b, VIRTIO_PCI_COMMON_Q_SIZE, 2, QSIZE);
	wr(b, VIRTIO_PCI_COMMON_Q_MSIX, 2, Q_VECTOR);
	wr(b, VIRTIO_PCI_COMMON_Q_DESCLO, 8, b->drv.desc);
	wr(b, VIRTIO_PCI_COMMON_Q_AVAILLO, 8, b->drv.avail);
	wr(b, VIRTIO_PCI_COMMON_Q_USEDLO, 8, b->drv.used);
	wr(b, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	wr(b, VIRTIO_PCI_COMMON_STATUS, 1,
	   rd(b, VIRTIO_PCI_COMMON_STATUS, 1) | VIRTIO_CONFIG_S_DRIVER_OK);
	return (rd(b, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_DRIVER_OK) ? 0 : -EPROTO;
}

static int device_create(struct bench *b)
{
	const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};
	struct disk_config cfg = {.path = (char *)b->o.file,
				  .sparse = true,
				  .lock = true,
				  .direct = b->o.direct,
				  .block_size = 512};
	const struct virtio_dev_ops *ops;
	void *dev;
	int ret;

	ret = guest_mem_create_regions(&b->mem, ram, 1);
	if (ret)
		return ret;
	evthread_use_pthreads();
	b->eb = event_base_new();
	if (!b->eb)
		return -ENOMEM;
	b->irq.nr_vectors = 2;
	ret = new_eventfd(&b->irq.vector_fds[0]);
	if (!ret)
		ret = new_eventfd(&b->irq.vector_fds[1]);
	b->irq.intx_fd = b->irq.intx_resample_fd = -1;
	if (ret)
		return ret;
	ret = virtio_blk_create(&cfg, &b->lg, &ops, &dev);
	if (ret)
		return ret;
	ret = virtio_pci_transport_create(&(struct virtio_pci_params){.ops = ops,
								      .dev = dev,
								      .label = "virtio-blk0",
								      .mem = &b->mem,
								      .irq = &b->irq,
								      .log = &b->lg},
					  &b->dev, &b->desc);
	if (ret) {
		ops->destroy(dev);
		return ret;
	}
	ret = b->dev->ops->start(b->dev->priv, b->eb);
	if (ret)
		return ret;
	device_msix_state(b->dev, true);
	ret = -pthread_create(&b->loop, NULL, loop_thread, b);
	if (ret)
		return ret;
	b->loop_running = true;
	return driver_init(b);
}

static int submit(struct bench *b, const struct pattern *p, unsigned slot)
{
	uint64_t hdr = SLOT_GPA + slot * SLOT_SIZE;
	struct virtio_blk_outhdr h = {
		.type = htole32(p->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN),
		.sector = htole64(next_offset(b, p) >> 9),
	};
	const struct virtq_buf bufs[] = {
		{.gpa = hdr, .len = sizeof(h)},
		{.gpa = DATA_GPA + (uint64_t)slot * MAX_BS, .len = p->bs, .writable = !p->write},
		{.gpa = hdr + 32, .len = 1, .writable = true},
	};
	uint16_t head;
	int ret;

	ret = guest_mem_write(&b->mem, hdr, &h, sizeof(h));
	if (!ret)
		ret = virtq_driver_add(&b->drv, bufs, 3, &head);
	if (!ret)
		b->slot_off[head] = slot;
	return ret;
}

/* Collects completions, resubmitting on the freed slots while `more`; re-arms the interrupt. */
static int reap(struct bench *b, const struct pattern *p, bool more, unsigned *inflight,
		uint64_t *ops)
{
	uint16_t head;
	uint32_t len;
	int ret;

	for (;;) {
		while ((ret = virtq_driver_get_used(&b->drv, &head, &len)) == 0) {
			unsigned slot = (unsigned)b->slot_off[head];
			uint8_t st = 0xff;

			ret = guest_mem_read(&b->mem, SLOT_GPA + slot * SLOT_SIZE + 32, &st, 1);
			if (ret || st != VIRTIO_BLK_S_OK) {
				fprintf(stderr, "bench_block: request failed, status %u\n", st);
				return -EIO;
			}
			(*ops)++;
			(*inflight)--;
			if (more) {
				ret = submit(b, p, slot);
				if (ret)
					return ret;
				(*inflight)++;
			}
		}
		if (ret != -ENOENT)
			return ret;
		/* Ask for an interrupt at the next completion, then look once more (Linux). */
		virtq_driver_set_used_event(&b->drv, b->drv.last_used);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (virtq_driver_used_idx(&b->drv) == b->drv.last_used)
			return 0;
	}
}

static int run_device(struct bench *b, const struct pattern *p, struct result *r)
{
	unsigned inflight = 0;
	double start, end, cpu;
	uint64_t ops = 0;
	uint64_t n;
	int ret = 0;

	b->seq = 0;
	for (unsigned s = 0; s < p->qd && !ret; s++, inflight++)
		ret = submit(b, p, s);
	if (ret)
		return ret;
	cpu = cpu_now();
	start = now();
	end = start + b->o.seconds;
	virtq_driver_kick(&b->drv);
	while (inflight) {
		struct pollfd pf = {.fd = b->irq.vector_fds[Q_VECTOR], .events = POLLIN};
		bool more = now() < end;

		ret = reap(b, p, more, &inflight, &ops);
		if (ret)
			return ret;
		if (more)
			virtq_driver_kick(&b->drv);
		if (!inflight)
			break;
		if (poll(&pf, 1, STALL_MS) != 1) {
			fprintf(stderr, "bench_block: the device stalled (%u requests in flight)\n",
				inflight);
			return -ETIMEDOUT;
		}
		(void)eventfd_drain(pf.fd, &n);
	}
	r->secs = now() - start;
	r->cpu = cpu_now() - cpu;
	r->ops = ops;
	return 0;
}

static void device_destroy(struct bench *b)
{
	if (b->loop_running) {
		event_base_loopbreak(b->eb);
		pthread_join(b->loop, NULL);
	}
	if (b->dev)
		b->dev->ops->destroy(b->dev->priv);
	virtq_driver_destroy(&b->drv);
	if (b->eb)
		event_base_free(b->eb);
	guest_mem_destroy(&b->mem);
}

/* ---- raw ---- */

static int run_raw(struct bench *b, const struct pattern *p, struct result *r)
{
	int fd = open(b->o.file, O_RDWR | O_CLOEXEC | (b->o.direct ? O_DIRECT : 0));
	double start, end, cpu;
	uint64_t ops = 0;
	void *buf = NULL;
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (posix_memalign(&buf, 4096, p->bs)) {
		close(fd);
		return -ENOMEM;
	}
	memset(buf, 0x5a, p->bs);
	b->seq = 0;
	cpu = cpu_now();
	start = now();
	end = start + b->o.seconds;
	/* Check the clock every few requests only, as the device loop effectively does. */
	while (!ret && ((ops & 15) || now() < end)) {
		uint64_t off = next_offset(b, p);

		ret = p->write ? pwrite_full(fd, buf, p->bs, (off_t)off)
			       : pread_full(fd, buf, p->bs, (off_t)off);
		ops++;
	}
	r->secs = now() - start;
	r->cpu = cpu_now() - cpu;
	r->ops = ops;
	free(buf);
	close(fd);
	return ret;
}

/* ---- report ---- */

static void print_row(const struct pattern *p, const struct result *d, const struct result *r)
{
	double dr = (double)d->ops / d->secs, rr = (double)r->ops / r->secs;
	double dmb = dr * p->bs / 1e6, rmb = rr * p->bs / 1e6;

	printf("%-16s %3u  %10.0f %9.1f %8.1f   %10.0f %9.1f %8.1f   %5.2f\n", p->name, p->qd, dr,
	       dmb, d->cpu * 1e6 / (double)d->ops, rr, rmb, r->cpu * 1e6 / (double)r->ops,
	       dmb / rmb);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_block [--file PATH] [--size MIB] [--seconds S] [--direct] [--keep]\n"
		"  --file PATH    image to create and use (default ./bench-block.img)\n"
		"  --size MIB     its size (default 256)\n"
		"  --seconds S    duration of each run (default 2)\n"
		"  --direct       open the image with O_DIRECT (device and raw alike)\n"
		"  --keep         keep the image afterwards (default: delete it)\n");
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"file", required_argument, NULL, 'f'},
		{"size", required_argument, NULL, 's'},
		{"seconds", required_argument, NULL, 't'},
		{"direct", no_argument, NULL, 'd'},
		{"keep", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct options){.file = "bench-block.img", .size_mib = 256, .seconds = 2};
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end = NULL;

		switch (c) {
		case 'f':
			o->file = optarg;
			break;
		case 's':
			o->size_mib = strtoull(optarg, &end, 10);
			if (!end || *end || o->size_mib < 2 || o->size_mib > (1u << 20))
				return -EINVAL;
			break;
		case 't':
			o->seconds = strtod(optarg, &end);
			if (!end || *end || !(o->seconds > 0 && o->seconds <= 3600))
				return -EINVAL;
			break;
		case 'd':
			o->direct = true;
			break;
		case 'k':
			o->keep = true;
			break;
		default:
			return -EINVAL;
		}
	}
	return optind == argc ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct pattern patterns[] = {
		{"rand read 4k", false, true, 4096, 1},	  {"rand read 4k", false, true, 4096, 32},
		{"rand write 4k", true, true, 4096, 1},	  {"rand write 4k", true, true, 4096, 32},
		{"seq read 1M", false, false, MAX_BS, 1}, {"seq write 1M", true, false, MAX_BS, 1},
	};
	struct result raw[ARRAY_SIZE(patterns)];
	struct bench *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return 1;
	if (parse(argc, argv, &b->o)) {
		usage();
		free(b);
		return 2;
	}
	b->mem.fd = -1;
	b->size = b->o.size_mib << 20;
	b->rng = 0x9e3779b97f4a7c15ULL;
	log_init(&b->lg);
	b->lg.level = LOG_LVL_WARN;
	ret = prepare_file(b);
	if (ret)
		goto out;
	print_machine(b);
	ret = device_create(b);
	if (ret) {
		fprintf(stderr, "bench_block: cannot set up the device: %s\n", strerror(-ret));
		goto out_dev;
	}
	printf("%-16s %3s  %10s %9s %8s   %10s %9s %8s   %5s\n", "pattern", "qd", "dev req/s",
	       "dev MB/s", "cpu us", "raw req/s", "raw MB/s", "cpu us", "ratio");
	for (size_t i = 0; i < ARRAY_SIZE(patterns); i++) {
		const struct pattern *p = &patterns[i];
		struct result d;

		ret = run_device(b, p, &d);
		if (ret)
			break;
		/* One synchronous thread has no queue depth: measured once per pattern. */
		if (i == 0 || p->bs != patterns[i - 1].bs || p->write != patterns[i - 1].write)
			ret = run_raw(b, p, &raw[i]);
		else
			raw[i] = raw[i - 1];
		if (ret)
			break;
		print_row(p, &d, &raw[i]);
	}
	if (ret)
		fprintf(stderr, "bench_block: run failed: %s\n", strerror(-ret));
	else
		printf("\ncpu us = process CPU time per request (all threads, the driver's "
		       "included); ratio = device MB/s / raw MB/s\n");
out_dev:
	device_destroy(b);
out:
	if (!b->o.keep)
		unlink(b->o.file);
	free(b);
	return ret ? 1 : 0;
}
