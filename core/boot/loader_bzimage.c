/*
 * bzImage kernels (Linux boot protocol, Documentation/arch/x86/boot.rst), entered through the
 * 64-bit entry point, and the format dispatch of kernel_load().
 */
#include "core/boot/loader.h"
#include "core/layout.h"

#include <string.h>
#include <sys/stat.h>

#define BZ_MIN_VERSION	  0x0206
#define BZ_ENTRY64_OFFSET 0x200 /* startup_64 is 0x200 past the protected-mode start */
#define BZ_HEAD_LEN	  0x300 /* covers the whole setup header */
#define BZ_JUMP_OFFSET	  0x200 /* the header ends at 0x202 + the byte at 0x201 */

static bool is_bzimage(const uint8_t *head, size_t len)
{
	return len >= BOOT_SETUP_HDR_OFFSET + offsetof(struct setup_header, version) &&
	       get_le(head + SH_OFF(boot_flag), 2) == BOOT_FLAG_MAGIC &&
	       get_le(head + SH_OFF(header), 4) == BOOT_HDRS_MAGIC;
}

/* Copies the setup header as far as this kernel defines it; later fields stay zero. */
static int copy_header(const uint8_t *head, size_t len, struct setup_header *hdr,
		       const struct logger *lg)
{
	size_t end = BZ_JUMP_OFFSET + 2 + (size_t)head[BZ_JUMP_OFFSET + 1];
	size_t n;

	if (len < SH_OFF(version) + 2) {
		log_err(lg, "kernel: bzImage setup header truncated (%zu bytes)", len);
		return -ENOEXEC;
	}
	*hdr = (struct setup_header){0};
	hdr->version = get_le(head + SH_OFF(version), 2);
	if (hdr->version < BZ_MIN_VERSION) {
		log_err(lg, "kernel: bzImage setup header version 0x%04x is too old (need 2.06+)",
			hdr->version);
		return -ENOEXEC;
	}
	/* A 2.06 header reaches cmdline_size; anything shorter is not what it claims. */
	if (end < SH_OFF(cmdline_size) + 4 || end > len) {
		log_err(lg,
			"kernel: bzImage setup header ends at 0x%zx (file %zu bytes, version "
			"0x%04x needs 0x%zx)",
			end, len, hdr->version, (size_t)SH_OFF(cmdline_size) + 4);
		return -ENOEXEC;
	}
	n = MIN(end - BOOT_SETUP_HDR_OFFSET, sizeof(*hdr));
	memcpy(hdr, head + BOOT_SETUP_HDR_OFFSET, n);
	return 0;
}

static int check_header(const struct setup_header *hdr, uint64_t file_size, uint64_t *setup,
			uint64_t *sys, const struct logger *lg)
{
	uint64_t sects = hdr->setup_sects ? hdr->setup_sects : BOOT_DEFAULT_SETUP_SECTS;

	*setup = (sects + 1) * BOOT_SECTOR_SIZE;
	*sys = (uint64_t)hdr->syssize * 16;
	if (*setup > file_size) {
		log_err(lg,
			"kernel: bzImage truncated: %llu setup sectors need %llu bytes, the "
			"file has %llu",
			(unsigned long long)sects, (unsigned long long)*setup,
			(unsigned long long)file_size);
		return -ENOEXEC;
	}
	if (!*sys) {
		log_err(lg, "kernel: bzImage syssize is 0 (no protected-mode kernel)");
		return -ENOEXEC;
	}
	/* Longer is fine: signed images carry their signature after the kernel. */
	if (*sys > file_size - *setup) {
		log_err(lg,
			"kernel: bzImage truncated: setup 0x%llx + kernel 0x%llx (syssize) "
			"bytes, the file has 0x%llx",
			(unsigned long long)*setup, (unsigned long long)*sys,
			(unsigned long long)file_size);
		return -ENOEXEC;
	}
	if (!(hdr->loadflags & BOOT_LOADED_HIGH)) {
		log_err(lg, "kernel: bzImage is not loaded high (zImage, loadflags 0x%02x)",
			hdr->loadflags);
		return -ENOEXEC;
	}
	if (!(hdr->xloadflags & BOOT_XLF_KERNEL_64)) {
		log_err(lg,
			"kernel: bzImage has no 64-bit entry point (xloadflags 0x%04x lacks "
			"XLF_KERNEL_64)",
			hdr->xloadflags);
		return -ENOEXEC;
	}
	if (!hdr->kernel_alignment || (hdr->kernel_alignment & (hdr->kernel_alignment - 1))) {
		log_err(lg, "kernel: bzImage kernel_alignment 0x%x is not a power of two",
			hdr->kernel_alignment);
		return -ENOEXEC;
	}
	if (!hdr->init_size) {
		log_err(lg, "kernel: bzImage init_size is 0");
		return -ENOEXEC;
	}
	return 0;
}

