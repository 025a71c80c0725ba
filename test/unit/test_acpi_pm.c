/*
 * The ACPI PM block: registers, the buttons and GPEs as control commands, S5, and its SCI,
 * which the test sees as KVM would: a level irqfd the device raises by writing an eventfd,
 * lowered at the guest's EOI, after which the device raises it again if still pending.
 */
#include "legacy/acpi_pm.h"
#include "core/device.h"
#include "core/vm_event.h"
#include "test/unit/testutil.h"

#include <event2/event.h>
#include <string.h>
#include <sys/eventfd.h>

struct fake {
	int sci_fd, resample_fd; /* the device's (it closes them); the test plays KVM */
	struct event_base *eb;
	bool sci;	 /* the line: raised by the device, lowered by eoi() */
	unsigned raises; /* times the device raised it */
	unsigned exits;
	enum vm_exit_reason reason;
	struct vm_events ev;
	struct device *dev;
};

/* Takes in what the device wrote to the SCI eventfd. */
static void sync_sci(struct fake *f)
{
	uint64_t n = 0;

	ck_assert_int_eq(eventfd_drain(f->sci_fd, &n), 0);
	if (n)
		f->sci = true;
	f->raises += (unsigned)n;
}

/* The line as the guest sees it now. */
static bool sci(struct fake *f)
{
	sync_sci(f);
	return f->sci;
}

static unsigned raises(struct fake *f)
{
	sync_sci(f);
	return f->raises;
}

/* The guest's EOI: KVM lowers the line and signals the resample eventfd. */
static void eoi(struct fake *f)
{
	sync_sci(f);
	f->sci = false;
	ck_assert_int_eq(eventfd_signal(f->resample_fd), 0);
	ck_assert_int_ge(event_base_loop(f->eb, EVLOOP_NONBLOCK), 0);
	sync_sci(f);
}

static void fake_exit(void *ctx, enum vm_exit_reason reason)
{
	struct fake *f = ctx;

	f->exits++;
	f->reason = reason;
}

static void setup(struct fake *f)
{
	struct acpi_pm_params p;

	memset(f, 0, sizeof(*f));
	f->ev = (struct vm_events){.request_exit = fake_exit, .ctx = f};
	f->sci_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(f->sci_fd, 0);
	ck_assert_int_ge(f->resample_fd, 0);
	f->eb = event_base_new();
	ck_assert_ptr_nonnull(f->eb);
	p = (struct acpi_pm_params){
		.ev = &f->ev, .sci_fd = f->sci_fd, .sci_resample_fd = f->resample_fd};
	ck_assert_int_eq(acpi_pm_create(&p, &f->dev), 0);
	ck_assert_ptr_nonnull(f->dev);
	ck_assert_int_eq(device_start(f->dev, f->eb), 0);
}

static void on_reply(void *ctx, const struct dev_reply *r)
{
	*(int *)ctx = r->err;
}

/* A control command to the device; returns its reply's status. */
static int command(struct fake *f, uint32_t op, uint64_t arg)
{
	struct dev_cmd cmd = {.op = op, .arg = arg};
	int err = 1;

	ck_assert_int_eq(device_command(f->dev, &cmd, on_reply, &err), 0);
	ck_assert_int_le(err, 0);
	return err;
}

static void teardown(struct fake *f)
{
	device_stop(f->dev);
	device_destroy(f->dev);
	event_base_free(f->eb);
}

static int io(struct fake *f, uint64_t off, uint32_t len, uint32_t *val, bool write)
{
	uint8_t b[4] = {0};
	int ret;

	for (unsigned i = 0; write && i < len && i < 4; i++)
		b[i] = (uint8_t)(*val >> (8 * i));
	ret = device_io(f->dev, 0, off, b, len, write);
	if (!write && ret == 0) {
		*val = 0;
		for (unsigned i = 0; i < len && i < 4; i++)
			*val |= (uint32_t)b[i] << (8 * i);
	}
	return ret;
}

static void wr(struct fake *f, uint64_t off, uint32_t len, uint32_t val)
{
	ck_assert_int_eq(io(f, off, len, &val, true), 0);
}

static uint32_t rd(struct fake *f, uint64_t off, uint32_t len)
{
	uint32_t v = 0xdeadbeef;

	ck_assert_int_eq(io(f, off, len, &v, false), 0);
	return v;
}

