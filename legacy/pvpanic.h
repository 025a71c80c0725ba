/*
 * The ISA pvpanic port (LAYOUT_PORT_PVPANIC, one byte, region 0). A read tells the guest
 * which events the host understands; a write with PANICKED ends the VM with the guest-panic
 * status, CRASH_LOADED (a crash kernel took over) is only logged.
 */
#ifndef CROSVM_LEGACY_PVPANIC_H
#define CROSVM_LEGACY_PVPANIC_H

#include "core/util.h"

struct device;
struct logger;
struct vm_events;

#define PVPANIC_PANICKED     0x01
#define PVPANIC_CRASH_LOADED 0x02

/* ev (the VM's request handle, for the panic exit) must outlive the device. */
int pvpanic_create(const struct vm_events *ev, const struct logger *lg,
		   struct device **out) MUST_CHECK;

#endif
