/*
 * The raw image back end on real files: whole transfers or errors, ranges checked against
 * the image, read-only enforced by the kernel too, advisory locks between opens, holes for
 * discard, every write-zeroes path (file system ranges, holes, writing zeros where the file
 * system refuses), resizing, and O_DIRECT with unaligned buffers and offsets.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/device.h"
#include "core/log.h"
#include "test/unit/testutil.h"
#include "virtio/disk_raw.h"

#define SECTOR 512u

struct img {
	char path[PATH_MAX];
	uint64_t size;
	struct logger lg;
};

static uint8_t pat(uint64_t off, uint8_t seed)
{
	return (uint8_t)(off * 31 + (off >> 9) * 17 + seed) | 1; /* never 0 */
}

/* A file of `size` pattern bytes in the build directory (a real file system, not tmpfs). */
static void img_create(struct img *m, uint64_t size, uint8_t seed)
{
	uint8_t *buf = malloc(size ? size : 1);
	int fd;

	ck_assert_ptr_nonnull(buf);
	log_init(&m->lg);
	m->lg.level = LOG_LVL_OFF;
	m->size = size;
	snprintf(m->path, sizeof(m->path), "%s/disk-raw-XXXXXX", TEST_BUILD_DIR);
	fd = mkstemp(m->path);
	ck_assert_int_ge(fd, 0);
	for (uint64_t i = 0; i < size; i++)
		buf[i] = pat(i, seed);
	ck_assert_int_eq(pwrite_full(fd, buf, size, 0), 0);
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	free(buf);
}

static void img_destroy(struct img *m)
{
	unlink(m->path);
}

/* The back end through its interface, as virtio-blk uses it; the raw file completes inside submit.
 */
static void req_done(struct disk_req *req, int ret)
{
	*(int *)req->ctx = ret;
}

static int run(struct disk *d, struct disk_req r)
{
	int ret = 1;

	r.done = req_done;
	r.ctx = &ret;
	ck_assert_int_eq(disk_submit(d, &r), 0);
	ck_assert_int_le(ret, 0);
	return ret;
}

static int rd(struct disk *d, struct iovec *iov, unsigned nr, uint64_t off)
{
	return run(d, (struct disk_req){.op = DISK_READ, .off = off, .iov = iov, .nr = nr});
}

static int wr(struct disk *d, struct iovec *iov, unsigned nr, uint64_t off)
{
	return run(d, (struct disk_req){.op = DISK_WRITE, .off = off, .iov = iov, .nr = nr});
}

static int flush(struct disk *d)
{
	return run(d, (struct disk_req){.op = DISK_FLUSH});
}

static int discard(struct disk *d, uint64_t off, uint64_t len)
{
	return run(d, (struct disk_req){.op = DISK_DISCARD, .off = off, .len = len});
}

static int zeroes(struct disk *d, uint64_t off, uint64_t len, bool unmap)
{
	return run(d, (struct disk_req){
			      .op = DISK_WRITE_ZEROES, .off = off, .len = len, .unmap = unmap});
}

/* The one fd the back end works on. */
static int fd_of(struct disk *d)
{
	struct fd_list l = {.nr = 0};

	ck_assert_int_eq(disk_fds(d, &l), 0);
	ck_assert_uint_eq(l.nr, 1);
	return l.fds[0];
}

static struct disk_config cfg_for(struct img *m)
{
	return (struct disk_config){
		.path = m->path, .sparse = true, .lock = true, .block_size = 512};
}

