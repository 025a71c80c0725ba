/*
 * virtio-blk throughput against the raw file it serves, on this machine.
 *
 * The device is built as the VMM builds it: virtio_blk_create behind the virtio-pci
 * transport, started on an event loop thread, its worker waiting on the queue's ioeventfd
 * and raising the queue's MSI-X eventfd. Two instances run side by side: one on the io_uring
 * back end ("uring"), one on the synchronous back end (async-executor=epoll, "sync"). With
 * --sandboxed a third, on io_uring, runs in its jailed child process exactly as the VMM runs
 * it (sandbox_jail_device, the built-in seccomp policies), its registers reached through the
 * proxy, so the cost of the sandbox shows too.
 *
 * This thread plays the Linux driver with virtq_driver: it keeps `qd` requests in flight,
 * kicks as the ring asks, sleeps on the interrupt eventfd and re-arms used_event as Linux
 * does with EVENT_IDX. The raw figures are the host's best at the same queue depth: one
 * thread keeping `qd` requests in flight on the same file with io_uring (as fio's io_uring
 * engine does with iodepth=qd), at the same offsets in the same order, the same buffers.
 *
 * Other work on the machine (page cache writeback, other processes) comes and goes, so each
 * pattern runs in rounds, device and raw in turn, and the medians are reported. The
 * device's CPU time excludes the driver's (this thread). No thresholds: a report.
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
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "virtio/disk.h"
#include "core/device.h"
#include "core/guest_mem.h"
#include "core/log.h"
#include "test/bench/bench_jail.h"
#include "test/unit/virtio_env.h"
#include "test/unit/virtq_driver.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"

#define RAM_SIZE   (64ULL << 20)
#define RING_GPA   0x10000ULL
#define SLOT_GPA   0x100000ULL /* per request slot: header at +0, status at +32 */
#define SLOT_SIZE  64ULL
#define DATA_GPA   0x1000000ULL /* per slot data, MAX_BS apart */
#define MAX_QD	   32u
#define MAX_BS	   (1u << 20)
#define MAX_SEGS   VIRTIO_BLK_SEG_MAX /* what a Linux guest puts in one request at most */
#define QSIZE	   256
#define BIT(n)	   (1ULL << (n))
#define STALL_MS   5000
#define MAX_ROUNDS 15
#define SEED	   0x9e3779b97f4a7c15ULL

_Static_assert(MAX_QD *SLOT_SIZE <= DATA_GPA - SLOT_GPA, "slots");
_Static_assert(DATA_GPA + (uint64_t)MAX_QD * MAX_BS <= RAM_SIZE, "data");
_Static_assert(MAX_SEGS + 2 <= QSIZE, "a request fits the ring");

struct options {
	const char *file;
	const char *only; /* run the patterns whose name contains this */
	uint64_t size_mib;
	double seconds;
	unsigned rounds;
	bool direct;
	bool keep;
	bool sandboxed;
};

struct pattern {
	const char *name;
	bool write;
	bool random;
	uint32_t bs;
	unsigned qd;
	unsigned segs; /* data buffers per request, bs / segs bytes each */
};

struct result {
	uint64_t ops;
	double secs;
	double cpu; /* CPU seconds of the device's threads, or of the raw thread */
};

/* One device instance and the driver state this thread keeps for it. */
struct side {
	const char *label;
	bool sandboxed;
	enum disk_engine engine;
	pthread_t loop; /* runs the unsandboxed device's loop */
	bool loop_running;
	pid_t pid;		 /* its device process, when sandboxed */
	struct virtio_env env;	 /* its memory, transport, interrupts and queue driver */
	uint64_t slot_of[QSIZE]; /* head -> slot */
};

enum { URING, SYNC, SANDBOXED, NR_SIDES };

