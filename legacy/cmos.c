#include "legacy/cmos.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/log.h"

#define NSEC_PER_SEC 1000000000L
#define UIP_NSEC     244000L /* UIP rises this long before each second ticks */
#define DIV_32KHZ    0x20    /* register A: the oscillator runs (time base 32.768 kHz) */
/* A guest can move its clock by at most this much: keeps every sum far from overflow. */
#define MAX_OFFSET ((int64_t)1 << 40)

struct cmos {
	struct device dev;
	pthread_mutex_t lock;
	const struct logger *log;
	int (*now)(void *ctx, struct timespec *ts);
	void *now_ctx;
	int64_t offset; /* guest clock minus host clock, seconds */
	int64_t c_sec;	/* guest second when register C was last read */
	uint8_t index;	/* last byte written to 0x70, NMI mask bit included */
	bool clock_err_logged, bad_time_logged;
	uint8_t ram[CMOS_SIZE];
};

static bool is_clock_reg(unsigned idx)
{
	return idx == CMOS_SEC || idx == CMOS_MIN || idx == CMOS_HOUR || idx == CMOS_WDAY ||
	       idx == CMOS_MDAY || idx == CMOS_MON || idx == CMOS_YEAR || idx == CMOS_CENTURY;
}

static struct timespec host_now(struct cmos *c)
{
	struct timespec ts = {0, 0};
	int ret = c->now ? c->now(c->now_ctx, &ts)
			 : (clock_gettime(CLOCK_REALTIME, &ts) < 0 ? -errno : 0);

	if (ret < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= NSEC_PER_SEC) {
		if (!c->clock_err_logged) {
			c->clock_err_logged = true;
			log_warn(c->log, "cmos: cannot read the host clock; the RTC shows 1970");
		}
		ts = (struct timespec){0, 0};
	}
	return ts;
}