static void file_read(struct img *m, void *buf, size_t len, off_t off)
{
	int fd = open(m->path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread_full(fd, buf, len, off), 0);
	close(fd);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static bool is_hole(struct img *m, off_t off)
{
	int fd = open(m->path, O_RDONLY);
	off_t h;

	ck_assert_int_ge(fd, 0);
	h = lseek(fd, off, SEEK_HOLE);
	close(fd);
	return h == off;
}

static blkcnt_t blocks(struct img *m)
{
	struct stat st;

	ck_assert_int_eq(stat(m->path, &st), 0);
	return st.st_blocks;
}

START_TEST(test_open_errors)
{
	struct disk_config c = {.path = "/nonexistent/disk.img", .lock = true};
	struct disk *d;
	struct logger lg;

	log_init(&lg);
	lg.level = LOG_LVL_OFF;
	ck_assert_int_eq(disk_raw_open(&c, &lg, &d), -ENOENT);
	c.path = TEST_BUILD_DIR;
	ck_assert_int_eq(disk_raw_open(&c, &lg, &d), -EISDIR);
	c.ro = true; /* a directory opens read-only, and is then refused */
	ck_assert_int_eq(disk_raw_open(&c, &lg, &d), -EINVAL);
	c.path = "";
	ck_assert_int_eq(disk_raw_open(&c, &lg, &d), -EINVAL);
	c.path = NULL;
	ck_assert_int_eq(disk_raw_open(&c, &lg, &d), -EINVAL);
}
END_TEST

START_TEST(test_read_write_scattered)
{
	uint8_t a[100], b[1000], c[948], check[2048], back[2048];
	struct iovec v[3];
	struct disk *d;
	struct img m;

	img_create(&m, 64 * SECTOR, 1);
	ck_assert_int_eq(
		disk_raw_open(&(struct disk_config){.path = m.path, .block_size = 512}, &m.lg, &d),
		0);
	ck_assert_uint_eq(d->size, 64 * SECTOR);
	memset(a, 0xa1, sizeof(a));
	memset(b, 0xb2, sizeof(b));
	memset(c, 0xc3, sizeof(c));
	v[0] = (struct iovec){a, sizeof(a)};
	v[1] = (struct iovec){b, sizeof(b)};
	v[2] = (struct iovec){c, sizeof(c)};
	ck_assert_int_eq(wr(d, v, 3, 3 * SECTOR), 0);
	file_read(&m, check, sizeof(check), 3 * SECTOR);
	ck_assert_mem_eq(check, a, sizeof(a));
	ck_assert_mem_eq(check + 100, b, sizeof(b));
	ck_assert_mem_eq(check + 1100, c, sizeof(c));
	/* The sectors around are untouched. */
	file_read(&m, check, 1, 3 * SECTOR - 1);
	ck_assert_uint_eq(check[0], pat(3 * SECTOR - 1, 1));
	file_read(&m, check, 1, 7 * SECTOR);
	ck_assert_uint_eq(check[0], pat(7 * SECTOR, 1));

	v[0] = (struct iovec){back, 7};
	v[1] = (struct iovec){back + 7, 0};
	v[2] = (struct iovec){back + 7, sizeof(back) - 7};
	ck_assert_int_eq(rd(d, v, 3, 3 * SECTOR), 0);
	file_read(&m, check, sizeof(check), 3 * SECTOR);
	ck_assert_mem_eq(back, check, sizeof(back));
	ck_assert_int_eq(flush(d), 0);
	disk_close(d);
	img_destroy(&m);
}
END_TEST

START_TEST(test_ranges_outside_image)
{
	uint8_t buf[1024];
	struct iovec v = {buf, sizeof(buf)};
	struct disk *d;
	struct stat st;
	struct img m;

	img_create(&m, 8 * SECTOR, 2);
	ck_assert_int_eq(disk_raw_open(&(struct disk_config){.path = m.path}, &m.lg, &d), 0);
	ck_assert_int_eq(rd(d, &v, 1, 7 * SECTOR), -EINVAL);
	v = (struct iovec){buf, sizeof(buf)};
	ck_assert_int_eq(wr(d, &v, 1, 7 * SECTOR), -EINVAL);
	v = (struct iovec){buf, sizeof(buf)};
	ck_assert_int_eq(rd(d, &v, 1, UINT64_MAX - 10), -EINVAL);
	ck_assert_int_eq(discard(d, 4 * SECTOR, UINT64_MAX), -EINVAL);
	ck_assert_int_eq(zeroes(d, UINT64_MAX, 2, false), -EINVAL);
	/* Nothing grew the file. */
	ck_assert_int_eq(stat(m.path, &st), 0);
	ck_assert_int_eq(st.st_size, 8 * SECTOR);
	disk_close(d);
	img_destroy(&m);
}
END_TEST

START_TEST(test_read_only)
{
	uint8_t buf[SECTOR] = {0}, check[SECTOR];
	struct iovec v = {buf, sizeof(buf)};
	struct disk_config c;
	struct disk *d;
	struct img m;

	img_create(&m, 8 * SECTOR, 3);
	c = cfg_for(&m);
	c.ro = true;
	ck_assert_int_eq(disk_raw_open(&c, &m.lg, &d), 0);
	/* The kernel enforces it as well. */
	ck_assert_int_eq(fcntl(fd_of(d), F_GETFL) & O_ACCMODE, O_RDONLY);
	ck_assert_int_eq(wr(d, &v, 1, 0), -EROFS);
	ck_assert_int_eq(discard(d, 0, SECTOR), -EROFS);
	ck_assert_int_eq(zeroes(d, 0, SECTOR, true), -EROFS);
	ck_assert_int_eq(disk_resize(d, 16 * SECTOR), -EROFS);
	ck_assert_int_eq(rd(d, &v, 1, SECTOR), 0);
	file_read(&m, check, sizeof(check), SECTOR);
	ck_assert_mem_eq(buf, check, sizeof(buf));
	ck_assert_uint_eq(check[0], pat(SECTOR, 3));
	disk_close(d);
	img_destroy(&m);
}
END_TEST

START_TEST(test_locks)
{
	struct disk_config rw, ro, nolock;
	struct disk *a, *b;
	struct img m;

	img_create(&m, 8 * SECTOR, 4);
	rw = cfg_for(&m);
	ro = rw;
	ro.ro = true;
	nolock = rw;
	nolock.lock = false;

	ck_assert_int_eq(disk_raw_open(&rw, &m.lg, &a), 0);
	ck_assert_int_eq(disk_raw_open(&rw, &m.lg, &b), -EBUSY);
	ck_assert_int_eq(disk_raw_open(&ro, &m.lg, &b), -EBUSY);
	/* Without the lock option nothing is checked. */
	ck_assert_int_eq(disk_raw_open(&nolock, &m.lg, &b), 0);
	disk_close(b);
	disk_close(a);

	/* Readers share; a writer waits for them all to go. */
	ck_assert_int_eq(disk_raw_open(&ro, &m.lg, &a), 0);
	ck_assert_int_eq(disk_raw_open(&ro, &m.lg, &b), 0);
	disk_close(b);
	ck_assert_int_eq(disk_raw_open(&rw, &m.lg, &b), -EBUSY);
	disk_close(a);
	ck_assert_int_eq(disk_raw_open(&rw, &m.lg, &b), 0);
	disk_close(b);
	img_destroy(&m);
}
END_TEST

START_TEST(test_discard_punches_holes)
{
	const uint64_t size = 1 << 20, off = 256 << 10, len = 256 << 10;
	uint8_t *buf = malloc(len);
	struct disk_config c;
	struct disk *d;
	struct img m;
	blkcnt_t before;

	ck_assert_ptr_nonnull(buf);
	img_create(&m, size, 5);
	before = blocks(&m);
	c = cfg_for(&m);
	ck_assert_int_eq(disk_raw_open(&c, &m.lg, &d), 0);
	ck_assert_int_eq(discard(d, off, len), 0);
	ck_assert(is_hole(&m, (off_t)off));
	ck_assert_int_lt(blocks(&m), before);
	file_read(&m, buf, len, (off_t)off);
	ck_assert(all_zero(buf, len));
	/* The size stays; the data around stays. */
	ck_assert_uint_eq(d->size, size);
	file_read(&m, buf, 1, (off_t)(off + len));
	ck_assert_uint_eq(buf[0], pat(off + len, 5));
	disk_close(d);

	/* Not sparse: discard keeps the data (and its allocation). */
	c.sparse = false;
	ck_assert_int_eq(disk_raw_open(&c, &m.lg, &d), 0);
	ck_assert_int_eq(discard(d, 0, 4096), 0);
	file_read(&m, buf, 4096, 0);
	ck_assert_uint_eq(buf[0], pat(0, 5));
	ck_assert_uint_eq(buf[4095], pat(4095, 5));
	disk_close(d);
	img_destroy(&m);
	free(buf);
}
END_TEST

START_TEST(test_write_zeroes)
{
	const uint64_t size = 1 << 20;
	uint8_t buf[8192];
	struct disk_config c;
	struct disk *d;
	struct img m;

	img_create(&m, size, 6);
	c = cfg_for(&m);
	ck_assert_int_eq(disk_raw_open(&c, &m.lg, &d), 0);
	/* Without unmap: zeros, no hole needed. */
	ck_assert_int_eq(zeroes(d, SECTOR, 3 * SECTOR, false), 0);
	file_read(&m, buf, 5 * SECTOR, 0);
	ck_assert_uint_eq(buf[SECTOR - 1], pat(SECTOR - 1, 6));
	ck_assert(all_zero(buf + SECTOR, 3 * SECTOR));
	ck_assert_uint_eq(buf[4 * SECTOR], pat(4 * SECTOR, 6));
	/* With unmap on a sparse image: a hole. */
	ck_assert_int_eq(zeroes(d, 64 << 10, 64 << 10, true), 0);
	ck_assert(is_hole(&m, 64 << 10));
	file_read(&m, buf, sizeof(buf), 64 << 10);
	ck_assert(all_zero(buf, sizeof(buf)));
	ck_assert_uint_eq(d->size, size);
	disk_close(d);
	img_destroy(&m);
}
END_TEST

/*
 * shmem (a memfd) cannot zero a range (FALLOC_FL_ZERO_RANGE is EOPNOTSUPP there), so the
 * back end has to write the zeros itself; more than one chunk exercises the loop.
 */
START_TEST(test_write_zeroes_falls_back_to_writing)
{
	const uint64_t size = 4 << 20, off = 512, len = (3 << 20) + 1024;
	struct logger lg;
	struct disk *d;
	char path[64];
	uint8_t *buf = malloc(size);
	int fd = memfd_create("disk", MFD_CLOEXEC);

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_ge(fd, 0);
	log_init(&lg);
	lg.level = LOG_LVL_OFF;
	memset(buf, 0x5a, size);
	ck_assert_int_eq(pwrite_full(fd, buf, size, 0), 0);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096), -1);
	ck_assert_int_eq(errno, EOPNOTSUPP);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	/* Not sparse, so even unmap must not punch (which shmem could do). */
	ck_assert_int_eq(disk_raw_open(&(struct disk_config){.path = path}, &lg, &d), 0);
	ck_assert_int_eq(zeroes(d, off, len, true), 0);
	ck_assert_int_eq(pread_full(fd, buf, size, 0), 0);
	ck_assert_uint_eq(buf[off - 1], 0x5a);
	ck_assert(all_zero(buf + off, len));
	ck_assert_uint_eq(buf[off + len], 0x5a);
	ck_assert_uint_eq(buf[size - 1], 0x5a);
	disk_close(d);
	close(fd);
	free(buf);
}
END_TEST