struct bench {
	struct options o;
	uint64_t size;
	struct logger lg;
	struct side side[NR_SIDES];
	struct bench_jail jail; /* for the sandboxed device */
	uint64_t rng;
	uint64_t seq;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double clock_secs(clockid_t c)
{
	struct timespec t;

	if (clock_gettime(c, &t) < 0)
		return 0;
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * CPU seconds of the device's threads so far: the child process for the sandboxed device,
 * else this process minus this (the driver's) thread.
 */
static double device_cpu(const struct side *s)
{
	clockid_t c;

	if (s->sandboxed)
		return clock_getcpuclockid(s->pid, &c) == 0 ? clock_secs(c) : 0;
	return clock_secs(CLOCK_PROCESS_CPUTIME_ID) - clock_secs(CLOCK_THREAD_CPUTIME_ID);
}

static uint64_t next_rand(struct bench *b)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return b->rng;
}

/* Every run of a pattern, device or raw, starts the same sequence of offsets. */
static void restart_offsets(struct bench *b)
{
	b->rng = SEED;
	b->seq = 0;
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
	printf("runs:     %u rounds of %.1f s per pattern, device%s and raw in turn (each round "
	       "led by the next),\n          the image written back before each run; medians "
	       "shown\n",
	       b->o.rounds, b->o.seconds, b->o.sandboxed ? ", sandboxed device" : "");
	printf("device:   virtio-blk through the virtio-pci transport (ioeventfd kick to the "
	       "worker thread, MSI-X eventfd),\n"
	       "          driven by a host thread playing the guest driver; uring = io_uring "
	       "back end, sync = synchronous\n          back end (async-executor=epoll)%s\n",
	       b->o.sandboxed ? "; sbx = io_uring in its jailed process (seccomp "
				"block_device policy)"
			      : "");
	printf("raw:      one thread keeping qd requests in flight with io_uring (readv/writev, "
	       "the file registered),\n          same offsets, same buffers: the host's best at "
	       "that queue depth\n\n");
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

/* ---- the devices ---- */

static void *loop_thread(void *arg)
{
	struct side *s = arg;

	event_base_dispatch(s->env.eb);
	return NULL;
}

/* Linux's probe order, with EVENT_IDX as Linux negotiates it. */
static int driver_init(struct side *s)
{
	uint64_t features = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX) |
			    BIT(VIRTIO_BLK_F_FLUSH) | BIT(VIRTIO_BLK_F_SEG_MAX);
	int ret = virtio_env_negotiate(&s->env, features);

	if (!ret)
		ret = virtio_env_setup_queue(&s->env, 0);
	if (!ret)
		ret = virtio_env_driver_ok(&s->env);
	return ret;
}

/*
 * Creates one device. A sandboxed one moves into its jailed process here, which must happen
 * before this process has any other thread (sandbox_jail_device clones it).
 */
static int side_create(struct bench *b, struct side *s)
{
	const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};
	/* No advisory lock: with --sandboxed two devices serve the image in turns. */
	struct disk_config cfg = {.path = (char *)b->o.file,
				  .sparse = true,
				  .direct = b->o.direct,
				  .block_size = 512,
				  .engine = s->engine};
	const struct virtio_dev_ops *ops;
	void *dev;
	int ret;

	ret = virtio_env_create(&s->env, &(struct virtio_env_params){.ram = ram,
								     .nr_ram = 1,
								     .log_level = LOG_LVL_WARN,
								     .queue_size = QSIZE,
								     .ring_gpa = RING_GPA});
	if (ret)
		return ret;
	ret = virtio_blk_create(&cfg, &s->env.lg, &ops, &dev);
	if (ret)
		return ret;
	ret = virtio_env_attach(&s->env, ops, dev, s->label);
	if (ret) {
		ops->destroy(dev);
		return ret;
	}
	if (s->sandboxed) {
		/* Its proxy's loop is turned at a stall, to hear whether its process died. */
		ret = bench_jail_device(&b->jail, s->env.dev, &b->lg, &s->pid);
	} else {
		ret = virtio_env_start(&s->env, true);
	}
	if (ret)
		return ret;
	return driver_init(s);
}

static int devices_create(struct bench *b)
{
	int ret;

	evthread_use_pthreads();
	if (b->o.sandboxed) {
		ret = bench_jail_setup(&b->jail, "bench_block");
		if (!ret)
			ret = side_create(b, &b->side[SANDBOXED]);
		if (ret)
			return ret;
	}
	for (unsigned i = URING; i <= SYNC; i++) {
		struct side *s = &b->side[i];

		ret = side_create(b, s);
		if (!ret)
			ret = -pthread_create(&s->loop, NULL, loop_thread, s);
		if (ret)
			return ret;
		s->loop_running = true;
	}
	return 0;
}

static void devices_destroy(struct bench *b)
{
	for (unsigned i = 0; i < NR_SIDES; i++)
		if (b->side[i].loop_running) {
			event_base_loopbreak(b->side[i].env.eb);
			pthread_join(b->side[i].loop, NULL);
		}
	/* A device process stops when its proxy closes, and is reaped when it is destroyed. */
	bench_jail_stopping(&b->jail);
	for (unsigned i = 0; i < NR_SIDES; i++) {
		if (b->side[i].env.dev)
			device_stop(b->side[i].env.dev);
		virtio_env_destroy(&b->side[i].env);
	}
	bench_jail_destroy(&b->jail);
}

static int submit(struct bench *b, struct side *s, const struct pattern *p, unsigned slot)
{
	uint64_t hdr = SLOT_GPA + slot * SLOT_SIZE;
	uint64_t data = DATA_GPA + (uint64_t)slot * MAX_BS;
	uint32_t seg = p->bs / p->segs;
	struct virtio_blk_outhdr h = {
		.type = htole32(p->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN),
		.sector = htole64(next_offset(b, p) >> 9),
	};
	struct virtq_buf bufs[MAX_SEGS + 2];
	unsigned n = 0;
	uint16_t head;
	int ret;

	bufs[n++] = (struct virtq_buf){.gpa = hdr, .len = sizeof(h)};
	for (unsigned i = 0; i < p->segs; i++)
		bufs[n++] = (struct virtq_buf){
			.gpa = data + (uint64_t)i * seg, .len = seg, .writable = !p->write};
	bufs[n++] = (struct virtq_buf){.gpa = hdr + 32, .len = 1, .writable = true};
	ret = guest_mem_write(&s->env.mem, hdr, &h, sizeof(h));
	if (!ret)
		ret = virtq_driver_add(&s->env.drv[0], bufs, n, &head);
	if (!ret)
		s->slot_of[head] = slot;
	return ret;
}

/* Collects completions, resubmitting on the freed slots while `more`; re-arms the interrupt. */
static int reap(struct bench *b, struct side *s, const struct pattern *p, bool more,
		unsigned *inflight, uint64_t *ops)
{
	uint16_t head;
	uint32_t len;
	int ret;

	for (;;) {
		while ((ret = virtq_driver_get_used(&s->env.drv[0], &head, &len)) == 0) {
			unsigned slot = (unsigned)s->slot_of[head];
			uint8_t st = 0xff;

			ret = guest_mem_read(&s->env.mem, SLOT_GPA + slot * SLOT_SIZE + 32, &st, 1);
			if (ret || st != VIRTIO_BLK_S_OK) {
				fprintf(stderr, "bench_block: request failed, status %u\n", st);
				return -EIO;
			}
			(*ops)++;
			(*inflight)--;
			if (more) {
				ret = submit(b, s, p, slot);
				if (ret)
					return ret;
				(*inflight)++;
			}
		}
		if (ret != -ENOENT)
			return ret;
		/* Ask for an interrupt at the next completion, then look once more (Linux). */
		virtq_driver_set_used_event(&s->env.drv[0], s->env.drv[0].last_used);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (virtq_driver_used_idx(&s->env.drv[0]) == s->env.drv[0].last_used)
			return 0;
	}
}

static int run_device(struct bench *b, struct side *s, const struct pattern *p, struct result *r)
{
	unsigned inflight = 0;
	double start, end, cpu;
	uint64_t ops = 0;
	uint64_t n;
	int ret = 0;

	restart_offsets(b);
	for (unsigned slot = 0; slot < p->qd && !ret; slot++, inflight++)
		ret = submit(b, s, p, slot);
	if (ret)
		return ret;
	cpu = device_cpu(s);
	start = now();
	end = start + b->o.seconds;
	virtq_driver_kick(&s->env.drv[0]);
	while (inflight) {
		struct pollfd pf = {.fd = s->env.irq.vector_fds[VIRTIO_ENV_Q_VECTOR(0)],
				    .events = POLLIN};
		bool more = now() < end;

		ret = reap(b, s, p, more, &inflight, &ops);
		if (ret)
			return ret;
		if (more)
			virtq_driver_kick(&s->env.drv[0]);
		if (!inflight)
			break;
		if (poll(&pf, 1, STALL_MS) != 1) {
			fprintf(stderr, "bench_block: %s stalled (%u requests in flight)\n",
				s->label, inflight);
			if (s->sandboxed) /* the proxy says why, if its process died */
				(void)event_base_loop(b->jail.eb, EVLOOP_NONBLOCK);
			return -ETIMEDOUT;
		}
		(void)eventfd_drain(pf.fd, &n);
	}
	r->secs = now() - start;
	r->cpu = device_cpu(s) - cpu;
	r->ops = ops;
	return 0;
}

/* ---- raw ---- */

/* Queues request `slot` (its buffer) at the next offset of the pattern. */
static void raw_queue(struct bench *b, const struct pattern *p, struct io_uring *ring,
		      uint8_t *bufs, struct iovec *iov, unsigned slot)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring); /* never NULL: qd <= entries */
	uint8_t *buf = bufs + (size_t)slot * p->bs;
	struct iovec *v = iov + (size_t)slot * MAX_SEGS;
	uint32_t seg = p->bs / p->segs;
	uint64_t off = next_offset(b, p);

	for (unsigned i = 0; i < p->segs; i++)
		v[i] = (struct iovec){.iov_base = buf + (size_t)i * seg, .iov_len = seg};
	if (p->write)
		io_uring_prep_writev(sqe, 0, v, p->segs, off);
	else
		io_uring_prep_readv(sqe, 0, v, p->segs, off);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, slot);
}

