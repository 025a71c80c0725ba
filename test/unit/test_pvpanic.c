#include "test/unit/testutil.h"

#include "core/device.h"
#include "core/log.h"
#include "core/pci.h"
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

/* crosvm's pvpanic-pci: its IDs, one 16-byte BAR whose first byte is the register. */
START_TEST(pci_form)
{
	struct exits e = {0};
	struct vm_events ev = {.request_exit = record_exit, .ctx = &e};
	struct pci_dev_desc desc;
	struct device *d;
	uint32_t w = 0xffffffff;
	uint8_t v = 0xee;

	ck_assert_int_eq(pvpanic_pci_create(&ev, &quiet, &d, &desc), 0);
	ck_assert_str_eq(d->name, "pvpanic-pci");
	ck_assert_ptr_null(d->policy); /* in the main process, as crosvm */
	ck_assert_uint_eq(desc.vendor_id, 0x1b36);
	ck_assert_uint_eq(desc.device_id, 0x0011);
	ck_assert_uint_eq(desc.subsys_vendor_id, 0xff);
	ck_assert_uint_eq(desc.subsys_id, 0xff);
	ck_assert_uint_eq(desc.revision, 1);
	ck_assert_uint_eq(desc.class_code, 0xff);
	ck_assert_uint_eq(desc.subclass, 0xff);
	ck_assert_uint_eq(desc.bars[0].size, 16);
	ck_assert(!desc.bars[0].mem64 && !desc.bars[0].prefetch);
	for (unsigned b = 1; b < PCI_NUM_BARS; b++)
		ck_assert_uint_eq(desc.bars[b].size, 0);
	ck_assert_uint_eq(desc.msix_vectors, 0);
	ck_assert(!desc.intx);
	ck_assert_uint_eq(desc.nr_caps, 0);

	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, false), 0);
	ck_assert_uint_eq(v, PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	/* Elsewhere in the BAR, or wider than a byte: reads 0, writes do nothing. */
	ck_assert_int_eq(device_io(d, 0, 1, &v, 1, false), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(device_io(d, 0, 0, &w, 4, false), 0);
	ck_assert_uint_eq(w, 0);
	w = PVPANIC_PANICKED;
	ck_assert_int_eq(device_io(d, 0, 0, &w, 4, true), 0);
	v = PVPANIC_PANICKED;
	ck_assert_int_eq(device_io(d, 0, 8, &v, 1, true), 0);
	ck_assert_uint_eq(e.n, 0);
	v = PVPANIC_CRASH_LOADED;
	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, true), 0);
	ck_assert_uint_eq(e.n, 0);
	v = PVPANIC_PANICKED;
	ck_assert_int_eq(device_io(d, 0, 0, &v, 1, true), 0);
	ck_assert_uint_eq(e.n, 1);
	ck_assert_int_eq(e.last, VM_EXIT_PANIC);
	device_destroy(d);
}
END_TEST

static Suite *pvpanic_suite(void)
{
	Suite *s = suite_create("pvpanic");
	TCase *tc = tcase_create("pvpanic");

	tcase_add_test(tc, panic_request);
	tcase_add_test(tc, bad_accesses);
	tcase_add_test(tc, pci_form);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(pvpanic_suite());
}