START_TEST(test_resize)
{
	uint8_t buf[SECTOR];
	struct iovec v = {buf, sizeof(buf)};
	struct disk_config c;
	struct disk *d;
	struct stat st;
	struct img m;

	img_create(&m, 8 * SECTOR, 7);
	c = cfg_for(&m);
	ck_assert_int_eq(disk_raw_open(&c, &m.lg, &d), 0);
	ck_assert_int_eq(disk_resize(d, 1 << 20), 0);
	ck_assert_uint_eq(d->size, 1 << 20);
	ck_assert_int_eq(stat(m.path, &st), 0);
	ck_assert_int_eq(st.st_size, 1 << 20);
	/* Sparse: the new part is a hole that reads zeros. */
	ck_assert(is_hole(&m, 512 << 10));
	ck_assert_int_eq(rd(d, &v, 1, (1 << 20) - SECTOR), 0);
	ck_assert(all_zero(buf, sizeof(buf)));

	ck_assert_int_eq(disk_resize(d, 2 * SECTOR), 0);
	ck_assert_int_eq(stat(m.path, &st), 0);
	ck_assert_int_eq(st.st_size, 2 * SECTOR);
	v = (struct iovec){buf, sizeof(buf)};
	ck_assert_int_eq(rd(d, &v, 1, 2 * SECTOR), -EINVAL);
	v = (struct iovec){buf, sizeof(buf)};
	ck_assert_int_eq(rd(d, &v, 1, SECTOR), 0);
	ck_assert_uint_eq(buf[0], pat(SECTOR, 7));
	ck_assert_int_eq(disk_resize(d, UINT64_MAX), -EFBIG);
	disk_close(d);

	/* Not sparse: growing allocates the new space. */
	c.sparse = false;
	ck_assert_int_eq(disk_raw_open(&c, &m.lg, &d), 0);
	ck_assert_int_eq(disk_resize(d, 1 << 20), 0);
	ck_assert_int_ge(blocks(&m), (1 << 20) / 512);
	disk_close(d);
	img_destroy(&m);
}
END_TEST