static uint8_t to_reg(const struct cmos *c, unsigned v)
{
	v %= 100;
	return (c->ram[CMOS_REG_B] & CMOS_B_DM) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

static bool from_reg(const struct cmos *c, uint8_t raw, unsigned lo, unsigned hi, unsigned *v)
{
	if (c->ram[CMOS_REG_B] & CMOS_B_DM)
		*v = raw;
	else if ((raw & 0x0f) > 9 || (raw >> 4) > 9)
		return false;
	else
		*v = (raw >> 4) * 10u + (raw & 0x0fu);
	return *v >= lo && *v <= hi;
}

/* Fills the clock registers of regs[] with guest time t, in the guest's chosen format. */
static void encode_time(const struct cmos *c, int64_t t, uint8_t *regs)
{
	time_t tt = (time_t)t;
	struct tm tm;
	unsigned year, hour;

	if (!gmtime_r(&tt, &tm))
		memset(&tm, 0, sizeof(tm));
	year = (unsigned)MAX(tm.tm_year + 1900, 0);
	hour = (unsigned)tm.tm_hour;
	regs[CMOS_SEC] = to_reg(c, (unsigned)tm.tm_sec);
	regs[CMOS_MIN] = to_reg(c, (unsigned)tm.tm_min);
	if (c->ram[CMOS_REG_B] & CMOS_B_24H)
		regs[CMOS_HOUR] = to_reg(c, hour);
	else /* 12-hour clock: 12, 1..11 with bit 7 for PM */
		regs[CMOS_HOUR] = to_reg(c, hour % 12 ? hour % 12 : 12) | (hour >= 12 ? 0x80 : 0);
	regs[CMOS_WDAY] = to_reg(c, (unsigned)tm.tm_wday + 1);
	regs[CMOS_MDAY] = to_reg(c, (unsigned)tm.tm_mday);
	regs[CMOS_MON] = to_reg(c, (unsigned)tm.tm_mon + 1);
	regs[CMOS_YEAR] = to_reg(c, year % 100);
	regs[CMOS_CENTURY] = to_reg(c, year / 100);
}

static bool decode_time(const struct cmos *c, const uint8_t *regs, int64_t *t)
{
	unsigned sec, min, hour = 0, mday, mon, year, century;
	struct tm tm;
	bool ok;

	if (c->ram[CMOS_REG_B] & CMOS_B_24H) {
		ok = from_reg(c, regs[CMOS_HOUR], 0, 23, &hour);
	} else {
		ok = from_reg(c, regs[CMOS_HOUR] & 0x7f, 1, 12, &hour);
		hour = hour % 12 + ((regs[CMOS_HOUR] & 0x80) ? 12 : 0);
	}
	ok = ok && from_reg(c, regs[CMOS_SEC], 0, 59, &sec) &&
	     from_reg(c, regs[CMOS_MIN], 0, 59, &min) &&
	     from_reg(c, regs[CMOS_MDAY], 1, 31, &mday) &&
	     from_reg(c, regs[CMOS_MON], 1, 12, &mon) &&
	     from_reg(c, regs[CMOS_YEAR], 0, 99, &year) &&
	     from_reg(c, regs[CMOS_CENTURY], 0, 99, &century);
	if (!ok)
		return false;
	/* Years 0..9999 always convert; a day past the month's end rolls over as timegm does. */
	tm = (struct tm){.tm_sec = (int)sec,
			 .tm_min = (int)min,
			 .tm_hour = (int)hour,
			 .tm_mday = (int)mday,
			 .tm_mon = (int)mon - 1,
			 .tm_year = (int)(century * 100 + year) - 1900};
	*t = (int64_t)timegm(&tm);
	return true;
}

static int64_t guest_now(struct cmos *c, long *nsec)
{
	struct timespec ts = host_now(c);

	if (nsec)
		*nsec = ts.tv_nsec;
	return (int64_t)ts.tv_sec + c->offset;
}

/* The guest set its clock: remember the difference to host time. */
static void set_clock(struct cmos *c, const uint8_t *regs)
{
	int64_t t, off;

	if (!decode_time(c, regs, &t)) {
		if (!c->bad_time_logged) {
			c->bad_time_logged = true;
			log_warn(c->log, "cmos: guest wrote an invalid time; clock unchanged");
		}
		return;
	}
	off = t - (int64_t)host_now(c).tv_sec;
	c->offset = MAX(MIN(off, MAX_OFFSET), -MAX_OFFSET);
}

static uint8_t read_reg_a(struct cmos *c)
{
	long ns;
	uint8_t a = c->ram[CMOS_REG_A];

	guest_now(c, &ns);
	if (!(c->ram[CMOS_REG_B] & CMOS_B_SET) && (a & 0x70) == DIV_32KHZ &&
	    ns >= NSEC_PER_SEC - UIP_NSEC)
		a |= CMOS_A_UIP;
	return a;
}

/* Reading C clears it; UF reports that a second ticked since the previous read. */
static uint8_t read_reg_c(struct cmos *c)
{
	int64_t t = guest_now(c, NULL);
	uint8_t v = 0;

	if (t != c->c_sec && !(c->ram[CMOS_REG_B] & CMOS_B_SET))
		v |= CMOS_C_UF;
	c->c_sec = t;
	if (v & c->ram[CMOS_REG_B] & 0x70)
		v |= CMOS_C_IRQF;
	return v;
}

static uint8_t read_data(struct cmos *c, unsigned idx)
{
	if (is_clock_reg(idx) && !(c->ram[CMOS_REG_B] & CMOS_B_SET)) {
		uint8_t regs[CMOS_SIZE];

		encode_time(c, guest_now(c, NULL), regs);
		return regs[idx];
	}
	switch (idx) {
	case CMOS_REG_A:
		return read_reg_a(c);
	case CMOS_REG_C:
		return read_reg_c(c);
	case CMOS_REG_D:
		return CMOS_D_VRT;
	default:
		return c->ram[idx];
	}
}

static void write_reg_b(struct cmos *c, uint8_t val)
{
	bool was_set = c->ram[CMOS_REG_B] & CMOS_B_SET;

	c->ram[CMOS_REG_B] = val;
	/* SET freezes the clock registers so the guest can rewrite them field by field. */
	if ((val & CMOS_B_SET) && !was_set)
		encode_time(c, guest_now(c, NULL), c->ram);
	else if (!(val & CMOS_B_SET) && was_set)
		set_clock(c, c->ram);
}

static void write_data(struct cmos *c, unsigned idx, uint8_t val)
{
	if (is_clock_reg(idx) && (c->ram[CMOS_REG_B] & CMOS_B_SET)) {
		c->ram[idx] = val;
		return;
	}
	if (is_clock_reg(idx)) {
		/* One field changed while the clock runs: the others keep their current value. */
		uint8_t regs[CMOS_SIZE];

		encode_time(c, guest_now(c, NULL), regs);
		regs[idx] = val;
		set_clock(c, regs);
		return;
	}
	switch (idx) {
	case CMOS_REG_A:
		c->ram[idx] = val & (uint8_t)~CMOS_A_UIP;
		break;
	case CMOS_REG_B:
		write_reg_b(c, val);
		break;
	case CMOS_REG_C:
	case CMOS_REG_D:
		break;
	default:
		c->ram[idx] = val;
		break;
	}
}

static int cmos_io(void *dev, unsigned region, uint64_t off, void *data, uint32_t len,
		   bool is_write)
{
	struct cmos *c = dev;
	uint8_t *p = data;

	if (region != 0 || off >= 2 || len > 2 - off)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	/* outw to 0x70 sets index and data at once, as on the ISA bus. */
	for (uint32_t i = 0; i < len; i++) {
		unsigned idx = c->index & 0x7f;

		if (off + i == 0 && is_write)
			c->index = p[i];
		else if (off + i == 0)
			p[i] = c->index;
		else if (is_write)
			write_data(c, idx, p[i]);
		else
			p[i] = read_data(c, idx);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void cmos_destroy(void *dev)
{
	struct cmos *c = dev;

	pthread_mutex_destroy(&c->lock);
	free(c);
}

static const struct dev_ops cmos_ops = {
	.io = cmos_io,
	.destroy = cmos_destroy,
};

/* The memory-size bytes a PC BIOS leaves behind, each field saturated at its width. */
static void fill_memory(uint8_t *ram, uint64_t below, uint64_t above)
{
	uint64_t ext = below > MiB(1) ? (below - MiB(1)) / KiB(1) : 0;
	uint64_t above_16m = below > MiB(16) ? (below - MiB(16)) / KiB(64) : 0;

	put_le(ram + 0x15, 640, 2);
	ext = MIN(ext, MiB(63) / KiB(1));
	put_le(ram + 0x17, ext, 2);
	put_le(ram + 0x30, ext, 2);
	put_le(ram + 0x34, MIN(above_16m, 0xffff), 2);
	put_le(ram + 0x5b, MIN(above / KiB(64), 0xffffff), 3);
}

int cmos_create(const struct cmos_params *p, struct device **out)
{
	struct cmos *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	ret = -pthread_mutex_init(&c->lock, NULL);
	if (ret < 0) {
		free(c);
		return ret;
	}
	c->log = p->log;
	c->now = p->now;
	c->now_ctx = p->now_ctx;
	c->ram[CMOS_REG_A] = DIV_32KHZ | 0x06; /* 1024 Hz periodic rate, as firmware sets */
	c->ram[CMOS_REG_B] = CMOS_B_24H;
	fill_memory(c->ram, p->mem_below_4g, p->mem_above_4g);
	c->c_sec = guest_now(c, NULL);
	c->dev = (struct device){.name = "cmos", .ops = &cmos_ops, .priv = c};
	*out = &c->dev;
	return 0;
}
