/*
 * Our own definitions of the binary interfaces a guest kernel reads at boot:
 *  - the Linux/x86 boot protocol (Documentation/arch/x86/boot.rst and zero-page.rst): the
 *    setup header at offset 0x1f1 of a bzImage, the zero page (struct boot_params) and the
 *    setup_data list;
 *  - the Xen PVH start of day structures (xen/include/public/arch-x86/hvm/start_info.h).
 * Offsets are pinned with _Static_assert because the guest reads them by offset.
 */
#ifndef CROSVM_CORE_BOOT_BOOTPARAM_H
#define CROSVM_CORE_BOOT_BOOTPARAM_H

#include <stddef.h>
#include <stdint.h>
#include "core/boot/e820.h"

/* ---- Linux boot protocol ---- */

#define BOOT_FLAG_MAGIC		      0xaa55
#define BOOT_HDRS_MAGIC		      0x53726448 /* "HdrS" */
#define BOOT_SETUP_HDR_OFFSET	      0x1f1
#define BOOT_SECTOR_SIZE	      512
#define BOOT_DEFAULT_SETUP_SECTS      4 /* setup_sects 0 means 4 */
#define BOOT_TYPE_OF_LOADER_UNDEFINED 0xff

/* loadflags */
#define BOOT_LOADED_HIGH   (1u << 0)
#define BOOT_KASLR_FLAG	   (1u << 1)
#define BOOT_QUIET_FLAG	   (1u << 5)
#define BOOT_KEEP_SEGMENTS (1u << 6)
#define BOOT_CAN_USE_HEAP  (1u << 7)

/* xloadflags */
#define BOOT_XLF_KERNEL_64		(1u << 0)
#define BOOT_XLF_CAN_BE_LOADED_ABOVE_4G (1u << 1)

/* setup_data types */
#define SETUP_NONE     0
#define SETUP_E820_EXT 1
#define SETUP_DTB      2
#define SETUP_PCI      3
#define SETUP_EFI      4
#define SETUP_RNG_SEED 9

struct setup_header {
	uint8_t setup_sects;
	uint16_t root_flags;
	uint32_t syssize;
	uint16_t ram_size;
	uint16_t vid_mode;
	uint16_t root_dev;
	uint16_t boot_flag;
	uint16_t jump;
	uint32_t header;
	uint16_t version;
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader;
	uint8_t loadflags;
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image;
	uint32_t ramdisk_size;
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint8_t relocatable_kernel;
	uint8_t min_alignment;
	uint16_t xloadflags;
	uint32_t cmdline_size;
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t handover_offset;
	uint32_t kernel_info_offset;
} __attribute__((packed));

/* Offsets below are within the bzImage file / the zero page, as boot.rst lists them. */
#define SH_OFF(f) (BOOT_SETUP_HDR_OFFSET + offsetof(struct setup_header, f))
_Static_assert(SH_OFF(setup_sects) == 0x1f1, "setup_sects");
_Static_assert(SH_OFF(syssize) == 0x1f4, "syssize");
_Static_assert(SH_OFF(vid_mode) == 0x1fa, "vid_mode");
_Static_assert(SH_OFF(boot_flag) == 0x1fe, "boot_flag");
_Static_assert(SH_OFF(jump) == 0x200, "jump");
_Static_assert(SH_OFF(header) == 0x202, "header");
_Static_assert(SH_OFF(version) == 0x206, "version");
_Static_assert(SH_OFF(type_of_loader) == 0x210, "type_of_loader");
_Static_assert(SH_OFF(loadflags) == 0x211, "loadflags");
_Static_assert(SH_OFF(code32_start) == 0x214, "code32_start");
_Static_assert(SH_OFF(ramdisk_image) == 0x218, "ramdisk_image");
_Static_assert(SH_OFF(heap_end_ptr) == 0x224, "heap_end_ptr");
_Static_assert(SH_OFF(cmd_line_ptr) == 0x228, "cmd_line_ptr");
_Static_assert(SH_OFF(initrd_addr_max) == 0x22c, "initrd_addr_max");
_Static_assert(SH_OFF(kernel_alignment) == 0x230, "kernel_alignment");
_Static_assert(SH_OFF(relocatable_kernel) == 0x234, "relocatable_kernel");
_Static_assert(SH_OFF(xloadflags) == 0x236, "xloadflags");
_Static_assert(SH_OFF(cmdline_size) == 0x238, "cmdline_size");
_Static_assert(SH_OFF(payload_offset) == 0x248, "payload_offset");
_Static_assert(SH_OFF(setup_data) == 0x250, "setup_data");
_Static_assert(SH_OFF(pref_address) == 0x258, "pref_address");
_Static_assert(SH_OFF(init_size) == 0x260, "init_size");
_Static_assert(SH_OFF(kernel_info_offset) == 0x268, "kernel_info_offset");
_Static_assert(sizeof(struct setup_header) == 0x26c - 0x1f1, "setup_header size");

