/*
 * The i8042 keyboard controller, reduced to what a PC guest needs: the reset line (command
 * 0xFE, or the output port's reset bit) and answers to the boot-time probing of Linux's i8042
 * driver. No keyboard and no AUX port are attached, so no key data is ever produced.
 * Region 0 is port 0x60 (data), region 1 port 0x64 (status/command); port 0x61 belongs to
 * KVM's PIT.
 */
#ifndef CROSVM_LEGACY_I8042_H
#define CROSVM_LEGACY_I8042_H

#include "core/util.h"

struct device;
struct logger;
struct vm_events;

/* ev (the VM's request handle, for the 0xFE reset) must outlive the device. */
int i8042_create(const struct vm_events *ev, const struct logger *lg,
		 struct device **out) MUST_CHECK;

#endif
