/*
 * The MC146818 CMOS clock at ports 0x70/0x71, decoded per register B (BCD or binary, 12 or
 * 24 hour), with the century from the FADT's CENTURY index when it has one.
 */
#ifndef GUEST_RTC_H
#define GUEST_RTC_H

#include "guest.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA  0x71

struct rtc_time {
	uint32_t year;
	uint8_t month, day, hour, min, sec;
	uint8_t reg_b; /* as read, for reporting */
};

uint8_t cmos_read(uint8_t reg);
/*
 * 0; -ENODEV when no CMOS answers; -ETIMEDOUT when update-in-progress never clears or the
 * values never settle.
 */
int rtc_read(struct guest *g, struct rtc_time *t);
bool rtc_plausible(const struct rtc_time *t);

#endif