/*
 * The host's best at this queue depth: one thread keeping qd requests in flight with
 * io_uring, each completion replaced by the next request, submissions batched (fio's
 * io_uring engine). Like the device, it cycles through qd buffers (the driver's slots), so
 * both copy through the same amount of memory.
 */
static int run_raw(struct bench *b, const struct pattern *p, struct result *r)
{
	int fd = open(b->o.file, O_RDWR | O_CLOEXEC | (b->o.direct ? O_DIRECT : 0));
	struct iovec *iov = calloc((size_t)p->qd * MAX_SEGS, sizeof(*iov));
	unsigned inflight = 0;
	double start, end, cpu;
	struct io_uring ring;
	uint64_t ops = 0;
	uint8_t *bufs = NULL;
	int ret;

	if (fd < 0 || !iov) {
		ret = fd < 0 ? -errno : -ENOMEM;
		goto out_fd;
	}
	if (posix_memalign((void **)&bufs, 4096, (size_t)p->bs * p->qd)) {
		ret = -ENOMEM;
		goto out_fd;
	}
	memset(bufs, 0x5a, (size_t)p->bs * p->qd);
	ret = io_uring_queue_init(MAX_QD, &ring, 0);
	if (ret < 0)
		goto out_bufs;
	ret = io_uring_register_files(&ring, &fd, 1);
	if (ret < 0)
		goto out_ring;
	restart_offsets(b);
	cpu = clock_secs(CLOCK_THREAD_CPUTIME_ID);
	start = now();
	end = start + b->o.seconds;
	for (unsigned slot = 0; slot < p->qd; slot++, inflight++)
		raw_queue(b, p, &ring, bufs, iov, slot);
	while (inflight) {
		struct io_uring_cqe *cqe;
		bool more = now() < end;
		unsigned head, n = 0;

		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR)
			break;
		ret = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			unsigned slot = (unsigned)io_uring_cqe_get_data64(cqe);

			if (cqe->res != (int)p->bs) {
				ret = cqe->res < 0 ? cqe->res : -EIO;
				break;
			}
			n++;
			ops++;
			inflight--;
			if (more) {
				raw_queue(b, p, &ring, bufs, iov, slot);
				inflight++;
			}
		}
		io_uring_cq_advance(&ring, n);
		if (ret)
			break;
	}
	r->secs = now() - start;
	r->cpu = clock_secs(CLOCK_THREAD_CPUTIME_ID) - cpu;
	r->ops = ops;
