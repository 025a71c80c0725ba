/*
 * The ACPI PM register block (ACPI 6.5, 4.8): PM1a event (status + enable), PM1a control
 * and GPE0 (64 status bits, then 64 enable bits), in one I/O region at LAYOUT_PORT_ACPI_PM.
 * ACPI is always enabled (no SMI_CMD, SCI_EN reads 1) and there is no PM timer. The power
 * and sleep buttons are fixed features. GBL_EN and RTC_EN keep what the OS writes, as the
 * spec requires of them and as ACPICA checks by reading them back, but their status bits
 * are never set: no firmware shares the global lock and the RTC has no alarm. Writing SLP_EN
 * with the \_S5 sleep type powers the VM off; other sleep types are ignored.
 * core/boot/acpi.c describes this block in the FADT.
 */
#ifndef CROSVM_LEGACY_ACPI_PM_H
#define CROSVM_LEGACY_ACPI_PM_H

#include <stdbool.h>
#include "core/util.h"

struct device;
struct logger;
struct vm_events;

/* Byte offsets inside the region and register block lengths (the FADT *_LEN fields). */
#define ACPI_PM_PM1_EVT_OFF 0 /* PM1_STS at +0, PM1_EN at +2 */
#define ACPI_PM_PM1_EVT_LEN 4
#define ACPI_PM_PM1_CNT_OFF 4
#define ACPI_PM_PM1_CNT_LEN 2
#define ACPI_PM_GPE0_OFF    8 /* GPE0_STS at +8, GPE0_EN at +16 */
#define ACPI_PM_GPE0_LEN    16
#define ACPI_PM_IO_LEN	    24
#define ACPI_PM_NR_GPES	    64

/* PM1_STS / PM1_EN bits. */
#define ACPI_PM1_GBL	(1u << 5) /* global lock release (no firmware ever sets it) */
#define ACPI_PM1_PWRBTN (1u << 8)
#define ACPI_PM1_SLPBTN (1u << 9)
#define ACPI_PM1_RTC	(1u << 10) /* RTC alarm (the CMOS device has no alarm: never set) */
#define ACPI_PM1_WAK	(1u << 15) /* status only */

/* PM1_CNT bits. */
#define ACPI_PM1_CNT_SCI_EN	   (1u << 0)
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK  (7u << 10)
#define ACPI_PM1_CNT_SLP_EN	   (1u << 13)

/* The SLP_TYP value of \_S5 in core/boot/dsdt.asl. */
#define ACPI_PM_SLP_TYP_S5 5

struct acpi_pm_params {
	const struct vm_events *ev; /* S5 -> VM_EXIT_STOP */
	/*
	 * The SCI, a level-triggered irqfd (core/irq.h, irq_level_eventfd_create) like any
	 * device interrupt: the device raises it by writing sci_fd while an enabled event is
	 * pending; KVM lowers it at the guest's EOI and signals sci_resample_fd, which the device
	 * watches on its loop (start) to raise it again if needed. The device owns both fds.
	 */
	int sci_fd, sci_resample_fd;
	const struct logger *log;
};

/*
 * Region 0 of the device is the whole block: ACPI_PM_IO_LEN bytes from LAYOUT_PORT_ACPI_PM.
 * On failure the fds stay the caller's.
 */
int acpi_pm_create(const struct acpi_pm_params *p, struct device **out) MUST_CHECK;

/*
 * The control socket's fixed events and GPEs are device commands (core/device.h):
 * DEV_CMD_POWER_BUTTON, DEV_CMD_SLEEP_BUTTON and DEV_CMD_GPE (-EINVAL for a number
 * >= ACPI_PM_NR_GPES). Each sets its status bit; the SCI rises if the guest enabled the event.
 */

#endif
