/* The zero page (struct boot_params) that a Linux kernel entered at its 64-bit entry reads. */
#ifndef CROSVM_CORE_BOOT_BOOT_PARAMS_H
#define CROSVM_CORE_BOOT_BOOT_PARAMS_H

#include "core/boot/loader.h"

/*
 * Writes the zero page at LAYOUT_ZERO_PAGE: the setup header (from the bzImage, or
 * synthesized for an ELF kernel), type_of_loader 0xff, the command line at LAYOUT_CMDLINE,
 * the e820 table, the initrd (incl. ext_ramdisk_*), acpi_rsdp_addr and the setup_data list
 * (SETUP_DTB, SETUP_RNG_SEED) inside [LAYOUT_SETUP_DATA, LAYOUT_SETUP_DATA_END).
 * -E2BIG if the command line exceeds the kernel's cmdline_size or the setup_data window.
 */
int boot_params_write(const struct guest_mem *m, const struct kernel_info *ki,
		      const struct boot_config *bc, const struct logger *lg) MUST_CHECK;

#endif
