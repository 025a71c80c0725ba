#include "rtc.h"
#include "io.h"
#include "str.h"

#define RTC_SEC	   0x00
#define RTC_MIN	   0x02
#define RTC_HOUR   0x04
#define RTC_DAY	   0x07
#define RTC_MONTH  0x08
#define RTC_YEAR   0x09
#define RTC_REG_A  0x0a
#define RTC_REG_B  0x0b
#define REG_A_UIP  0x80
#define REG_B_24H  0x02
#define REG_B_BIN  0x04
#define HOUR_PM	   0x80
#define UIP_POLLS  20000 /* UIP stays up for about 2 ms a second */
#define READ_TRIES 5

struct raw {
	uint8_t sec, min, hour, day, month, year, century;
};

uint8_t cmos_read(uint8_t reg)
{
	outb(CMOS_INDEX, reg);
	return inb(CMOS_DATA);
}

static int read_raw(uint8_t century_reg, struct raw *r)
{
	unsigned i;

	for (i = 0; i < UIP_POLLS; i++) {
		if (!(cmos_read(RTC_REG_A) & REG_A_UIP))
			break;
	}
	if (i == UIP_POLLS)
		return -ETIMEDOUT;
	r->sec = cmos_read(RTC_SEC);
	r->min = cmos_read(RTC_MIN);
	r->hour = cmos_read(RTC_HOUR);
	r->day = cmos_read(RTC_DAY);
	r->month = cmos_read(RTC_MONTH);
	r->year = cmos_read(RTC_YEAR);
	r->century = century_reg ? cmos_read(century_reg) : 0;
	return 0;
}

static uint8_t from_bcd(uint8_t v)
{
	return (uint8_t)((v >> 4) * 10 + (v & 15));
}

int rtc_read(struct guest *g, struct rtc_time *t)
{
	uint8_t century_reg = g->have_acpi ? g->acpi.century : 0;
	struct raw a, b;
	bool bin;
	int rc, tries;

	/* Nothing decodes the ports: every read floats to 0xff. */
	if (cmos_read(RTC_REG_A) == 0xff && cmos_read(RTC_REG_B) == 0xff)
		return -ENODEV;
	/* Two equal reads in a row cannot straddle an update. */
	rc = read_raw(century_reg, &a);
	for (tries = 0; rc == 0 && tries < READ_TRIES; tries++) {
		rc = read_raw(century_reg, &b);
		if (rc == 0 && memcmp(&a, &b, sizeof(a)) == 0)
			break;
		a = b;
	}
	if (rc)
		return rc;
	if (tries == READ_TRIES)
		return -ETIMEDOUT;

	t->reg_b = cmos_read(RTC_REG_B);
	bin = t->reg_b & REG_B_BIN;
	t->sec = bin ? a.sec : from_bcd(a.sec);
	t->min = bin ? a.min : from_bcd(a.min);
	t->day = bin ? a.day : from_bcd(a.day);
	t->month = bin ? a.month : from_bcd(a.month);
	t->year = bin ? a.year : from_bcd(a.year);
	{
		bool pm = a.hour & HOUR_PM;
		uint8_t h = a.hour & (uint8_t)~HOUR_PM;

		h = bin ? h : from_bcd(h);
		if (!(t->reg_b & REG_B_24H)) {
			/* 12-hour clock: 12 AM is midnight, 12 PM is noon. */
			if (h == 12)
				h = 0;
			if (pm)
				h += 12;
		}
		t->hour = h;
	}
	if (century_reg && a.century)
		t->year += 100u * (bin ? a.century : from_bcd(a.century));
	else
		t->year += 2000;
	return 0;
}

bool rtc_plausible(const struct rtc_time *t)
{
	static const uint8_t mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (t->year < 2000 || t->year > 2099 || t->month < 1 || t->month > 12)
		return false;
	if (t->day < 1 || t->day > mdays[t->month - 1])
		return false;
	return t->hour < 24 && t->min < 60 && t->sec < 60;
}