out_ring:
	io_uring_queue_exit(&ring);
out_bufs:
	free(bufs);
out_fd:
	free(iov);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* ---- report ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median requests/s and CPU microseconds per request over the rounds. */
static void summarize(const struct result *r, unsigned n, double *rate, double *cpu_us)
{
	double a[MAX_ROUNDS], c[MAX_ROUNDS];

	for (unsigned i = 0; i < n; i++) {
		a[i] = (double)r[i].ops / r[i].secs;
		c[i] = r[i].cpu * 1e6 / (double)(r[i].ops ? r[i].ops : 1);
	}
	*rate = median(a, n);
	*cpu_us = median(c, n);
}

static void print_header(const struct bench *b)
{
	printf("%-16s %3s  %10s %7s  %10s %7s", "pattern", "qd", "uring/s", "cpu us", "sync/s",
	       "cpu us");
	if (b->o.sandboxed)
		printf("  %10s %7s", "sbx/s", "cpu us");
	printf("  %10s %7s  %8s %8s", "raw/s", "cpu us", "MB/s", "uring/raw");
	printf(" %9s", "sync/raw");
	if (b->o.sandboxed)
		printf(" %8s", "sbx/raw");
	printf("\n");
}

static void print_row(const struct bench *b, const struct pattern *p,
		      struct result res[][MAX_ROUNDS])
{
	double rate[NR_SIDES + 1], cpu[NR_SIDES + 1];

