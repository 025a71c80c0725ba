#include "test/unit/testutil.h"

#include <time.h>

#include "core/device.h"
#include "core/log.h"
#include "legacy/cmos.h"

static const struct logger quiet = {.level = LOG_LVL_ERROR, .to_stderr = true, .tag = "test"};

/* A host clock the test moves by hand. */
struct clock {
	struct timespec ts;
};

static int clock_now(void *ctx, struct timespec *ts)
{
	*ts = ((struct clock *)ctx)->ts;
	return 0;
}

static time_t utc(int year, int mon, int mday, int hour, int min, int sec)
{
	struct tm tm = {.tm_year = year - 1900,
			.tm_mon = mon - 1,
			.tm_mday = mday,
			.tm_hour = hour,
			.tm_min = min,
			.tm_sec = sec};

	return timegm(&tm);
}

static struct device *make(struct clock *clk, uint64_t below, uint64_t above)
{
	struct cmos_params p = {.mem_below_4g = below,
				.mem_above_4g = above,
				.log = &quiet,
				.now = clock_now,
				.now_ctx = clk};
	struct device *d;

	ck_assert_int_eq(cmos_create(&p, &d), 0);
	return d;
}

static uint8_t get(struct device *d, uint8_t idx)
{
	uint8_t v = 0xee;

	ck_assert_int_eq(device_io(d, 0, 0, &idx, 1, true), 0);
	ck_assert_int_eq(device_io(d, 0, 1, &v, 1, false), 0);
	return v;
}

static void set(struct device *d, uint8_t idx, uint8_t v)
{
	ck_assert_int_eq(device_io(d, 0, 0, &idx, 1, true), 0);
	ck_assert_int_eq(device_io(d, 0, 1, &v, 1, true), 0);
}

static void done(struct device *d)
{
	device_destroy(d);
}

START_TEST(bcd_binary_and_12h)
{
	/* Thursday 2024-02-29 13:45:07 UTC */
	struct clock clk = {{utc(2024, 2, 29, 13, 45, 7), 0}};
	struct device *d = make(&clk, MiB(512), 0);

	ck_assert_uint_eq(get(d, CMOS_REG_B), CMOS_B_24H);
	ck_assert_uint_eq(get(d, CMOS_SEC), 0x07);
	ck_assert_uint_eq(get(d, CMOS_MIN), 0x45);
	ck_assert_uint_eq(get(d, CMOS_HOUR), 0x13);
	ck_assert_uint_eq(get(d, CMOS_WDAY), 5); /* Sunday is 1 */
	ck_assert_uint_eq(get(d, CMOS_MDAY), 0x29);
	ck_assert_uint_eq(get(d, CMOS_MON), 0x02);
	ck_assert_uint_eq(get(d, CMOS_YEAR), 0x24);
	ck_assert_uint_eq(get(d, CMOS_CENTURY), 0x20);
	set(d, CMOS_REG_B, CMOS_B_24H | CMOS_B_DM);
	ck_assert_uint_eq(get(d, CMOS_SEC), 7);
	ck_assert_uint_eq(get(d, CMOS_MIN), 45);
	ck_assert_uint_eq(get(d, CMOS_HOUR), 13);
	ck_assert_uint_eq(get(d, CMOS_MDAY), 29);
	ck_assert_uint_eq(get(d, CMOS_YEAR), 24);
	ck_assert_uint_eq(get(d, CMOS_CENTURY), 20);
	/* 12-hour clock: 1 PM is 1 with bit 7; midnight and noon are 12. */
	set(d, CMOS_REG_B, CMOS_B_DM);
	ck_assert_uint_eq(get(d, CMOS_HOUR), 0x81);
	set(d, CMOS_REG_B, 0);
	ck_assert_uint_eq(get(d, CMOS_HOUR), 0x81);
	clk.ts.tv_sec = utc(2024, 3, 1, 0, 30, 0);
	ck_assert_uint_eq(get(d, CMOS_HOUR), 0x12);
	clk.ts.tv_sec = utc(2024, 3, 1, 12, 30, 0);
	ck_assert_uint_eq(get(d, CMOS_HOUR), 0x92);
	done(d);
}
END_TEST

