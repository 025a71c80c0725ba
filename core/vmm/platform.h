/* The legacy platform devices (serial ports, i8042, CMOS, ACPI PM, pvpanic, debug ports). */
#ifndef CROSVM_CORE_VMM_PLATFORM_H
#define CROSVM_CORE_VMM_PLATFORM_H

#include "core/util.h"

struct vm;

int platform_create(struct vm *vm) MUST_CHECK;

#endif