static bool fits_low(const struct guest_mem *m, uint64_t addr, uint64_t len)
{
	return !range_wraps(addr, len) && addr + len <= LAYOUT_4G && guest_mem_valid(m, addr, len);
}

/* pref_address if the kernel may be moved and it fits, else 1 MiB (boot.rst's default). */
static int pick_address(const struct guest_mem *m, const struct setup_header *hdr, uint64_t need,
			uint64_t *addr, const struct logger *lg)
{
	uint64_t pref = hdr->pref_address;

	if (hdr->relocatable_kernel && pref >= LAYOUT_HIGH_MEM_START &&
	    IS_ALIGNED(pref, hdr->kernel_alignment) && fits_low(m, pref, need)) {
		*addr = pref;
		return 0;
	}
	if (!fits_low(m, LAYOUT_HIGH_MEM_START, need)) {
		log_err(lg,
			"kernel: bzImage needs 0x%llx bytes (init_size) from 1 MiB, more than "
			"guest low memory (%llu MiB)",
			(unsigned long long)need,
			(unsigned long long)(guest_mem_below_4g(m) >> 20));
		return -ENOEXEC;
	}
	*addr = LAYOUT_HIGH_MEM_START;
	return 0;
}

static int bzimage_load(const struct guest_mem *m, int fd, uint64_t file_size, const uint8_t *head,
			size_t head_len, struct kernel_info *ki, const struct logger *lg)
{
	struct setup_header hdr;
	uint64_t setup, sys, need, addr;
	void *p;
	int ret;

	ret = copy_header(head, head_len, &hdr, lg);
	if (ret < 0)
		return ret;
	ret = check_header(&hdr, file_size, &setup, &sys, lg);
	if (ret < 0)
		return ret;
	need = MAX((uint64_t)hdr.init_size, sys);
	ret = pick_address(m, &hdr, need, &addr, lg);
	if (ret < 0)
		return ret;
	ret = guest_mem_ptr(m, addr, sys, &p);
	if (ret < 0)
		return ret;
	ret = pread_full(fd, p, sys, (off_t)setup);
	if (ret < 0) {
		log_err(lg, "kernel: cannot read the bzImage kernel: %s", strerror(-ret));
		return ret;
	}
	*ki = (struct kernel_info){
		.kind = KERNEL_BZIMAGE,
		.entry = addr + BZ_ENTRY64_OFFSET,
		.start = addr,
		.end = addr + need,
		.has_setup_header = true,
		.hdr = hdr,
		.initrd_addr_max =
			hdr.initrd_addr_max ? hdr.initrd_addr_max : LOADER_INITRD_ADDR_MAX_DEFAULT,
		.cmdline_size = hdr.cmdline_size,
	};
	return 0;
}

int kernel_load(const struct guest_mem *m, int fd, enum boot_protocol proto, struct kernel_info *ki,
		const struct logger *lg)
{
	uint8_t head[BZ_HEAD_LEN];
	size_t head_len;
	struct stat st;
	int ret;

	if (proto != BOOT_PROTO_AUTO && proto != BOOT_PROTO_LINUX && proto != BOOT_PROTO_PVH)
		return -EINVAL;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		log_err(lg, "kernel: cannot stat the file: %s", strerror(-ret));
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err(lg, "kernel: not a regular file");
		return -EINVAL;
	}
	if (st.st_size == 0) {
		log_err(lg, "kernel: the file is empty");
		return -ENOEXEC;
	}
	head_len = (size_t)MIN((uint64_t)st.st_size, sizeof(head));
	ret = pread_full(fd, head, head_len, 0);
	if (ret < 0) {
		log_err(lg, "kernel: cannot read the file: %s", strerror(-ret));
		return ret;
	}
	if (loader_is_elf(head, head_len))
		return loader_elf_load(m, fd, (uint64_t)st.st_size, proto, ki, lg);
	if (!is_bzimage(head, head_len)) {
		log_err(lg, "kernel: not an ELF or bzImage kernel");
		return -ENOEXEC;
	}
	if (proto == BOOT_PROTO_PVH) {
		log_err(lg, "kernel: PVH boot needs an ELF kernel with a XEN_ELFNOTE_PHYS32_ENTRY "
			    "note; this is a bzImage");
		return -ENOEXEC;
	}
	return bzimage_load(m, fd, (uint64_t)st.st_size, head, head_len, ki, lg);
}
