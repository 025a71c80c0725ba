/* The Xen PVH start of day data: struct hvm_start_info, which the guest finds through EBX. */
#ifndef CROSVM_CORE_BOOT_PVH_H
#define CROSVM_CORE_BOOT_PVH_H

#include "core/boot/loader.h"

/*
 * Writes hvm_start_info (version 1, magic XEN_HVM_START_MAGIC) at LAYOUT_PVH_START_INFO,
 * followed by the module list (the initrd as module 0, if any) and the e820 memory map, and
 * the command line at LAYOUT_CMDLINE. Returns the address of hvm_start_info in *start_info.
 * -E2BIG if the command line exceeds LAYOUT_CMDLINE_MAX - 1 bytes.
 */
int pvh_write(const struct guest_mem *m, const struct boot_config *bc,
	      uint64_t *start_info) MUST_CHECK;

#endif