#define PM1_STS 0
#define PM1_EN	2
#define PM1_CNT 4
#define GPE_STS 8
#define GPE_EN	16

START_TEST(test_reset_state)
{
	struct fake f;

	setup(&f);
	ck_assert_uint_eq(rd(&f, PM1_STS, 2), 0);
	ck_assert_uint_eq(rd(&f, PM1_EN, 2), 0);
	/* ACPI mode is always on: SCI_EN reads 1 even after writing 0. */
	ck_assert_uint_eq(rd(&f, PM1_CNT, 2), ACPI_PM1_CNT_SCI_EN);
	wr(&f, PM1_CNT, 2, 0);
	ck_assert_uint_eq(rd(&f, PM1_CNT, 2) & ACPI_PM1_CNT_SCI_EN, ACPI_PM1_CNT_SCI_EN);
	for (unsigned off = GPE_STS; off < ACPI_PM_IO_LEN; off += 4)
		ck_assert_uint_eq(rd(&f, off, 4), 0);
	ck_assert_uint_eq(raises(&f), 0);
	teardown(&f);
}
END_TEST

START_TEST(test_powerbtn_sci_cycle)
{
	struct fake f;

	setup(&f);
	wr(&f, PM1_EN, 2, ACPI_PM1_PWRBTN);
	ck_assert_uint_eq(rd(&f, PM1_EN, 2), ACPI_PM1_PWRBTN);
	ck_assert_uint_eq(raises(&f), 0);

	ck_assert_int_eq(command(&f, DEV_CMD_POWER_BUTTON, 0), 0);
	ck_assert_uint_eq(rd(&f, PM1_STS, 2), ACPI_PM1_PWRBTN);
	ck_assert_uint_eq(raises(&f), 1);
	ck_assert(sci(&f));

	/* A second press while the first is pending does not raise the line again. */
	ck_assert_int_eq(command(&f, DEV_CMD_POWER_BUTTON, 0), 0);
	ck_assert_uint_eq(raises(&f), 1);
	/* An EOI while it is still pending: raised again at once. */
	eoi(&f);
	ck_assert(sci(&f));
	ck_assert_uint_eq(raises(&f), 2);

	/* The guest acknowledges by writing 1 to the status bit; at its EOI the line drops. */
	wr(&f, PM1_STS, 2, ACPI_PM1_PWRBTN);
	ck_assert_uint_eq(rd(&f, PM1_STS, 2), 0);
	eoi(&f);
	ck_assert(!sci(&f));
	ck_assert_uint_eq(raises(&f), 2);
	ck_assert_uint_eq(f.exits, 0);
	teardown(&f);
}
END_TEST

/*
 * ACPICA enables the global lock and RTC fixed events and reads each enable bit back; a bit
 * that reads 0 gives "Could not enable GlobalLock event" and "No response from Global Lock
 * hardware". They must keep what is written, in 16-bit and byte accesses, and raise nothing.
 */
START_TEST(test_global_lock_and_rtc_enables_are_kept)
{
	struct fake f;

	setup(&f);
	wr(&f, PM1_EN, 2, ACPI_PM1_GBL);
	ck_assert_uint_eq(rd(&f, PM1_EN, 2), ACPI_PM1_GBL);
	wr(&f, PM1_EN, 2, ACPI_PM1_GBL | ACPI_PM1_RTC);
	ck_assert_uint_eq(rd(&f, PM1_EN, 2), ACPI_PM1_GBL | ACPI_PM1_RTC);
	ck_assert_uint_eq(rd(&f, PM1_EN + 1, 1), ACPI_PM1_RTC >> 8);
	wr(&f, PM1_EN + 1, 1, 0);
	ck_assert_uint_eq(rd(&f, PM1_EN, 2), ACPI_PM1_GBL);
	/* Their status bits are never set, so the SCI never moves. */
	ck_assert_uint_eq(rd(&f, PM1_STS, 2), 0);
	ck_assert_uint_eq(raises(&f), 0);
	ck_assert(!sci(&f));
	teardown(&f);
}
END_TEST