	for (unsigned v = 0; v <= NR_SIDES; v++)
		if (v != SANDBOXED || b->o.sandboxed)
			summarize(res[v], b->o.rounds, &rate[v], &cpu[v]);
	printf("%-16s %3u  %10.0f %7.1f  %10.0f %7.1f", p->name, p->qd, rate[URING], cpu[URING],
	       rate[SYNC], cpu[SYNC]);
	if (b->o.sandboxed)
		printf("  %10.0f %7.1f", rate[SANDBOXED], cpu[SANDBOXED]);
	printf("  %10.0f %7.1f  %8.1f %8.2f", rate[NR_SIDES], cpu[NR_SIDES],
	       rate[NR_SIDES] * p->bs / 1e6, rate[URING] / rate[NR_SIDES]);
	printf(" %9.2f", rate[SYNC] / rate[NR_SIDES]);
	if (b->o.sandboxed)
		printf(" %8.2f", rate[SANDBOXED] / rate[NR_SIDES]);
	printf("\n");
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_block [--file PATH] [--size MIB] [--seconds S] [--rounds N]\n"
		"                   [--direct] [--sandboxed] [--keep]\n"
		"  --file PATH    image to create and use (default ./bench-block.img)\n"
		"  --size MIB     its size (default 256)\n"
		"  --seconds S    duration of each run (default 1)\n"
		"  --rounds N     runs of each pattern, device and raw in turn; medians shown "
		"(default 3, at most %d)\n"
		"  --direct       open the image with O_DIRECT (device and raw alike)\n"
		"  --sandboxed    also run the device in its jailed process, as the VMM does "
		"(root)\n"
		"  --pattern TEXT only the patterns whose name and depth contain TEXT, e.g. "
		"\"read\",\n"
		"                 \"rand write 4k qd32\"\n"
		"  --keep         keep the image afterwards (default: delete it)\n",
		MAX_ROUNDS);
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"file", required_argument, NULL, 'f'},	   {"size", required_argument, NULL, 's'},
		{"seconds", required_argument, NULL, 't'}, {"rounds", required_argument, NULL, 'r'},
		{"direct", no_argument, NULL, 'd'},	   {"sandboxed", no_argument, NULL, 'x'},
		{"pattern", required_argument, NULL, 'p'}, {"keep", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},	   {NULL, 0, NULL, 0},
	};
	unsigned long long v;
	int c;

	*o = (struct options){
		.file = "bench-block.img", .size_mib = 256, .seconds = 1, .rounds = 3};
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
		case 'r':
			v = strtoull(optarg, &end, 10);
			if (!end || *end || v < 1 || v > MAX_ROUNDS)
				return -EINVAL;
			o->rounds = (unsigned)v;
			break;
		case 'd':
			o->direct = true;
			break;
		case 'x':
			o->sandboxed = true;
			break;
		case 'p':
			o->only = optarg;
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

