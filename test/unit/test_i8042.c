#include "test/unit/testutil.h"

#include "core/device.h"
#include "core/log.h"
#include "core/vm_event.h"
#include "legacy/i8042.h"

static const struct logger quiet = {.level = LOG_LVL_ERROR, .to_stderr = true, .tag = "test"};

struct exits {
	unsigned n;
	enum vm_exit_reason last;
	struct vm_events ev; /* the device keeps a pointer to it */
};

static void record_exit(void *ctx, enum vm_exit_reason r)
{
	struct exits *e = ctx;

	e->n++;
	e->last = r;
}

#define STS_OBF 0x01
#define STS_AUX 0x20

static struct device *make(struct exits *e)
{
	struct device *d;

	e->ev = (struct vm_events){.request_exit = record_exit, .ctx = e};
	ck_assert_int_eq(i8042_create(&e->ev, &quiet, &d), 0);
	return d;
}

static uint8_t status(struct device *d)
{
	uint8_t v;

	ck_assert_int_eq(device_io(d, 1, 0, &v, 1, false), 0);
	return v;
}

static uint8_t data_in(struct device *d)
{
	uint8_t v;

	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, false), 0);
	return v;
}

static void cmd(struct device *d, uint8_t c)
{
	ck_assert_int_eq(device_io(d, 1, 0, &c, 1, true), 0);
}

static void data_out(struct device *d, uint8_t v)
{
	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, true), 0);
}

/* What Linux's i8042_command() does: send, then wait for OBF and read the answer. */
static uint8_t answer(struct device *d, uint8_t c)
{
	cmd(d, c);
	ck_assert_uint_eq(status(d) & STS_OBF, STS_OBF);
	return data_in(d);
}

START_TEST(reset_request)
{
	struct exits e = {0};
	struct device *d = make(&e);

	ck_assert_uint_eq(status(d) & STS_OBF, 0);
	cmd(d, 0xfe);
	ck_assert_uint_eq(e.n, 1);
	ck_assert_int_eq(e.last, VM_EXIT_RESET);
	/* The other reset path: the output port's reset line driven low. */
	cmd(d, 0xd1);
	data_out(d, 0x03);
	ck_assert_uint_eq(e.n, 1);
	cmd(d, 0xd1);
	data_out(d, 0x02);
	ck_assert_uint_eq(e.n, 2);
	ck_assert_int_eq(e.last, VM_EXIT_RESET);
	cmd(d, 0xff); /* pulse nothing */
	ck_assert_uint_eq(e.n, 2);
	device_destroy(d);
}
END_TEST

START_TEST(linux_probe)
{
	struct exits e = {0};
	struct device *d = make(&e);
	uint8_t ctr;

	/* i8042_flush: nothing pending, and the keylock is open. */
	ck_assert_uint_eq(status(d) & (STS_OBF | 0x10), 0x10);
	ck_assert_uint_eq(answer(d, 0xaa), 0x55);
	ck_assert_uint_eq(status(d) & STS_OBF, 0);
	ctr = answer(d, 0x20);
	ck_assert_uint_eq(answer(d, 0x20), ctr);
	cmd(d, 0x60);
	data_out(d, 0x47);
	ck_assert_uint_eq(answer(d, 0x20), 0x47);
	ck_assert_uint_eq(answer(d, 0xab), 0x00);
	cmd(d, 0xad);
	ck_assert_uint_eq(answer(d, 0x20) & 0x10, 0x10);
	cmd(d, 0xae);
	ck_assert_uint_eq(answer(d, 0x20) & 0x10, 0);
	cmd(d, 0xa7);
	ck_assert_uint_eq(answer(d, 0x20) & 0x20, 0x20);
	cmd(d, 0xa8);
	ck_assert_uint_eq(answer(d, 0x20) & 0x20, 0);
	/* AUX loop test answers without the AUX bit and AUX test fails: no mouse port. */
	cmd(d, 0xd3);
	data_out(d, 0x5a);
	ck_assert_uint_eq(status(d) & (STS_OBF | STS_AUX), STS_OBF);
	ck_assert_uint_eq(data_in(d), 0x5a);
	ck_assert_uint_ne(answer(d, 0xa9), 0x00);
	ck_assert_uint_eq(answer(d, 0xd0) & 0x03, 0x03);
	ck_assert_uint_eq(e.n, 0);
	device_destroy(d);
}
END_TEST

START_TEST(never_invents_keyboard_data)
{
	struct exits e = {0};
	struct device *d = make(&e);

	/* atkbd's probe: GET ID and RESET go to a keyboard that is not there. */
	data_out(d, 0xf2);
	ck_assert_uint_eq(status(d) & STS_OBF, 0);
	data_out(d, 0xff);
	ck_assert_uint_eq(status(d) & STS_OBF, 0);
	cmd(d, 0xd2); /* the guest's own byte as keyboard input: dropped too */
	data_out(d, 0x1c);
	ck_assert_uint_eq(status(d) & STS_OBF, 0);
	cmd(d, 0xd4);
	data_out(d, 0xf4);
	ck_assert_uint_eq(status(d) & STS_OBF, 0);
	cmd(d, 0x12); /* unknown */
	ck_assert_uint_eq(status(d) & STS_OBF, 0);
	ck_assert_uint_eq(e.n, 0);
	device_destroy(d);
}
END_TEST

START_TEST(bad_accesses)
{
	struct exits e = {0};
	struct device *d = make(&e);
	uint16_t w = 0xfefe;

	ck_assert_int_eq(device_io(d, 1, 0, &w, 2, true), -EINVAL);
	ck_assert_int_eq(device_io(d, 2, 0, &w, 1, true), -EINVAL);
	ck_assert_int_eq(device_io(d, 1, 1, &w, 1, true), -EINVAL);
	ck_assert_uint_eq(e.n, 0);
	device_destroy(d);
	/* No event handle at all is allowed: a reset is then only logged. */
	ck_assert_int_eq(i8042_create(NULL, &quiet, &d), 0);
	cmd(d, 0xfe);
	device_destroy(d);
}
END_TEST

static Suite *i8042_suite(void)
{
	Suite *s = suite_create("i8042");
	TCase *tc = tcase_create("i8042");

	tcase_add_test(tc, reset_request);
	tcase_add_test(tc, linux_probe);
	tcase_add_test(tc, never_invents_keyboard_data);
	tcase_add_test(tc, bad_accesses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(i8042_suite());
}
