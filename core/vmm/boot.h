/*
 * Everything the guest receives before its first instruction: the kernel and initrd in
 * memory, the command line, the ACPI tables, the device tree, and the zero page or the PVH
 * start info. The result is the boot vCPU's entry description.
 */
#ifndef CROSVM_CORE_VMM_BOOT_H
#define CROSVM_CORE_VMM_BOOT_H

#include "vcpu/vcpu.h"

struct vm;
struct vm_config;

/* Builds the kernel command line crosvm-style (exposed for unit tests). */
struct cmdline;
int boot_build_cmdline(const struct vm_config *cfg, struct cmdline *c) MUST_CHECK;

int boot_setup(struct vm *vm, struct vcpu_boot *boot) MUST_CHECK;

#endif