/*
 * Writes back what earlier runs left dirty, so that no run pays for the writeback of
 * another's data (untimed; every run starts from the same clean, cached image).
 */
static int settle(struct bench *b)
{
	int fd = open(b->o.file, O_RDONLY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fdatasync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* One run of variant v (a side, or NR_SIDES for raw). */
static int run_variant(struct bench *b, unsigned v, const struct pattern *p, struct result *r)
{
	int ret = settle(b);

	if (ret)
		return ret;
	if (v == NR_SIDES)
		return run_raw(b, p, r);
	return run_device(b, &b->side[v], p, r);
}

/*
 * Rounds of every variant in turn; each round starts with the next variant, so none is
 * always the one that runs first after another pattern.
 */
static int run_pattern(struct bench *b, const struct pattern *p)
{
	struct result res[NR_SIDES + 1][MAX_ROUNDS];
	unsigned order[NR_SIDES + 1], n = 0;
	int ret = 0;

	order[n++] = URING;
	order[n++] = SYNC;
	if (b->o.sandboxed)
		order[n++] = SANDBOXED;
	order[n++] = NR_SIDES;
	for (unsigned r = 0; r < b->o.rounds && !ret; r++)
		for (unsigned i = 0; i < n && !ret; i++) {
			unsigned v = order[(r + i) % n];

			ret = run_variant(b, v, p, &res[v][r]);
		}
	if (!ret)
		print_row(b, p, res);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct pattern patterns[] = {
		{"rand read 4k", false, true, 4096, 1, 1},
		{"rand read 4k", false, true, 4096, 8, 1},
		{"rand read 4k", false, true, 4096, 32, 1},
		{"rand write 4k", true, true, 4096, 1, 1},
		{"rand write 4k", true, true, 4096, 8, 1},
		{"rand write 4k", true, true, 4096, 32, 1},
		{"seq read 1M", false, false, MAX_BS, 1, 1},
		{"seq write 1M", true, false, MAX_BS, 1, 1},
		/* As a Linux guest sends large requests: one 4 KiB page per segment, seg_max. */
		{"seq read 254x4k", false, false, MAX_SEGS * 4096, 1, MAX_SEGS},
		{"seq write 254x4k", true, false, MAX_SEGS * 4096, 1, MAX_SEGS},
	};
	struct bench *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return 1;
	if (parse(argc, argv, &b->o)) {
		usage();
		free(b);
		return 2;
	}
	b->side[URING].label = "virtio-blk0";
	b->side[URING].engine = DISK_ENGINE_URING;
	b->side[SYNC].label = "virtio-blk1";
	b->side[SYNC].engine = DISK_ENGINE_SYNC;
	b->side[SANDBOXED].label = "virtio-blk2";
	b->side[SANDBOXED].sandboxed = true;
	b->side[SANDBOXED].engine = DISK_ENGINE_URING;
	b->size = b->o.size_mib << 20;
	b->rng = SEED;
	log_init(&b->lg);
	b->lg.level = LOG_LVL_WARN;
	ret = prepare_file(b);
	if (ret)
		goto out;
	print_machine(b);
	ret = devices_create(b);
	if (ret) {
		fprintf(stderr, "bench_block: cannot set up the device: %s\n", strerror(-ret));
		goto out_dev;
	}
	print_header(b);
	for (size_t i = 0; i < ARRAY_SIZE(patterns) && !ret; i++) {
		char key[64];

		snprintf(key, sizeof(key), "%s qd%u", patterns[i].name, patterns[i].qd);
		if (!b->o.only || strstr(key, b->o.only))
			ret = run_pattern(b, &patterns[i]);
	}
	if (ret)
		fprintf(stderr, "bench_block: run failed: %s\n", strerror(-ret));
	else
		printf("\ncpu us = CPU time per request of the device's threads (the driver's "
		       "excluded; "
		       "with sbx, its process)\nor of the raw thread; dev/raw, sbx/raw = req/s "
		       "ratios\n");
out_dev:
	devices_destroy(b);
out:
	if (!b->o.keep)
		unlink(b->o.file);
	free(b);
	return ret ? 1 : 0;
}
