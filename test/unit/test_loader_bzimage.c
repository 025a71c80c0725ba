/*
 * bzImage kernels and initrd placement: a synthetic bzImage built here, every setup header
 * field corrupted in turn, every truncation, and the real Debian bzImage from
 * scripts/fetch-linux when it is there.
 */
#include "core/boot/boot_params.h"
#include "core/layout.h"
#include "core/boot/loader.h"
#include "test/unit/loader_check.h"
#include "test/unit/testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SETUP_SECTS 4
#define SETUP_LEN   ((SETUP_SECTS + 1) * 512)
#define KERNEL_LEN  0x2000
#define IMG_SIZE    (SETUP_LEN + KERNEL_LEN)
#define PREF	    MiB(16)
#define INIT_SIZE   MiB(4)
#define ALIGNMENT   MiB(2)
#define RAM	    MiB(64)

#define OFF(f) (BOOT_SETUP_HDR_OFFSET + offsetof(struct setup_header, f))

static void put(uint8_t *img, size_t off, uint64_t v, size_t len)
{
	memcpy(img + off, &v, len);
}

/* A 2.15 header like a current x86_64 kernel's; the kernel part is a byte pattern. */
static uint8_t *build_bz(size_t extra)
{
	uint8_t *img = calloc(1, IMG_SIZE + extra);

	ck_assert_ptr_nonnull(img);
	put(img, OFF(setup_sects), SETUP_SECTS, 1);
	put(img, OFF(syssize), KERNEL_LEN / 16, 4);
	put(img, OFF(boot_flag), BOOT_FLAG_MAGIC, 2);
	put(img, OFF(jump), 0x6aeb, 2); /* jmp short: the header ends at 0x202 + 0x6a */
	put(img, OFF(header), BOOT_HDRS_MAGIC, 4);
	put(img, OFF(version), 0x020f, 2);
	put(img, OFF(loadflags), BOOT_LOADED_HIGH, 1);
	put(img, OFF(code32_start), 0x100000, 4);
	put(img, OFF(initrd_addr_max), 0x7fffffff, 4);
	put(img, OFF(kernel_alignment), ALIGNMENT, 4);
	put(img, OFF(relocatable_kernel), 1, 1);
	put(img, OFF(xloadflags), BOOT_XLF_KERNEL_64 | BOOT_XLF_CAN_BE_LOADED_ABOVE_4G, 2);
	put(img, OFF(cmdline_size), 2047, 4);
	put(img, OFF(pref_address), PREF, 8);
	put(img, OFF(init_size), INIT_SIZE, 4);
	for (unsigned i = 0; i < KERNEL_LEN + extra; i++)
		img[SETUP_LEN + i] = (uint8_t)(i * 5 + 3);
	return img;
}

static void refuse_with(size_t off, uint64_t v, size_t len, uint64_t ram, const char *what)
{
	uint8_t *img = build_bz(0);
	struct guest_mem m;
	int fd;

	put(img, off, v, len);
	fd = fd_with(img, IMG_SIZE);
	ck_assert_int_eq(guest_mem_create(&m, ram), 0);
	assert_refused(&m, fd, BOOT_PROTO_AUTO, what);
	guest_mem_destroy(&m);
	close(fd);
	free(img);
}

static void refuse(size_t off, uint64_t v, size_t len, const char *what)
{
	refuse_with(off, v, len, RAM, what);
}

static bool guest_matches(const struct guest_mem *m, uint64_t gpa, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len);
	bool same;

	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(guest_mem_read(m, gpa, got, len), 0);
	same = memcmp(got, want, len) == 0;
	free(got);
	return same;
}

/* Loads the image (with one field patched) and returns where it went. */
static struct kernel_info load_patched(size_t off, uint64_t v, size_t len, uint64_t ram)
{
	uint8_t *img = build_bz(0);
	struct kernel_info ki;
	struct guest_mem m;
	int fd;

	if (len)
		put(img, off, v, len);
	fd = fd_with(img, IMG_SIZE);
	ck_assert_int_eq(guest_mem_create(&m, ram), 0);
	ck_assert_int_eq(kernel_load(&m, fd, BOOT_PROTO_AUTO, &ki, NULL), 0);
	ck_assert(guest_matches(&m, ki.start, img + SETUP_LEN, KERNEL_LEN));
	guest_mem_destroy(&m);
	close(fd);
	free(img);
	return ki;
}

