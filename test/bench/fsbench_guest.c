/*
 * The guest's side of scripts/bench-fs: a static program the Linux guest runs from a virtio-fs
 * mount, timing file I/O in a directory of it. Data goes with O_DIRECT, so every read and write
 * is a request to the device (not the guest's page cache):
 *
 *   seq_write / seq_read     a 64 MiB file in 1 MiB requests (MB/s)
 *   rand_read / rand_write   4 KiB at random 4 KiB-aligned offsets of it (requests/s)
 *   create / stat / unlink   10,000 empty files in one directory (files/s), the stats after
 *                            the guest dropped its dentry and inode caches
 *
 * Each data figure is the median of ROUNDS rounds; the metadata workload runs once. Output:
 * "fsbench: NAME VALUE UNIT" lines, then "fsbench: done".
 *
 * Usage: fsbench_guest DIR
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_MIB   64
#define BIG	   (1u << 20)
#define SMALL	   4096u
#define RAND_OPS   2000
#define META_FILES 10000
#define ROUNDS	   3

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "fsbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Everything the guest caches of the file system goes, so the next access asks the device. */
static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	sync();
	if (fd < 0 || write(fd, "3", 1) != 1)
		die("drop_caches");
	close(fd);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double median(double *v, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (v[j] < v[i]) {
				double t = v[i];

				v[i] = v[j];
				v[j] = t;
			}
	return v[n / 2];
}

static double seq(const char *path, void *buf, int write_it)
{
	int fd = open(path, O_DIRECT | (write_it ? O_WRONLY | O_CREAT | O_TRUNC : O_RDONLY), 0644);
	double t0;

	if (fd < 0)
		die(path);
	if (!write_it)
		drop_caches();
	t0 = now();
	for (unsigned i = 0; i < FILE_MIB; i++) {
		ssize_t n = write_it ? pwrite(fd, buf, BIG, (off_t)i * BIG)
				     : pread(fd, buf, BIG, (off_t)i * BIG);

		if (n != (ssize_t)BIG)
			die(write_it ? "sequential write" : "sequential read");
	}
	if (write_it && fsync(fd) < 0)
		die("fsync");
	t0 = now() - t0;
	close(fd);
	return FILE_MIB * 1.048576 / t0;
}

static double rnd(const char *path, void *buf, int write_it)
{
	int fd = open(path, O_DIRECT | (write_it ? O_WRONLY : O_RDONLY));
	double t0;

	if (fd < 0)
		die(path);
	t0 = now();
	for (int i = 0; i < RAND_OPS; i++) {
		off_t off = (off_t)(next_rand() % (FILE_MIB * (BIG / SMALL))) * SMALL;
		ssize_t n = write_it ? pwrite(fd, buf, SMALL, off) : pread(fd, buf, SMALL, off);

		if (n != (ssize_t)SMALL)
			die(write_it ? "random write" : "random read");
	}
	if (write_it && fdatasync(fd) < 0)
		die("fdatasync");
	t0 = now() - t0;
	close(fd);
	return RAND_OPS / t0;
}

static void metadata(const char *dir)
{
	char path[4096];
	struct stat st;
	double t0;

	snprintf(path, sizeof(path), "%s/meta", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path);
	t0 = now();
	for (int i = 0; i < META_FILES; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/meta/f%05d", dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			die(path);
		close(fd);
	}
	printf("fsbench: create %.0f files/s\n", META_FILES / (now() - t0));
	drop_caches();
	t0 = now();
	for (int i = 0; i < META_FILES; i++) {
		snprintf(path, sizeof(path), "%s/meta/f%05d", dir, i);
		if (stat(path, &st) < 0)
			die(path);
	}
	printf("fsbench: stat %.0f files/s\n", META_FILES / (now() - t0));
	t0 = now();
	for (int i = 0; i < META_FILES; i++) {
		snprintf(path, sizeof(path), "%s/meta/f%05d", dir, i);
		if (unlink(path) < 0)
			die(path);
	}
	printf("fsbench: unlink %.0f files/s\n", META_FILES / (now() - t0));
	snprintf(path, sizeof(path), "%s/meta", dir);
	rmdir(path);
}

int main(int argc, char **argv)
{
	double sw[ROUNDS], sr[ROUNDS], rr[ROUNDS], rw[ROUNDS];
	char file[4096];
	void *buf;

	if (argc != 2) {
		fprintf(stderr, "usage: fsbench_guest DIR\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (posix_memalign(&buf, 4096, BIG))
		die("memory");
	memset(buf, 0xa5, BIG);
	snprintf(file, sizeof(file), "%s/data", argv[1]);
	for (int r = 0; r < ROUNDS; r++) {
		sw[r] = seq(file, buf, 1);
		sr[r] = seq(file, buf, 0);
		rr[r] = rnd(file, buf, 0);
		rw[r] = rnd(file, buf, 1);
	}
	printf("fsbench: seq_write %.1f MB/s\n", median(sw, ROUNDS));
	printf("fsbench: seq_read %.1f MB/s\n", median(sr, ROUNDS));
	printf("fsbench: rand_read %.0f req/s\n", median(rr, ROUNDS));
	printf("fsbench: rand_write %.0f req/s\n", median(rw, ROUNDS));
	unlink(file);
	metadata(argv[1]);
	printf("fsbench: done\n");
	return 0;
}