START_TEST(register_c_clears_on_read)
{
	struct clock clk = {{utc(2030, 6, 1, 8, 0, 0), 100}};
	struct device *d = make(&clk, MiB(64), 0);

	ck_assert_uint_eq(get(d, CMOS_REG_C), 0);
	clk.ts.tv_sec += 1;
	ck_assert_uint_eq(get(d, CMOS_REG_C), CMOS_C_UF);
	ck_assert_uint_eq(get(d, CMOS_REG_C), 0);
	set(d, CMOS_REG_B, CMOS_B_24H | CMOS_B_UIE);
	clk.ts.tv_sec += 5;
	ck_assert_uint_eq(get(d, CMOS_REG_C), CMOS_C_IRQF | CMOS_C_UF);
	ck_assert_uint_eq(get(d, CMOS_REG_C), 0);
	set(d, CMOS_REG_C, 0xff); /* read-only */
	ck_assert_uint_eq(get(d, CMOS_REG_C), 0);
	ck_assert_uint_eq(get(d, CMOS_REG_D), CMOS_D_VRT);
	done(d);
}
END_TEST

START_TEST(uip_follows_the_clock)
{
	struct clock clk = {{utc(2030, 6, 1, 8, 0, 0), 500000000}};
	struct device *d = make(&clk, MiB(64), 0);

	ck_assert_uint_eq(get(d, CMOS_REG_A), 0x26);
	clk.ts.tv_nsec = 999900000; /* within 244 us of the tick */
	ck_assert_uint_eq(get(d, CMOS_REG_A), 0x26 | CMOS_A_UIP);
	clk.ts.tv_sec++;
	clk.ts.tv_nsec = 1000;
	ck_assert_uint_eq(get(d, CMOS_REG_A), 0x26);
	set(d, CMOS_REG_A, 0xa6); /* UIP is read-only */
	ck_assert_uint_eq(get(d, CMOS_REG_A), 0x26);
	done(d);
}
END_TEST

START_TEST(guest_sets_its_own_clock)
{
	struct clock clk = {{utc(2024, 1, 10, 10, 0, 0), 0}};
	struct device *d = make(&clk, MiB(64), 0);

	/* hwclock --systohc, the way Linux's mc146818 driver does it. */
	set(d, CMOS_REG_B, CMOS_B_24H | CMOS_B_SET);
	clk.ts.tv_sec += 3; /* frozen while SET */
	ck_assert_uint_eq(get(d, CMOS_SEC), 0x00);
	set(d, CMOS_YEAR, 0x99);
	set(d, CMOS_CENTURY, 0x19);
	set(d, CMOS_MON, 0x12);
	set(d, CMOS_MDAY, 0x31);
	set(d, CMOS_HOUR, 0x23);
	set(d, CMOS_MIN, 0x59);
	set(d, CMOS_SEC, 0x50);
	set(d, CMOS_REG_B, CMOS_B_24H);
	ck_assert_uint_eq(get(d, CMOS_SEC), 0x50);
	ck_assert_uint_eq(get(d, CMOS_YEAR), 0x99);
	/* The guest clock runs on with the host clock. */
	clk.ts.tv_sec += 15;
	ck_assert_uint_eq(get(d, CMOS_SEC), 0x05);
	ck_assert_uint_eq(get(d, CMOS_MIN), 0x00);
	ck_assert_uint_eq(get(d, CMOS_HOUR), 0x00);
	ck_assert_uint_eq(get(d, CMOS_MDAY), 0x01);
	ck_assert_uint_eq(get(d, CMOS_MON), 0x01);
	ck_assert_uint_eq(get(d, CMOS_YEAR), 0x00);
	ck_assert_uint_eq(get(d, CMOS_CENTURY), 0x20);
	ck_assert_uint_eq(get(d, CMOS_WDAY), 7); /* 2000-01-01 was a Saturday */
	/* One field without SET takes effect at once. */
	set(d, CMOS_MIN, 0x30);
	ck_assert_uint_eq(get(d, CMOS_MIN), 0x30);
	ck_assert_uint_eq(get(d, CMOS_HOUR), 0x00);
	/* Invalid BCD, or an hour of 25, leaves the clock alone. */
	set(d, CMOS_SEC, 0x5a);
	set(d, CMOS_HOUR, 0x25);
	ck_assert_uint_eq(get(d, CMOS_SEC), 0x05);
	ck_assert_uint_eq(get(d, CMOS_HOUR), 0x00);
	set(d, CMOS_REG_B, CMOS_B_24H | CMOS_B_SET);
	set(d, CMOS_MON, 0x13);
	set(d, CMOS_REG_B, CMOS_B_24H);
	ck_assert_uint_eq(get(d, CMOS_MON), 0x01);
	done(d);
}
END_TEST

