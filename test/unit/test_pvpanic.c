#include "test/unit/testutil.h"

#include "core/device.h"
#include "core/log.h"
#include "core/vm_event.h"
#include "legacy/pvpanic.h"

static const struct logger quiet = {.level = LOG_LVL_OFF, .to_stderr = true, .tag = "test"};

struct exits {
	unsigned n;
	enum vm_exit_reason last;
};

static void record_exit(void *ctx, enum vm_exit_reason r)
{
	struct exits *e = ctx;

	e->n++;
	e->last = r;
}

START_TEST(panic_request)
{
	struct exits e = {0};
	struct vm_events ev = {.request_exit = record_exit, .ctx = &e};
	struct device *d;
	uint8_t v = 0;

	ck_assert_int_eq(pvpanic_create(&ev, &quiet, &d), 0);
	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, false), 0);
	ck_assert_uint_eq(v, PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	v = PVPANIC_CRASH_LOADED;
	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, true), 0);
	v = 0x80;
	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, true), 0);
	ck_assert_uint_eq(e.n, 0);
	v = PVPANIC_PANICKED;
	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, true), 0);
	ck_assert_uint_eq(e.n, 1);
	ck_assert_int_eq(e.last, VM_EXIT_PANIC);
	v = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, true), 0);
	ck_assert_uint_eq(e.n, 2);
	device_destroy(d);
}
END_TEST

START_TEST(bad_accesses)
{
	struct exits e = {0};
	struct vm_events ev = {.request_exit = record_exit, .ctx = &e};
	struct device *d;
	uint32_t v = PVPANIC_PANICKED;

	ck_assert_int_eq(pvpanic_create(&ev, &quiet, &d), 0);
	ck_assert_int_eq(device_io(d, 0, 0, &v, 4, true), -EINVAL);
	ck_assert_int_eq(device_io(d, 0, 1, &v, 1, true), -EINVAL);
	ck_assert_int_eq(device_io(d, 1, 0, &v, 1, true), -EINVAL);
	ck_assert_uint_eq(e.n, 0);
	device_destroy(d);
}
END_TEST

static Suite *pvpanic_suite(void)
{
	Suite *s = suite_create("pvpanic");
	TCase *tc = tcase_create("pvpanic");

	tcase_add_test(tc, panic_request);
	tcase_add_test(tc, bad_accesses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(pvpanic_suite());
}
