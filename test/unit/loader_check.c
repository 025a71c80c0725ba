#include "test/unit/loader_check.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int fd_with(const void *data, size_t len)
{
	int fd = memfd_create("kernel", 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, data, len, 0), (ssize_t)len);
	return fd;
}

int load_capture(const struct guest_mem *m, int fd, enum boot_protocol proto,
		 struct kernel_info *ki, char *msg, size_t n)
{
	int cap = memfd_create("stderr", 0), saved = dup(2), ret;
	ssize_t got;

	ck_assert_int_ge(cap, 0);
	ck_assert_int_ge(saved, 0);
	fflush(stderr);
	dup2(cap, 2);
	ret = kernel_load(m, fd, proto, ki, NULL);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	got = pread(cap, msg, n - 1, 0);
	msg[got > 0 ? got : 0] = '\0';
	close(cap);
	return ret;
}

void assert_refused(const struct guest_mem *m, int fd, enum boot_protocol proto, const char *what)
{
	struct kernel_info ki;
	char msg[2048];
	int ret = load_capture(m, fd, proto, &ki, msg, sizeof(msg));
	char *nl = strchr(msg, '\n');

	ck_assert_msg(ret < 0, "%s: accepted", what);
	ck_assert_msg(strncmp(msg, "[crosvm error] kernel: ", 23) == 0, "%s: logged '%s'", what,
		      msg);
	ck_assert_msg(nl && nl[1] == '\0', "%s: expected one line, got '%s'", what, msg);
}

void assert_every_truncation_refused(const void *img, size_t len, uint64_t ram_bytes)
{
	int fd = fd_with(img, len);
	struct kernel_info ki;
	struct guest_mem m;

	ck_assert_int_eq(guest_mem_create(&m, ram_bytes), 0);
	ck_assert_int_eq(kernel_load(&m, fd, BOOT_PROTO_AUTO, &ki, NULL), 0);
	for (size_t n = len; n-- > 0;) {
		char what[64];

		ck_assert_int_eq(ftruncate(fd, (off_t)n), 0);
		snprintf(what, sizeof(what), "truncated to %zu bytes", n);
		assert_refused(&m, fd, BOOT_PROTO_AUTO, what);
	}
	guest_mem_destroy(&m);
	close(fd);
}

bool real_kernel_open(const char *name, int *fd)
{
	const char *dir = getenv("CROSVM_LINUX_DIR");
	const char *req = getenv("CROSVM_REQUIRE_LINUX");
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/var/cache/crosvm-linux", name);
	if (access(path, R_OK) != 0) {
		ck_assert_msg(!(req && strcmp(req, "1") == 0),
			      "%s is missing and CROSVM_REQUIRE_LINUX=1 (run scripts/fetch-linux)",
			      path);
		fprintf(stderr,
			"SKIP: %s not found; run scripts/fetch-linux to test the real kernel\n",
			path);
		return false;
	}
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(*fd >= 0, "cannot open %s", path);
	return true;
}
