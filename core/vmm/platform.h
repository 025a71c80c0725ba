/* The legacy platform devices (serial ports, i8042, CMOS, ACPI PM, pvpanic, debug ports). */
#ifndef CROSVM_CORE_VMM_PLATFORM_H
#define CROSVM_CORE_VMM_PLATFORM_H

#include "core/util.h"

struct vm;

int platform_create(struct vm *vm) MUST_CHECK;
/*
 * pvpanic-pci, which crosvm always has, on the next PCI slot: called after the virtio devices,
 * as crosvm adds it after them (their slots stay where they were).
 */
int platform_create_pvpanic_pci(struct vm *vm) MUST_CHECK;

#endif
