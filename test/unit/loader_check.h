/* Shared checks for the kernel loader suites (test_loader_elf.c, test_loader_bzimage.c). */
#ifndef CROSVM_TEST_LOADER_CHECK_H
#define CROSVM_TEST_LOADER_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include "core/guest_mem.h"
#include "core/boot/loader.h"

/* A memfd holding data, standing in for a kernel file. */
int fd_with(const void *data, size_t len);
/* kernel_load with stderr (where a NULL logger writes) captured into msg. */
int load_capture(const struct guest_mem *m, int fd, enum boot_protocol proto,
		 struct kernel_info *ki, char *msg, size_t n);
/* The load fails with -errno and logs exactly one error line about the kernel file. */
void assert_refused(const struct guest_mem *m, int fd, enum boot_protocol proto, const char *what);

/*
 * img[0, len) loads into ram_bytes of guest memory, and every shorter prefix of it is refused
 * with one error line, never loaded or crashed on.
 */
void assert_every_truncation_refused(const void *img, size_t len, uint64_t ram_bytes);
/*
 * Opens a file of the Debian kernel scripts/fetch-linux fetched (vmlinuz, vmlinux) into *fd,
 * or returns false when it is missing: the test then has nothing to check, which fails it
 * if CROSVM_REQUIRE_LINUX=1 and is reported as a skip otherwise.
 */
bool real_kernel_open(const char *name, int *fd);

#endif