/* O_DIRECT on the build directory's file system (tmpfs may refuse it: then skip). */
static bool open_direct(struct disk **d, struct img *m)
{
	struct disk_config c = cfg_for(m);
	int ret;

	c.direct = true;
	ret = disk_raw_open(&c, &m->lg, d);
	if (ret == -EINVAL) {
		fprintf(stderr, "test_direct: skipped, %s refuses O_DIRECT\n", TEST_BUILD_DIR);
		return false;
	}
	ck_assert_int_eq(ret, 0);
	return true;
}

START_TEST(test_direct_unaligned)
{
	const uint64_t size = 4 << 20;
	uint8_t *mem = aligned_alloc(4096, size + 8192), *check = malloc(size);
	struct iovec v[3];
	struct disk *d;
	struct img m;

	ck_assert_ptr_nonnull(mem);
	ck_assert_ptr_nonnull(check);
	img_create(&m, size, 8);
	if (!open_direct(&d, &m))
		goto out;
	ck_assert_int_eq(fcntl(fd_of(d), F_GETFL) & O_DIRECT, O_DIRECT);

	/* Aligned: straight through. */
	memset(mem, 0x11, 8192);
	v[0] = (struct iovec){mem, 8192};
	ck_assert_int_eq(wr(d, v, 1, 8192), 0);
	file_read(&m, check, 8192, 8192);
	ck_assert_mem_eq(check, mem, 8192);

	/* Unaligned buffers, offset and length: through the bounce buffer. */
	for (unsigned i = 0; i < 1000; i++)
		mem[3 + i] = (uint8_t)(i * 7 + 1);
	v[0] = (struct iovec){mem + 3, 100};
	v[1] = (struct iovec){mem + 103, 900};
	ck_assert_int_eq(wr(d, v, 2, 100), 0);
	file_read(&m, check, 1200, 0);
	ck_assert_uint_eq(check[99], pat(99, 8));
	ck_assert_mem_eq(check + 100, mem + 3, 1000);
	ck_assert_uint_eq(check[1100], pat(1100, 8));

	memset(mem, 0, 2000);
	v[0] = (struct iovec){mem + 1, 1000};
	ck_assert_int_eq(rd(d, v, 1, 100), 0);
	ck_assert_mem_eq(mem + 1, check + 100, 1000);

	/* Several bounce chunks, sector-aligned offset, unaligned memory. */
	for (uint64_t i = 0; i < (3 << 20) + 512; i++)
		mem[5 + i] = (uint8_t)(i >> 9) ^ (uint8_t)i;
	v[0] = (struct iovec){mem + 5, (3 << 20) + 512};
	ck_assert_int_eq(wr(d, v, 1, 512), 0);
	file_read(&m, check, size, 0);
	ck_assert_mem_eq(check + 512, mem + 5, (3 << 20) + 512);
	ck_assert_uint_eq(check[511], (uint8_t)(411 * 7 + 1)); /* from the write at 100 */
	ck_assert_uint_eq(check[(3 << 20) + 1024], pat((3 << 20) + 1024, 8));
	memset(mem, 0, size);
	v[0] = (struct iovec){mem + 7, (3 << 20) + 512};
	ck_assert_int_eq(rd(d, v, 1, 512), 0);
	ck_assert_mem_eq(mem + 7, check + 512, (3 << 20) + 512);

	ck_assert_int_eq(zeroes(d, 512, 512, false), 0);
	file_read(&m, check, 1024, 0);
	ck_assert(all_zero(check + 512, 512));
	disk_close(d);
out:
	img_destroy(&m);
	free(mem);
	free(check);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("disk_raw");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_read_write_scattered);
	tcase_add_test(tc, test_ranges_outside_image);
	tcase_add_test(tc, test_read_only);
	tcase_add_test(tc, test_locks);
	tcase_add_test(tc, test_discard_punches_holes);
	tcase_add_test(tc, test_write_zeroes);
	tcase_add_test(tc, test_write_zeroes_falls_back_to_writing);
	tcase_add_test(tc, test_resize);
	tcase_add_test(tc, test_direct_unaligned);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