START_TEST(test_status_without_enable)
{
	struct fake f;

	setup(&f);
	ck_assert_int_eq(command(&f, DEV_CMD_SLEEP_BUTTON, 0), 0);
	ck_assert_uint_eq(rd(&f, PM1_STS, 2), ACPI_PM1_SLPBTN);
	ck_assert_uint_eq(raises(&f), 0);
	/* Enabling a pending event raises the SCI; once disabled, the EOI leaves it down. */
	wr(&f, PM1_EN, 2, ACPI_PM1_SLPBTN);
	ck_assert_uint_eq(raises(&f), 1);
	ck_assert(sci(&f));
	wr(&f, PM1_EN, 2, 0);
	eoi(&f);
	ck_assert(!sci(&f));
	ck_assert_uint_eq(raises(&f), 1);
	ck_assert_uint_eq(rd(&f, PM1_STS, 2), ACPI_PM1_SLPBTN);
	teardown(&f);
}
END_TEST

START_TEST(test_w1c)
{
	struct fake f;

	setup(&f);
	ck_assert_int_eq(command(&f, DEV_CMD_POWER_BUTTON, 0), 0);
	ck_assert_int_eq(command(&f, DEV_CMD_SLEEP_BUTTON, 0), 0);
	/* Writing 0, or 1 to other bits, clears nothing. */
	wr(&f, PM1_STS, 2, 0);
	ck_assert_uint_eq(rd(&f, PM1_STS, 2), ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN);
	wr(&f, PM1_STS, 2, ACPI_PM1_SLPBTN);
	ck_assert_uint_eq(rd(&f, PM1_STS, 2), ACPI_PM1_PWRBTN);
	/* Bits that do not exist read 0 whatever is written. */
	wr(&f, PM1_EN, 2, 0xffff);
	ck_assert_uint_eq(rd(&f, PM1_EN, 2),
			  ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC);
	wr(&f, PM1_STS, 2, 0xffff);
	ck_assert_uint_eq(rd(&f, PM1_STS, 2), 0);
	/* GPE status is write-1-to-clear per bit too. */
	ck_assert_int_eq(command(&f, DEV_CMD_GPE, 3), 0);
	ck_assert_int_eq(command(&f, DEV_CMD_GPE, 4), 0);
	wr(&f, GPE_STS, 1, 1u << 3);
	ck_assert_uint_eq(rd(&f, GPE_STS, 1), 1u << 4);
	teardown(&f);
}
END_TEST

START_TEST(test_gpe)
{
	static const unsigned gpes[] = {0, 7, 8, 31, 32, 63};
	struct fake f;

	setup(&f);
	for (unsigned i = 0; i < ARRAY_SIZE(gpes); i++) {
		unsigned n = gpes[i], before = raises(&f);

		ck_assert_int_eq(command(&f, DEV_CMD_GPE, n), 0);
		ck_assert_uint_eq(rd(&f, GPE_STS + n / 8, 1), 1u << (n % 8));
		ck_assert_uint_eq(raises(&f), before);
		wr(&f, GPE_EN + n / 8, 1, 1u << (n % 8));
		ck_assert_uint_eq(raises(&f), before + 1);
		ck_assert(sci(&f));
		wr(&f, GPE_STS + n / 8, 1, 1u << (n % 8));
		ck_assert_uint_eq(rd(&f, GPE_STS + n / 8, 1), 0);
		eoi(&f);
		ck_assert(!sci(&f));
		/* The enable bit stays: the next event of this GPE raises the SCI at once. */
		ck_assert_int_eq(command(&f, DEV_CMD_GPE, n), 0);
		ck_assert(sci(&f));
		ck_assert_uint_eq(raises(&f), before + 2);
		wr(&f, GPE_EN + n / 8, 1, 0);
		eoi(&f);
		ck_assert(!sci(&f));
		wr(&f, GPE_STS + n / 8, 1, 0xff);
	}
	ck_assert_int_eq(command(&f, DEV_CMD_GPE, ACPI_PM_NR_GPES), -EINVAL);
	ck_assert_int_eq(command(&f, DEV_CMD_GPE, ~0u), -EINVAL);
	teardown(&f);
}
END_TEST

