/*
 * Ending the VM the ways a VMM must handle: ACPI S5 poweroff (PM1 control block, or the
 * sleep control register of a hardware-reduced FADT), reset (FADT reset register, else the
 * i8042), a pvpanic event and a triple fault. When a request has no effect the guest says so
 * with a FAIL line and falls back to a triple fault, so a test never hangs on it.
 */
#ifndef GUEST_POWER_H
#define GUEST_POWER_H

#include "guest.h"

#define PVPANIC_PORT	 0x505
#define PVPANIC_PANICKED 1
#define I8042_COMMAND	 0x64
#define I8042_CMD_RESET	 0xfe

NORETURN void power_off(struct guest *g);
/*
 * Only the register writes of power_off (ACPI S5) and power_reset (the FADT reset register):
 * they return right after the write, so a guest can check that the VMM ran it no further.
 * 0, or -ENOENT/-ENODATA when the tables give no such register.
 */
int power_off_request(struct guest *g);
int power_reset_request(struct guest *g);
NORETURN void power_reset(struct guest *g);
NORETURN void power_triple_fault(void);
/* Signals a guest panic to pvpanic; returns if the VMM let the guest run on. */
int power_panic(struct guest *g);

#endif
