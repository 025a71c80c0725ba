/*
 * The flattened device tree handed to an x86 Linux guest through setup_data (SETUP_DTB), as
 * crosvm does: root cells, /chosen (bootargs, initrd) and one /memory@ node per RAM range.
 */
#ifndef CROSVM_CORE_BOOT_FDT_H
#define CROSVM_CORE_BOOT_FDT_H

#include <stddef.h>
#include <stdint.h>
#include "core/guest_mem.h"

#define FDT_COMPATIBLE "crosvm,x86_64"

struct fdt_params {
	const struct guest_mem *mem;
	const char *cmdline;		  /* NULL: no bootargs */
	uint64_t initrd_gpa, initrd_size; /* size 0: none */
};

/* Builds the blob into buf; *len is its total size. -ENOSPC if size is too small. */
int fdt_build(const struct fdt_params *p, void *buf, size_t size, size_t *len) MUST_CHECK;

#endif