START_TEST(test_sci_two_sources)
{
	struct fake f;

	setup(&f);
	wr(&f, PM1_EN, 2, ACPI_PM1_PWRBTN);
	wr(&f, GPE_EN, 1, 1);
	ck_assert_int_eq(command(&f, DEV_CMD_POWER_BUTTON, 0), 0);
	ck_assert_int_eq(command(&f, DEV_CMD_GPE, 0), 0);
	ck_assert_uint_eq(raises(&f), 1);
	/* The line comes back up after each EOI while any enabled event is pending. */
	wr(&f, PM1_STS, 2, ACPI_PM1_PWRBTN);
	eoi(&f);
	ck_assert(sci(&f));
	ck_assert_uint_eq(raises(&f), 2);
	wr(&f, GPE_STS, 1, 1);
	eoi(&f);
	ck_assert(!sci(&f));
	ck_assert_uint_eq(raises(&f), 2);
	teardown(&f);
}
END_TEST

START_TEST(test_s5_powers_off)
{
	struct fake f;

	setup(&f);
	/* Linux writes SLP_TYP first, then SLP_TYP | SLP_EN. */
	wr(&f, PM1_CNT, 2, ACPI_PM_SLP_TYP_S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT);
	ck_assert_uint_eq(f.exits, 0);
	ck_assert_uint_eq(rd(&f, PM1_CNT, 2),
			  (ACPI_PM_SLP_TYP_S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT) | ACPI_PM1_CNT_SCI_EN);
	wr(&f, PM1_CNT, 2,
	   (ACPI_PM_SLP_TYP_S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT) | ACPI_PM1_CNT_SLP_EN);
	ck_assert_uint_eq(f.exits, 1);
	ck_assert_int_eq(f.reason, VM_EXIT_STOP);
	/* SLP_EN is write-only. */
	ck_assert_uint_eq(rd(&f, PM1_CNT, 2) & ACPI_PM1_CNT_SLP_EN, 0);
	teardown(&f);
}
END_TEST

START_TEST(test_s5_byte_write)
{
	struct fake f;

	setup(&f);
	/* SLP_TYP and SLP_EN both live in the high byte. */
	wr(&f, PM1_CNT + 1, 1, (ACPI_PM_SLP_TYP_S5 << 2) | (1u << 5));
	ck_assert_uint_eq(f.exits, 1);
	ck_assert_int_eq(f.reason, VM_EXIT_STOP);
	teardown(&f);
}
END_TEST

START_TEST(test_other_sleep_types_ignored)
{
	struct fake f;

	setup(&f);
	for (unsigned typ = 0; typ < 8; typ++) {
		if (typ == ACPI_PM_SLP_TYP_S5)
			continue;
		wr(&f, PM1_CNT, 2, (typ << ACPI_PM1_CNT_SLP_TYP_SHIFT) | ACPI_PM1_CNT_SLP_EN);
		/* Twice: the second one is not logged again, and still ignored. */
		wr(&f, PM1_CNT, 2, (typ << ACPI_PM1_CNT_SLP_TYP_SHIFT) | ACPI_PM1_CNT_SLP_EN);
	}
	ck_assert_uint_eq(f.exits, 0);
	/* The device keeps working afterwards. */
	wr(&f, PM1_EN, 2, ACPI_PM1_PWRBTN);
	ck_assert_int_eq(command(&f, DEV_CMD_POWER_BUTTON, 0), 0);
	ck_assert(sci(&f));
	teardown(&f);
}
END_TEST

START_TEST(test_access_sizes)
{
	struct fake f;

	setup(&f);
	/* One dword at 0 covers PM1_STS (low half) and PM1_EN (high half). */
	ck_assert_int_eq(command(&f, DEV_CMD_POWER_BUTTON, 0), 0);
	wr(&f, PM1_STS, 4, (uint32_t)ACPI_PM1_PWRBTN << 16);
	ck_assert(sci(&f));
	ck_assert_uint_eq(rd(&f, PM1_STS, 4), ACPI_PM1_PWRBTN | (ACPI_PM1_PWRBTN << 16));
	/* Clear and disable in one write: raised once, down after the EOI. */
	wr(&f, PM1_STS, 4, ACPI_PM1_PWRBTN);
	eoi(&f);
	ck_assert(!sci(&f));
	ck_assert_uint_eq(raises(&f), 1);
	ck_assert_uint_eq(rd(&f, PM1_STS, 4), 0);
	/* A word at offset 1: PM1_STS high byte and PM1_EN low byte. */
	ck_assert_int_eq(command(&f, DEV_CMD_SLEEP_BUTTON, 0), 0);
	ck_assert_uint_eq(rd(&f, 1, 2), ACPI_PM1_SLPBTN >> 8);
	wr(&f, 3, 1, ACPI_PM1_SLPBTN >> 8);
	ck_assert_uint_eq(rd(&f, PM1_EN, 2), ACPI_PM1_SLPBTN);
	ck_assert(sci(&f));
	wr(&f, 1, 2, ACPI_PM1_SLPBTN >> 8);
	eoi(&f);
	ck_assert(!sci(&f));
	/* A dword at 6 spans the unused bytes 6-7 and the first GPE status bytes. */
	ck_assert_int_eq(command(&f, DEV_CMD_GPE, 9), 0);
	ck_assert_uint_eq(rd(&f, 6, 4), (uint32_t)(1u << 1) << 24);
	wr(&f, 6, 4, 0xffffffff);
	ck_assert_uint_eq(rd(&f, GPE_STS, 2), 0);
	/* The last dword of the block (GPE0_EN 4..7) reads and writes. */
	wr(&f, 20, 4, 0x80000001);
	ck_assert_uint_eq(rd(&f, 20, 4), 0x80000001);
	ck_assert_uint_eq(rd(&f, GPE_EN + 7, 1), 0x80);
	ck_assert_int_eq(command(&f, DEV_CMD_GPE, 63), 0);
	ck_assert(sci(&f));
	teardown(&f);
}
END_TEST