START_TEST(loads_at_pref_address)
{
	uint8_t *img = build_bz(0);
	int fd = fd_with(img, IMG_SIZE);
	struct kernel_info ki;
	struct guest_mem m;

	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	ck_assert_int_eq(kernel_load(&m, fd, BOOT_PROTO_AUTO, &ki, NULL), 0);
	ck_assert_int_eq(ki.kind, KERNEL_BZIMAGE);
	ck_assert_uint_eq(ki.start, PREF);
	ck_assert_uint_eq(ki.entry, PREF + 0x200);
	ck_assert_uint_eq(ki.end, PREF + INIT_SIZE);
	ck_assert(ki.has_setup_header);
	ck_assert_uint_eq(ki.hdr.version, 0x020f);
	ck_assert_uint_eq(ki.hdr.boot_flag, BOOT_FLAG_MAGIC);
	ck_assert_uint_eq(ki.hdr.init_size, INIT_SIZE);
	ck_assert_uint_eq(ki.hdr.pref_address, PREF);
	ck_assert_uint_eq(ki.initrd_addr_max, 0x7fffffff);
	ck_assert_uint_eq(ki.cmdline_size, 2047);
	ck_assert(guest_matches(&m, PREF, img + SETUP_LEN, KERNEL_LEN));
	ck_assert_int_eq(kernel_load(&m, fd, BOOT_PROTO_LINUX, &ki, NULL), 0);
	ck_assert_int_eq(ki.kind, KERNEL_BZIMAGE);
	assert_refused(&m, fd, BOOT_PROTO_PVH, "bzImage as PVH");
	guest_mem_destroy(&m);
	close(fd);
	free(img);
}
END_TEST

/* Without a usable pref_address the kernel goes to 1 MiB, boot.rst's default. */
START_TEST(falls_back_to_1mib)
{
	struct kernel_info ki;

	ki = load_patched(OFF(relocatable_kernel), 0, 1, RAM);
	ck_assert_uint_eq(ki.start, MiB(1));
	ck_assert_uint_eq(ki.entry, MiB(1) + 0x200);
	ck_assert_uint_eq(ki.end, MiB(1) + INIT_SIZE);
	ki = load_patched(OFF(pref_address), PREF + 0x1000, 8, RAM);
	ck_assert_uint_eq(ki.start, MiB(1));
	ki = load_patched(OFF(pref_address), 0, 8, RAM);
	ck_assert_uint_eq(ki.start, MiB(1));
	/* Does not fit at pref_address (16 + 4 MiB > 18 MiB) but does at 1 MiB. */
	ki = load_patched(0, 0, 0, MiB(18));
	ck_assert_uint_eq(ki.start, MiB(1));
	/* Fits exactly. */
	ki = load_patched(0, 0, 0, MiB(20));
	ck_assert_uint_eq(ki.start, PREF);
}
END_TEST

START_TEST(setup_sects_zero_means_four)
{
	struct kernel_info ki = load_patched(OFF(setup_sects), 0, 1, RAM);

	ck_assert_uint_eq(ki.start, PREF);
}
END_TEST

/* Signed kernels carry a signature after syssize; it is neither refused nor loaded. */
START_TEST(trailing_signature_is_ignored)
{
	uint8_t *img = build_bz(1472);
	int fd = fd_with(img, IMG_SIZE + 1472);
	uint8_t after[16], zero[16] = {0};
	struct kernel_info ki;
	struct guest_mem m;

	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	ck_assert_int_eq(kernel_load(&m, fd, BOOT_PROTO_AUTO, &ki, NULL), 0);
	ck_assert(guest_matches(&m, PREF, img + SETUP_LEN, KERNEL_LEN));
	ck_assert_int_eq(guest_mem_read(&m, PREF + KERNEL_LEN, after, sizeof(after)), 0);
	ck_assert_mem_eq(after, zero, sizeof(after));
	guest_mem_destroy(&m);
	close(fd);
	free(img);
}
END_TEST

