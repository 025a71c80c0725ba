/*
 * The CMOS RAM and MC146818 real-time clock: region 0 is ports 0x70 (index; bit 7 is the NMI
 * mask, kept as written) and 0x71 (data). The clock shows host UTC plus an offset; a guest
 * that sets the clock moves only its own offset, never the host clock. The memory-size bytes
 * are filled in as firmware would; the rest of the 128 bytes is plain NVRAM.
 */
#ifndef CROSVM_LEGACY_CMOS_H
#define CROSVM_LEGACY_CMOS_H

#include <stdint.h>
#include <time.h>
#include "core/util.h"

struct device;
struct logger;

#define CMOS_SIZE 128

/* Register indexes. */
enum {
	CMOS_SEC = 0x00,
	CMOS_MIN = 0x02,
	CMOS_HOUR = 0x04,
	CMOS_WDAY = 0x06,
	CMOS_MDAY = 0x07,
	CMOS_MON = 0x08,
	CMOS_YEAR = 0x09,
	CMOS_REG_A = 0x0a,
	CMOS_REG_B = 0x0b,
	CMOS_REG_C = 0x0c,
	CMOS_REG_D = 0x0d,
	CMOS_CENTURY = 0x32,
};

#define CMOS_A_UIP  0x80 /* update in progress: the 244 us before a second ticks */
#define CMOS_B_SET  0x80 /* updates halted while the guest sets the clock */
#define CMOS_B_UIE  0x10
#define CMOS_B_DM   0x04 /* binary instead of BCD */
#define CMOS_B_24H  0x02
#define CMOS_C_IRQF 0x80
#define CMOS_C_UF   0x10 /* a second ticked since C was last read */
#define CMOS_D_VRT  0x80

struct cmos_params {
	uint64_t mem_below_4g, mem_above_4g; /* bytes of guest RAM */
	const struct logger *log;
	int (*now)(void *ctx, struct timespec *ts); /* NULL: CLOCK_REALTIME */
	void *now_ctx;
};

int cmos_create(const struct cmos_params *p, struct device **out) MUST_CHECK;

#endif