/* The zero page. Only the fields a loader fills are named; the rest is padding we zero. */
struct boot_params {
	uint8_t screen_info[0x40];
	uint8_t apm_bios_info[0x14];
	uint8_t _pad2[4];
	uint64_t tboot_addr;
	uint8_t ist_info[0x10];
	uint64_t acpi_rsdp_addr;
	uint8_t _pad3[8];
	uint8_t hd0_info[16];
	uint8_t hd1_info[16];
	uint8_t sys_desc_table[0x10];
	uint8_t olpc_ofw_header[0x10];
	uint32_t ext_ramdisk_image;
	uint32_t ext_ramdisk_size;
	uint32_t ext_cmd_line_ptr;
	uint8_t _pad4[112];
	uint32_t cc_blob_address;
	uint8_t edid_info[0x80];
	uint8_t efi_info[0x20];
	uint32_t alt_mem_k;
	uint32_t scratch;
	uint8_t e820_entries;
	uint8_t eddbuf_entries;
	uint8_t edd_mbr_sig_buf_entries;
	uint8_t kbd_status;
	uint8_t secure_boot;
	uint8_t _pad5[2];
	uint8_t sentinel;
	uint8_t _pad6[1];
	struct setup_header hdr;
	uint8_t _pad7[0x290 - 0x1f1 - sizeof(struct setup_header)];
	uint32_t edd_mbr_sig_buffer[16];
	struct e820_entry e820_table[E820_MAX_ENTRIES];
	uint8_t _pad8[48];
	uint8_t eddbuf[6 * 82];
	uint8_t _pad9[276];
} __attribute__((packed));

_Static_assert(offsetof(struct boot_params, acpi_rsdp_addr) == 0x070, "acpi_rsdp_addr");
_Static_assert(offsetof(struct boot_params, ext_ramdisk_image) == 0x0c0, "ext_ramdisk_image");
_Static_assert(offsetof(struct boot_params, ext_ramdisk_size) == 0x0c4, "ext_ramdisk_size");
_Static_assert(offsetof(struct boot_params, ext_cmd_line_ptr) == 0x0c8, "ext_cmd_line_ptr");
_Static_assert(offsetof(struct boot_params, cc_blob_address) == 0x13c, "cc_blob_address");
_Static_assert(offsetof(struct boot_params, alt_mem_k) == 0x1e0, "alt_mem_k");
_Static_assert(offsetof(struct boot_params, e820_entries) == 0x1e8, "e820_entries");
_Static_assert(offsetof(struct boot_params, sentinel) == 0x1ef, "sentinel");
_Static_assert(offsetof(struct boot_params, hdr) == 0x1f1, "hdr");
_Static_assert(offsetof(struct boot_params, edd_mbr_sig_buffer) == 0x290, "edd_mbr_sig_buffer");
_Static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "e820_table");
_Static_assert(offsetof(struct boot_params, eddbuf) == 0xd00, "eddbuf");
_Static_assert(sizeof(struct e820_entry) == 20, "e820 entry");
_Static_assert(sizeof(struct boot_params) == 4096, "boot_params is one page");

/* Header of one element of the setup_data list; data follows, the next one is 8-aligned. */
struct setup_data {
	uint64_t next;
	uint32_t type;
	uint32_t len;
} __attribute__((packed));
_Static_assert(sizeof(struct setup_data) == 16, "setup_data");

/* ---- Xen PVH ---- */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define XEN_HVM_START_MAGIC	 0x336ec578

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	/* version 1 */
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
_Static_assert(offsetof(struct hvm_start_info, modlist_paddr) == 16, "modlist_paddr");
_Static_assert(offsetof(struct hvm_start_info, rsdp_paddr) == 32, "rsdp_paddr");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == 40, "memmap_paddr");
_Static_assert(offsetof(struct hvm_start_info, memmap_entries) == 48, "memmap_entries");
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info");

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry");

/* The type field takes the e820 numbers (XEN_HVM_MEMMAP_TYPE_RAM == E820_RAM ...). */
struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry");

#endif