START_TEST(nmi_bit_nvram_and_word_access)
{
	struct clock clk = {{utc(2024, 1, 10, 10, 0, 0), 0}};
	struct device *d = make(&clk, MiB(64), 0);
	uint8_t v = 0xc0, w[2];

	/* Bit 7 of the index is the NMI mask: kept in 0x70, not part of the index. */
	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, true), 0);
	ck_assert_int_eq(device_io(d, 0, 1, &(uint8_t){0x5a}, 1, true), 0);
	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, false), 0);
	ck_assert_uint_eq(v, 0xc0);
	ck_assert_uint_eq(get(d, 0x40), 0x5a);
	/* outw 0x70: index and data in one access. */
	w[0] = 0x41;
	w[1] = 0xa5;
	ck_assert_int_eq(device_io(d, 0, 0, w, 2, true), 0);
	ck_assert_uint_eq(get(d, 0x41), 0xa5);
	ck_assert_uint_eq(get(d, 0x7f), 0);
	ck_assert_int_eq(device_io(d, 0, 1, w, 2, false), -EINVAL);
	ck_assert_int_eq(device_io(d, 1, 0, w, 1, false), -EINVAL);
	done(d);
}
END_TEST

static unsigned get16(struct device *d, uint8_t idx)
{
	return get(d, idx) | (unsigned)get(d, idx + 1) << 8;
}

START_TEST(memory_size_fields)
{
	static const struct {
		uint64_t below, above;
		unsigned ext, above_16m, above_4g;
	} cases[] = {
		{MiB(8), 0, 7 * 1024, 0, 0},
		{MiB(64), 0, 63 * 1024, 48 * 16, 0},
		{MiB(512), 0, 63 * 1024, 496 * 16, 0},
		{0xd0000000, GiB(4), 63 * 1024, 0xcf00, 0x10000},
		{0xd0000000, GiB(2048), 63 * 1024, 0xcf00, 0xffffff},
	};
	struct clock clk = {{0, 0}};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct device *d = make(&clk, cases[i].below, cases[i].above);

		ck_assert_uint_eq(get16(d, 0x15), 640);
		ck_assert_uint_eq(get16(d, 0x17), cases[i].ext);
		ck_assert_uint_eq(get16(d, 0x30), cases[i].ext);
		ck_assert_uint_eq(get16(d, 0x34), cases[i].above_16m);
		ck_assert_uint_eq(get16(d, 0x5b) | (unsigned)get(d, 0x5d) << 16, cases[i].above_4g);
		done(d);
	}
}
END_TEST

START_TEST(real_clock_by_default)
{
	struct cmos_params p = {.mem_below_4g = MiB(64), .log = &quiet};
	struct device *d;
	time_t now = time(NULL);
	struct tm tm;
	unsigned year;

	ck_assert_int_eq(cmos_create(&p, &d), 0);
	gmtime_r(&now, &tm);
	year = (get(d, CMOS_CENTURY) >> 4) * 1000 + (get(d, CMOS_CENTURY) & 15) * 100 +
	       (get(d, CMOS_YEAR) >> 4) * 10 + (get(d, CMOS_YEAR) & 15);
	/* The year can only differ across a New Year's midnight between the two reads. */
	ck_assert_int_le((int)year - (tm.tm_year + 1900), 1);
	ck_assert_int_ge((int)year - (tm.tm_year + 1900), 0);
	done(d);
}
END_TEST

static Suite *cmos_suite(void)
{
	Suite *s = suite_create("cmos");
	TCase *tc = tcase_create("cmos");

	tcase_add_test(tc, bcd_binary_and_12h);
	tcase_add_test(tc, register_c_clears_on_read);
	tcase_add_test(tc, uip_follows_the_clock);
	tcase_add_test(tc, guest_sets_its_own_clock);
	tcase_add_test(tc, nmi_bit_nvram_and_word_access);
	tcase_add_test(tc, memory_size_fields);
	tcase_add_test(tc, real_clock_by_default);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(cmos_suite());
}
