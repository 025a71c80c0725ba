/*
 * GSI allocation and the MSI routing table, without KVM (the router keeps the table and does
 * not push it): what the PCI layer relies on when it hands out vectors and programs routes.
 */
#include "core/irq.h"
#include "core/kvm.h"
#include "core/layout.h"
#include "test/unit/testutil.h"

#include <dirent.h>
#include <string.h>

START_TEST(gsis_from_24_up_to_the_limit)
{
	struct irq_router r;
	uint32_t gsi = 0;

	ck_assert_int_eq(irq_router_init(&r, NULL), 0);
	/* Pins 0..23 belong to the IOAPIC; MSI GSIs start above them and are never reused. */
	for (uint32_t want = LAYOUT_GSI_MSI_FIRST; want < IRQ_MAX_GSI; want++) {
		ck_assert_int_eq(irq_alloc_msi_gsi(&r, &gsi), 0);
		ck_assert_uint_eq(gsi, want);
		ck_assert(r.msi[gsi].used);
		ck_assert(!r.msi[gsi].valid);
	}
	gsi = 12345;
	ck_assert_int_eq(irq_alloc_msi_gsi(&r, &gsi), -ENOSPC);
	ck_assert_int_eq(irq_alloc_msi_gsi(&r, &gsi), -ENOSPC);
	ck_assert_uint_eq(gsi, 12345);
	irq_router_destroy(&r);
}
END_TEST

START_TEST(routes_set_and_cleared)
{
	struct irq_router r;
	uint32_t a, b;

	ck_assert_int_eq(irq_router_init(&r, NULL), 0);
	ck_assert_int_eq(irq_alloc_msi_gsi(&r, &a), 0);
	ck_assert_int_eq(irq_alloc_msi_gsi(&r, &b), 0);
	ck_assert_uint_ne(a, b);

	ck_assert_int_eq(irq_msi_route_set(&r, a, true, 0xfee01000, 0x4031), 0);
	ck_assert(r.msi[a].valid);
	ck_assert_uint_eq(r.msi[a].addr, 0xfee01000);
	ck_assert_uint_eq(r.msi[a].data, 0x4031);
	ck_assert(!r.msi[b].valid);

	/* Retargeting replaces the message. */
	ck_assert_int_eq(irq_msi_route_set(&r, a, true, 0xfee02000, 0x4041), 0);
	ck_assert_uint_eq(r.msi[a].addr, 0xfee02000);
	ck_assert_uint_eq(r.msi[a].data, 0x4041);

	ck_assert_int_eq(irq_msi_route_set(&r, b, true, 0xfee00000, 0x22), 0);
	ck_assert_int_eq(irq_msi_route_set(&r, a, false, 0, 0), 0);
	ck_assert(!r.msi[a].valid);
	ck_assert(r.msi[a].used);
	ck_assert(r.msi[b].valid);
	ck_assert_uint_eq(r.msi[b].data, 0x22);
	/* Clearing twice is harmless; setting again works. */
	ck_assert_int_eq(irq_msi_route_set(&r, a, false, 0, 0), 0);
	ck_assert_int_eq(irq_msi_route_set(&r, a, true, 0xfee00000, 0x33), 0);
	ck_assert(r.msi[a].valid);
	irq_router_destroy(&r);
}
END_TEST

START_TEST(unknown_gsi_refused)
{
	struct irq_router r;
	uint32_t a;

	ck_assert_int_eq(irq_router_init(&r, NULL), 0);
	/* Not allocated yet, an IOAPIC pin, past the table, far past it. */
	ck_assert_int_eq(irq_msi_route_set(&r, LAYOUT_GSI_MSI_FIRST, true, 0xfee00000, 1), -ENOENT);
	ck_assert_int_eq(irq_alloc_msi_gsi(&r, &a), 0);
	ck_assert_int_eq(irq_msi_route_set(&r, a + 1, true, 0xfee00000, 1), -ENOENT);
	ck_assert_int_eq(irq_msi_route_set(&r, 4, true, 0xfee00000, 1), -ENOENT);
	ck_assert_int_eq(irq_msi_route_set(&r, 0, false, 0, 0), -ENOENT);
	ck_assert_int_eq(irq_msi_route_set(&r, IRQ_MAX_GSI, true, 0xfee00000, 1), -EINVAL);
	ck_assert_int_eq(irq_msi_route_set(&r, UINT32_MAX, true, 0xfee00000, 1), -EINVAL);
	ck_assert(!r.msi[a + 1].valid);
	ck_assert(!r.msi[4].valid);
	irq_router_destroy(&r);
}
END_TEST

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Without a VM the irqfd cannot be registered: an error, and no eventfd left open. */
START_TEST(eventfds_without_kvm)
{
	struct kvm k = {.dev_fd = -1, .vm_fd = -1};
	int fd = -7, rfd = -7;
	unsigned before = open_fds();

	ck_assert_int_lt(irq_eventfd_create(&k, 30, &fd), 0);
	ck_assert_int_eq(fd, -7);
	ck_assert_int_lt(irq_level_eventfd_create(&k, 16, &fd, &rfd), 0);
	ck_assert_int_eq(fd, -7);
	ck_assert_int_eq(rfd, -7);
	ck_assert_uint_eq(open_fds(), before);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("irq");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, gsis_from_24_up_to_the_limit);
	tcase_add_test(tc, routes_set_and_cleared);
	tcase_add_test(tc, unknown_gsi_refused);
	tcase_add_test(tc, eventfds_without_kvm);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