START_TEST(test_bad_accesses)
{
	struct fake f;
	uint32_t v = 0;

	setup(&f);
	ck_assert_int_eq(io(&f, ACPI_PM_IO_LEN - 2, 4, &v, false), -EINVAL);
	ck_assert_int_eq(io(&f, ACPI_PM_IO_LEN - 2, 4, &v, true), -EINVAL);
	ck_assert_int_eq(io(&f, ACPI_PM_IO_LEN, 1, &v, false), -EINVAL);
	ck_assert_int_eq(io(&f, ~0ULL, 2, &v, false), -EINVAL);
	ck_assert_int_eq(io(&f, 0, 0, &v, false), -EINVAL);
	v = 0;
	ck_assert_int_eq(device_io(f.dev, 1, 0, &v, 1, false), -EINVAL);
	teardown(&f);
}
END_TEST

/* An EOI with nothing pending, or a stray resample, leaves the line down. */
START_TEST(test_eoi_without_event)
{
	struct fake f;

	setup(&f);
	wr(&f, PM1_EN, 2, ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN);
	eoi(&f);
	ck_assert(!sci(&f));
	ck_assert_uint_eq(raises(&f), 0);
	ck_assert_int_eq(command(&f, DEV_CMD_POWER_BUTTON, 0), 0);
	ck_assert_uint_eq(raises(&f), 1);
	teardown(&f);
}
END_TEST

/* Another device's command is refused without a reply; the block has no other ops. */
START_TEST(test_other_commands)
{
	struct dev_cmd cmd = {.op = DEV_CMD_BALLOON_TARGET, .arg = 4096};
	struct device *d = NULL;
	struct fake f;
	int err = 1;

	setup(&f);
	ck_assert_int_eq(device_command(f.dev, &cmd, on_reply, &err), -EOPNOTSUPP);
	ck_assert_int_eq(err, 1);
	teardown(&f);
	ck_assert_int_eq(acpi_pm_create(NULL, &d), -EINVAL);
	ck_assert_int_eq(
		acpi_pm_create(&(struct acpi_pm_params){.sci_fd = -1, .sci_resample_fd = -1}, &d),
		-EINVAL);
	ck_assert_ptr_null(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("acpi_pm");
	TCase *tc = tcase_create("acpi_pm");

	tcase_add_test(tc, test_reset_state);
	tcase_add_test(tc, test_powerbtn_sci_cycle);
	tcase_add_test(tc, test_status_without_enable);
	tcase_add_test(tc, test_global_lock_and_rtc_enables_are_kept);
	tcase_add_test(tc, test_w1c);
	tcase_add_test(tc, test_gpe);
	tcase_add_test(tc, test_sci_two_sources);
	tcase_add_test(tc, test_s5_powers_off);
	tcase_add_test(tc, test_s5_byte_write);
	tcase_add_test(tc, test_other_sleep_types_ignored);
	tcase_add_test(tc, test_access_sizes);
	tcase_add_test(tc, test_bad_accesses);
	tcase_add_test(tc, test_eoi_without_event);
	tcase_add_test(tc, test_other_commands);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
