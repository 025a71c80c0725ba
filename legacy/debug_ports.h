/*
 * Ports a PC guest touches that only need a harmless answer, gathered in one device with one
 * region per range. KVM's in-kernel irqchip already owns 0x20/0x21, 0xa0/0xa1, 0x40-0x43,
 * 0x61 and the ELCR at 0x4d0/0x4d1, so none of those is claimed here.
 */
#ifndef CROSVM_LEGACY_DEBUG_PORTS_H
#define CROSVM_LEGACY_DEBUG_PORTS_H

#include <stdint.h>
#include "core/util.h"

struct device;
struct logger;

struct port_range {
	uint16_t base, len;
};

/* The debugcon port: leave this range unregistered when a debugcon serial port owns it. */
#define DEBUG_PORTS_DEBUGCON 0x402

/*
 * Creates the device; *ranges (static, *nr entries) lists its port ranges in region order:
 * the caller registers ranges[i] as region i.
 */
int debug_ports_create(const struct logger *lg, struct device **out,
		       const struct port_range **ranges, unsigned *nr) MUST_CHECK;

#endif
