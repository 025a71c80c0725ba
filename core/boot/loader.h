/*
 * Kernel and initrd loaders. They only fill guest memory and describe the entry; the vCPU
 * register state (page tables, GDT, RIP/RSI/EBX) is set up in vcpu/ from struct kernel_info.
 *
 * Three formats, recognised from the file contents (never from its name):
 *  - ELF64 vmlinux: segments at p_paddr, entered at e_entry in 64-bit long mode with RSI
 *    pointing at the zero page;
 *  - bzImage (boot protocol 2.06+ with XLF_KERNEL_64): the protected-mode part at its
 *    load address, entered at load address + 0x200 in long mode, RSI = zero page;
 *  - PVH: an ELF (64 or 32 bit) with a XEN_ELFNOTE_PHYS32_ENTRY note, entered at the note's
 *    address in 32-bit protected mode with EBX = hvm_start_info.
 */
#ifndef CROSVM_CORE_BOOT_LOADER_H
#define CROSVM_CORE_BOOT_LOADER_H

#include <stdbool.h>
#include <stdint.h>
#include "core/boot/bootparam.h"
#include "core/guest_mem.h"
#include "core/log.h"

/* Where an initrd may end when the kernel does not say (boot protocol < 2.03, ELF). */
#define LOADER_INITRD_ADDR_MAX_DEFAULT 0x37ffffffULL
/* Maximum command line length (without the NUL) when the kernel does not say. */
#define LOADER_CMDLINE_SIZE_DEFAULT 2047u

enum boot_protocol { BOOT_PROTO_AUTO, BOOT_PROTO_LINUX, BOOT_PROTO_PVH };
enum kernel_kind { KERNEL_ELF64, KERNEL_BZIMAGE, KERNEL_PVH };

struct kernel_info {
	enum kernel_kind kind;
	/*
	 * ELF64: e_entry (64-bit, long mode); bzImage: load address + 0x200; PVH: the
	 * XEN_ELFNOTE_PHYS32_ENTRY address (32-bit protected mode).
	 */
	uint64_t entry;
	/* Guest-physical extent of the image (end exclusive; bzImage: load + max(init_size, size)).
	 */
	uint64_t start, end;
	bool has_setup_header;	  /* bzImage: hdr is valid */
	struct setup_header hdr;  /* bzImage: copied from the file (0x1f1..) to seed boot_params */
	uint64_t initrd_addr_max; /* last byte address an initrd may occupy */
	uint32_t cmdline_size;	  /* max command line length without the NUL */
};

/* What the boot data (zero page or hvm_start_info) describes besides the kernel. */
struct boot_config {
	const char *cmdline;		  /* the complete command line (see cmdline.h) */
	uint64_t initrd_gpa, initrd_size; /* size 0: none */
	const void *dtb;		  /* optional: added to setup_data as SETUP_DTB */
	size_t dtb_size;
	const void *rng_seed; /* optional: added as SETUP_RNG_SEED */
	size_t rng_seed_size;
	uint64_t acpi_rsdp; /* 0: none */
};

/*
 * Detects the format of the kernel in fd and loads it into m.
 * AUTO: an ELF with a PVH note boots through PVH (as QEMU and Firecracker do), an ELF64
 * without one through its 64-bit entry, anything else must be a bzImage. LINUX forces the
 * 64-bit ELF/bzImage entry; PVH forces PVH (-ENOEXEC if there is no note).
 * Every refusal returns -errno (-ENOEXEC for a malformed or unsupported image, -EINVAL for
 * something that is not a regular file) and logs one message saying what is wrong. Nothing
 * is written to guest memory unless every check passed.
 */
int kernel_load(const struct guest_mem *m, int fd, enum boot_protocol proto, struct kernel_info *ki,
		const struct logger *lg) MUST_CHECK;

/*
 * Places the initrd in fd high in low memory: page aligned, ending at or below
 * min(initrd_addr_max, end of RAM below 4 GiB), above the kernel. -EFBIG if the file is larger
 * than that window, -ENOSPC if it would collide with the kernel, -EINVAL if it is empty or not
 * a regular file. *gpa and *size are only written on success.
 */
int initrd_load(const struct guest_mem *m, int fd, const struct kernel_info *ki, uint64_t *gpa,
		uint64_t *size, const struct logger *lg) MUST_CHECK;

/* The ELF back end, called by kernel_load() (in loader_bzimage.c); not for other callers. */
int loader_elf_load(const struct guest_mem *m, int fd, uint64_t file_size, enum boot_protocol proto,
		    struct kernel_info *ki, const struct logger *lg) MUST_CHECK;
bool loader_is_elf(const uint8_t *head, size_t len);

#endif
