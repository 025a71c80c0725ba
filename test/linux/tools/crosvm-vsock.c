/*
 * crosvm-vsock: the Linux test guest's AF_VSOCK tool (busybox has none). Built static by
 * scripts/lib/linuxguest.py into the guest image as /usr/bin/crosvm-vsock.
 *
 *   crosvm-vsock [-n N] [-r FILE] listen PORT MODE...   accept N connections (default 1)
 *   crosvm-vsock [-n N] connect CID PORT MODE...        open N connections
 *
 * Each connection runs MODE in its own process:
 *   recv            read to EOF
 *   send BYTES      write BYTES of a pseudo-random stream (seeded by the connection's index),
 *                   shut the write side, read to EOF
 *   echo            write back what it reads, to EOF
 *   die BYTES       read BYTES, then kill itself (a peer that vanishes mid-stream)
 * and prints one line: "conn=I sent=S rcvd=R crc_sent=X crc_rcvd=Y" (CRC-32 as zlib's). A
 * listener creates FILE (-r) once it listens, so a host knows when to connect.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define CHUNK 65536

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void die(const char *what)
{
	fprintf(stderr, "crosvm-vsock: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A decimal (or 0x) number that fits 32 bits, or the tool ends: arguments come from tests. */
static unsigned num(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > 0xffffffffUL) {
		fprintf(stderr, "crosvm-vsock: '%s' is not a 32-bit number\n", s);
		exit(2);
	}
	return (unsigned)v;
}

struct stats {
	unsigned long long sent, rcvd;
	uint32_t crc_sent, crc_rcvd;
};

static void write_all(int fd, const uint8_t *p, size_t n, struct stats *s)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write");
		s->crc_sent = crc32(s->crc_sent, p, (size_t)w);
		s->sent += (size_t)w;
		p += w;
		n -= (size_t)w;
	}
}

/* Reads to EOF (or limit bytes); echoes back when asked. */
static void read_all(int fd, struct stats *s, int echo, unsigned long long limit)
{
	static uint8_t buf[CHUNK];

	while (s->rcvd < limit) {
		size_t want =
			limit - s->rcvd < sizeof(buf) ? (size_t)(limit - s->rcvd) : sizeof(buf);
		ssize_t n = read(fd, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read");
		if (n == 0)
			break;
		s->crc_rcvd = crc32(s->crc_rcvd, buf, (size_t)n);
		s->rcvd += (size_t)n;
		if (echo)
			write_all(fd, buf, (size_t)n, s);
	}
}

static void send_stream(int fd, unsigned long long bytes, unsigned seed, struct stats *s)
{
	static uint8_t buf[CHUNK];
	uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);

	while (bytes) {
		size_t n = bytes < sizeof(buf) ? (size_t)bytes : sizeof(buf);

		for (size_t i = 0; i < n; i += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(buf + i, &x, n - i < 8 ? n - i : 8);
		}
		write_all(fd, buf, n, s);
		bytes -= n;
	}
}

static void serve(int fd, unsigned idx, char **mode)
{
	struct stats s = {0};

	if (!strcmp(mode[0], "recv")) {
		read_all(fd, &s, 0, ~0ull);
	} else if (!strcmp(mode[0], "echo")) {
		read_all(fd, &s, 1, ~0ull);
	} else if (!strcmp(mode[0], "send") && mode[1]) {
		send_stream(fd, strtoull(mode[1], NULL, 0), idx, &s);
		shutdown(fd, SHUT_WR);
		read_all(fd, &s, 0, ~0ull);
	} else if (!strcmp(mode[0], "die") && mode[1]) {
		read_all(fd, &s, 0, strtoull(mode[1], NULL, 0));
		printf("conn=%u dying after %llu bytes\n", idx, s.rcvd);
		fflush(stdout);
		kill(getpid(), SIGKILL);
	} else {
		fprintf(stderr, "crosvm-vsock: unknown mode %s\n", mode[0]);
		exit(2);
	}
	printf("conn=%u sent=%llu rcvd=%llu crc_sent=%08x crc_rcvd=%08x\n", idx, s.sent, s.rcvd,
	       s.crc_sent, s.crc_rcvd);
	fflush(stdout);
	close(fd);
	exit(0);
}

static int wait_children(unsigned n)
{
	int bad = 0, st;

	while (n--) {
		if (wait(&st) < 0)
			die("wait");
		bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	}
	return bad;
}

int main(int argc, char **argv)
{
	unsigned n = 1;
	const char *ready = NULL;
	int opt;

	crc_init();
	while ((opt = getopt(argc, argv, "+n:r:")) != -1) {
		if (opt == 'n')
			n = num(optarg);
		else if (opt == 'r')
			ready = optarg;
		else
			return 2;
	}
	argv += optind;
	argc -= optind;
	if (argc >= 3 && !strcmp(argv[0], "listen")) {
		struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
					 .svm_cid = VMADDR_CID_ANY,
					 .svm_port = num(argv[1])};
		int lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(lfd, (int)n) < 0)
			die("listen");
		if (ready && close(open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
			die(ready);
		for (unsigned i = 0; i < n; i++) {
			int fd = accept(lfd, NULL, NULL);

			if (fd < 0)
				die("accept");
			if (fork() == 0)
				serve(fd, i, argv + 2);
			close(fd);
		}
		return wait_children(n);
	}
	if (argc >= 4 && !strcmp(argv[0], "connect")) {
		struct sockaddr_vm sa = {
			.svm_family = AF_VSOCK, .svm_cid = num(argv[1]), .svm_port = num(argv[2])};

		for (unsigned i = 0; i < n; i++) {
			if (fork() == 0) {
				int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

				if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
					die("connect");
				serve(fd, i, argv + 3);
			}
		}
		return wait_children(n);
	}
	fprintf(stderr, "usage: crosvm-vsock [-n N] [-r FILE] listen PORT MODE... | "
			"connect CID PORT MODE...\n");
	return 2;
}