START_TEST(header_fields_are_checked)
{
	refuse(OFF(boot_flag), 0xaa56, 2, "boot_flag");
	refuse(OFF(header), 0x53726449, 4, "HdrS");
	refuse(OFF(version), 0x0205, 2, "version 2.05");
	refuse(OFF(version), 0, 2, "version 0");
	refuse(OFF(jump) + 1, 0x30, 1, "header shorter than 2.06");
	refuse(OFF(jump) + 1, 0, 1, "header of 2 bytes");
	refuse(OFF(setup_sects), 255, 1, "setup_sects past the file");
	refuse(OFF(setup_sects), 20, 1, "setup_sects leave no room for syssize");
	refuse(OFF(syssize), 0, 4, "syssize 0");
	refuse(OFF(syssize), KERNEL_LEN / 16 + 1, 4, "syssize one paragraph past the file");
	refuse(OFF(syssize), UINT32_MAX, 4, "syssize max");
	refuse(OFF(loadflags), 0, 1, "zImage (not LOADED_HIGH)");
	refuse(OFF(xloadflags), BOOT_XLF_CAN_BE_LOADED_ABOVE_4G, 2, "no XLF_KERNEL_64");
	refuse(OFF(kernel_alignment), 0, 4, "alignment 0");
	refuse(OFF(kernel_alignment), 0x300000, 4, "alignment not a power of two");
	refuse(OFF(kernel_alignment), UINT32_MAX, 4, "alignment max");
	refuse(OFF(init_size), 0, 4, "init_size 0");
	refuse(OFF(init_size), UINT32_MAX, 4, "init_size beyond RAM");
	refuse(OFF(init_size), RAM, 4, "init_size = RAM");
	refuse_with(0, 0, 0, MiB(4), "init_size beyond a 4 MiB guest");
}
END_TEST

START_TEST(old_version_message)
{
	uint8_t *img = build_bz(0);
	struct kernel_info ki;
	struct guest_mem m;
	char msg[1024];
	int fd;

	put(img, OFF(version), 0x0204, 2);
	fd = fd_with(img, IMG_SIZE);
	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	ck_assert_int_eq(load_capture(&m, fd, BOOT_PROTO_AUTO, &ki, msg, sizeof(msg)), -ENOEXEC);
	ck_assert_str_eq(msg, "[crosvm error] kernel: bzImage setup header version 0x0204 is too "
			      "old (need 2.06+)\n");
	guest_mem_destroy(&m);
	close(fd);
	free(img);
}
END_TEST

START_TEST(every_truncation_is_refused)
{
	uint8_t *img = build_bz(0);

	assert_every_truncation_refused(img, IMG_SIZE, RAM);
	free(img);
}
END_TEST

/* ---- initrd placement ---- */

static int initrd_fd(size_t len)
{
	uint8_t *data = malloc(len);
	int fd;

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 11 + 1);
	fd = fd_with(data, len);
	free(data);
	return fd;
}

static bool initrd_in_guest(const struct guest_mem *m, uint64_t gpa, size_t len)
{
	bool ok = true;
	uint8_t *got = malloc(len);

	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(guest_mem_read(m, gpa, got, len), 0);
	for (size_t i = 0; i < len && ok; i++)
		ok = got[i] == (uint8_t)(i * 11 + 1);
	free(got);
	return ok;
}

static struct kernel_info bz_info(uint64_t start, uint64_t end, uint64_t addr_max)
{
	return (struct kernel_info){.kind = KERNEL_BZIMAGE,
				    .entry = start + 0x200,
				    .start = start,
				    .end = end,
				    .initrd_addr_max = addr_max,
				    .cmdline_size = 2047};
}

START_TEST(initrd_goes_high_and_aligned)
{
	struct kernel_info ki = bz_info(PREF, PREF + INIT_SIZE, 0x7fffffff);
	uint64_t gpa, size;
	struct guest_mem m;
	int fd = initrd_fd(10000);

	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	ck_assert_int_eq(initrd_load(&m, fd, &ki, &gpa, &size, NULL), 0);
	ck_assert_uint_eq(size, 10000);
	ck_assert_uint_eq(gpa, ALIGN_DOWN(RAM - 10000, 4096));
	ck_assert(initrd_in_guest(&m, gpa, 10000));
	guest_mem_destroy(&m);
	close(fd);
}
END_TEST

START_TEST(initrd_respects_initrd_addr_max)
{
	/* initrd_addr_max is the last usable byte, so the initrd ends at or below 0x2000000. */
	struct kernel_info ki = bz_info(MiB(1), MiB(5), 0x1ffffff);
	uint64_t gpa, size;
	struct guest_mem m;
	int fd = initrd_fd(8192);

	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	ck_assert_int_eq(initrd_load(&m, fd, &ki, &gpa, &size, NULL), 0);
	ck_assert_uint_eq(gpa, 0x2000000 - 8192);
	/* An unaligned maximum rounds the end down to a page. */
	ki.initrd_addr_max = 0x2000ffe;
	ck_assert_int_eq(initrd_load(&m, fd, &ki, &gpa, &size, NULL), 0);
	ck_assert_uint_eq(gpa, 0x2000000 - 8192);
	guest_mem_destroy(&m);
	close(fd);
}
END_TEST

/* With RAM above 4 GiB the initrd still goes below the 32-bit hole and initrd_addr_max. */
START_TEST(initrd_with_high_memory)
{
	struct kernel_info ki = bz_info(PREF, PREF + INIT_SIZE, 0x7fffffff);
	struct kernel_info elf = {.kind = KERNEL_ELF64,
				  .start = MiB(2),
				  .end = MiB(40),
				  .initrd_addr_max = LOADER_INITRD_ADDR_MAX_DEFAULT};
	uint64_t gpa, size;
	struct guest_mem m;
	int fd = initrd_fd(4096 * 3);

	ck_assert_int_eq(guest_mem_create(&m, GiB(4)), 0);
	ck_assert_int_eq(initrd_load(&m, fd, &ki, &gpa, &size, NULL), 0);
	ck_assert_uint_eq(gpa, 0x80000000 - 3 * 4096);
	ki.initrd_addr_max = UINT32_MAX; /* XLF_CAN_BE_LOADED_ABOVE_4G kernels say so */
	ck_assert_int_eq(initrd_load(&m, fd, &ki, &gpa, &size, NULL), 0);
	ck_assert_uint_eq(gpa, LAYOUT_MEM_32BIT_GAP - 3 * 4096);
	ck_assert(initrd_in_guest(&m, gpa, 3 * 4096));
	ck_assert_int_eq(initrd_load(&m, fd, &elf, &gpa, &size, NULL), 0);
	ck_assert_uint_eq(gpa, 0x38000000 - 3 * 4096);
	guest_mem_destroy(&m);
	close(fd);
}
END_TEST

START_TEST(initrd_that_does_not_fit)
{
	struct kernel_info ki = bz_info(PREF, PREF + INIT_SIZE, 0x7fffffff);
	uint64_t gpa = 1, size = 1;
	struct guest_mem m;
	int fd;

	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	/* Larger than everything below the top of RAM. */
	fd = initrd_fd(RAM + 4096);
	ck_assert_int_eq(initrd_load(&m, fd, &ki, &gpa, &size, NULL), -EFBIG);
	close(fd);
	/* Would fit in RAM, but not above the kernel. */
	fd = initrd_fd(RAM - PREF - INIT_SIZE + 1);
	ck_assert_int_eq(initrd_load(&m, fd, &ki, &gpa, &size, NULL), -ENOSPC);
	close(fd);
	/* Exactly the room above the kernel. */
	fd = initrd_fd(RAM - PREF - INIT_SIZE);
	ck_assert_int_eq(initrd_load(&m, fd, &ki, &gpa, &size, NULL), 0);
	ck_assert_uint_eq(gpa, PREF + INIT_SIZE);
	close(fd);
	/* The kernel ends above initrd_addr_max: no room at all. */
	ki.initrd_addr_max = PREF;
	fd = initrd_fd(4096);
	ck_assert_int_eq(initrd_load(&m, fd, &ki, &gpa, &size, NULL), -ENOSPC);
	close(fd);
	fd = memfd_create("empty", 0);
	ck_assert_int_eq(initrd_load(&m, fd, &ki, &gpa, &size, NULL), -EINVAL);
	close(fd);
	ck_assert_uint_eq(gpa, PREF + INIT_SIZE); /* failures leave the outputs alone */
	guest_mem_destroy(&m);
}
END_TEST

/* ---- The real Debian kernel (scripts/fetch-linux) ---- */

START_TEST(real_bzimage)
{
	struct setup_header h;
	struct kernel_info ki;
	struct guest_mem m;
	uint64_t setup, gpa, size;
	uint8_t *want;
	int fd, ifd;

	if (!real_kernel_open("vmlinuz", &fd))
		return;
	ck_assert_int_eq(pread(fd, &h, sizeof(h), BOOT_SETUP_HDR_OFFSET), sizeof(h));
	setup = (uint64_t)((h.setup_sects ? h.setup_sects : 4) + 1) * 512;

	/* crosvm's default guest size must take Debian's kernel. */
	ck_assert_int_eq(guest_mem_create(&m, MiB(256)), 0);
	ck_assert_int_eq(kernel_load(&m, fd, BOOT_PROTO_AUTO, &ki, NULL), 0);
	ck_assert_int_eq(ki.kind, KERNEL_BZIMAGE);
	ck_assert_uint_ge(ki.hdr.version, 0x020c);
	ck_assert(ki.hdr.relocatable_kernel);
	ck_assert_uint_eq(ki.hdr.pref_address, 0x1000000);
	ck_assert_uint_eq(ki.start, 0x1000000);
	ck_assert_uint_eq(ki.entry, 0x1000200);
	ck_assert_uint_eq(ki.end, 0x1000000 + MAX(h.init_size, h.syssize * 16ULL));
	ck_assert_uint_eq(ki.cmdline_size, h.cmdline_size);
	want = malloc(h.syssize * 16ULL);
	ck_assert_ptr_nonnull(want);
	ck_assert_int_eq(pread(fd, want, h.syssize * 16ULL, (off_t)setup),
			 (ssize_t)(h.syssize * 16ULL));
	ck_assert(guest_matches(&m, ki.start, want, h.syssize * 16ULL));
	free(want);

	/* The initrd lands above it, and the zero page takes its header. */
	ifd = initrd_fd(MiB(8));
	ck_assert_int_eq(initrd_load(&m, ifd, &ki, &gpa, &size, NULL), 0);
	ck_assert_uint_ge(gpa, ki.end);
	ck_assert_uint_le(gpa + size, MiB(256));
	close(ifd);
	ck_assert_int_eq(boot_params_write(&m, &ki,
					   &(struct boot_config){.cmdline = "console=ttyS0",
								 .initrd_gpa = gpa,
								 .initrd_size = size},
					   NULL),
			 0);
	ck_assert_int_eq(
		guest_mem_read(&m, LAYOUT_ZERO_PAGE + BOOT_SETUP_HDR_OFFSET, &h, sizeof(h)), 0);
	ck_assert_uint_eq(h.header, BOOT_HDRS_MAGIC);
	ck_assert_uint_eq(h.type_of_loader, 0xff);
	ck_assert_uint_eq(h.ramdisk_image, gpa);
	ck_assert_uint_eq(h.init_size, ki.hdr.init_size);
	guest_mem_destroy(&m);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("loader_bzimage");
	TCase *tc = tcase_create("bzimage");

	tcase_add_test(tc, loads_at_pref_address);
	tcase_add_test(tc, falls_back_to_1mib);
	tcase_add_test(tc, setup_sects_zero_means_four);
	tcase_add_test(tc, trailing_signature_is_ignored);
	tcase_add_test(tc, header_fields_are_checked);
	tcase_add_test(tc, old_version_message);
	tcase_add_test(tc, every_truncation_is_refused);
	tcase_add_test(tc, initrd_goes_high_and_aligned);
	tcase_add_test(tc, initrd_respects_initrd_addr_max);
	tcase_add_test(tc, initrd_with_high_memory);
	tcase_add_test(tc, initrd_that_does_not_fit);
	tcase_add_test(tc, real_bzimage);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
