/*
 * The kernel command line crosvm generates (boot_build_cmdline in core/vmm/boot.c): what a guest
 * kernel reads to find its console, early console and root disk.
 */
#include "core/vmm/boot.h"
#include "core/boot/cmdline.h"
#include "core/vmm/config.h"
#include "core/layout.h"
#include "test/unit/testutil.h"

#include <stdlib.h>
#include <string.h>

static void build(const struct vm_config *cfg, char *out, size_t len)
{
	struct cmdline c;

	ck_assert_int_eq(cmdline_init(&c, LAYOUT_CMDLINE_MAX), 0);
	ck_assert_int_eq(boot_build_cmdline(cfg, &c), 0);
	ck_assert_uint_lt(strlen(c.buf), len);
	strcpy(out, c.buf);
	cmdline_free(&c);
}

/* The default `crosvm run vmlinux`: COM1 is the console. */
START_TEST(default_console)
{
	struct vm_config cfg;
	char line[LAYOUT_CMDLINE_MAX];

	config_init(&cfg);
	cfg.serial[0] = (struct serial_config){
		.present = true, .type = SERIAL_CFG_STDOUT, .console = true, .stdin_ = true};
	build(&cfg, line, sizeof(line));
	ck_assert_str_eq(line, "panic=-1 console=ttyS0");
	config_free(&cfg);
}
END_TEST

START_TEST(console_on_com2_no_console)
{
	struct vm_config cfg;
	char line[LAYOUT_CMDLINE_MAX];

	config_init(&cfg);
	cfg.serial[0] = (struct serial_config){.present = true, .type = SERIAL_CFG_SINK};
	cfg.serial[1] = (struct serial_config){.present = true, .console = true};
	build(&cfg, line, sizeof(line));
	ck_assert_str_eq(line, "panic=-1 console=ttyS1");
	cfg.serial[1].console = false;
	build(&cfg, line, sizeof(line));
	ck_assert_str_eq(line, "panic=-1");
	config_free(&cfg);
}
END_TEST

/* A virtio console as the console is hvc<num-1>, as crosvm names it. */
START_TEST(console_on_virtio_console)
{
	struct vm_config cfg;
	char line[LAYOUT_CMDLINE_MAX];

	config_init(&cfg);
	cfg.serial[0] = (struct serial_config){.present = true, .type = SERIAL_CFG_SINK};
	cfg.vconsole[0] = (struct vconsole_config){.num = 3, .s = {.present = true}};
	cfg.vconsole[1] =
		(struct vconsole_config){.num = 1, .s = {.present = true, .console = true}};
	cfg.nr_vconsoles = 2;
	build(&cfg, line, sizeof(line));
	ck_assert_str_eq(line, "panic=-1 console=hvc0");
	cfg.vconsole[1].s.console = false;
	cfg.vconsole[0].s.console = true;
	build(&cfg, line, sizeof(line));
	ck_assert_str_eq(line, "panic=-1 console=hvc2");
	config_free(&cfg);
}
END_TEST

/* earlycon names the port's I/O address, COM1..COM4. */
START_TEST(earlycon_port_addresses)
{
	static const char *const want[] = {
		"panic=-1 earlycon=uart8250,io,0x3f8", "panic=-1 earlycon=uart8250,io,0x2f8",
		"panic=-1 earlycon=uart8250,io,0x3e8", "panic=-1 earlycon=uart8250,io,0x2e8"};
	char line[LAYOUT_CMDLINE_MAX];

	for (unsigned i = 0; i < CONFIG_MAX_SERIAL; i++) {
		struct vm_config cfg;

		config_init(&cfg);
		cfg.serial[i] = (struct serial_config){.present = true, .earlycon = true};
		build(&cfg, line, sizeof(line));
		ck_assert_str_eq(line, want[i]);
		config_free(&cfg);
	}
}
END_TEST

START_TEST(root_disk)
{
	struct vm_config cfg;
	char line[LAYOUT_CMDLINE_MAX];

	config_init(&cfg);
	cfg.nr_disks = 3;
	cfg.disks[1].root = true;
	cfg.disks[1].ro = true;
	build(&cfg, line, sizeof(line));
	ck_assert_str_eq(line, "panic=-1 root=/dev/vdb ro");
	cfg.disks[1].ro = false;
	build(&cfg, line, sizeof(line));
	ck_assert_str_eq(line, "panic=-1 root=/dev/vdb rw");
	cfg.disks[1].root = false;
	cfg.disks[0].root = true;
	build(&cfg, line, sizeof(line));
	ck_assert_str_eq(line, "panic=-1 root=/dev/vda rw");
	/* Past nr_disks nothing counts. */
	cfg.disks[0].root = false;
	cfg.disks[5].root = true;
	build(&cfg, line, sizeof(line));
	ck_assert_str_eq(line, "panic=-1");
	config_free(&cfg);
}
END_TEST

/* The user's -p comes last, so it can override what crosvm generated. */
START_TEST(full_order)
{
	struct vm_config cfg;
	char line[LAYOUT_CMDLINE_MAX];

	config_init(&cfg);
	cfg.serial[2] = (struct serial_config){.present = true, .console = true};
	cfg.serial[0] = (struct serial_config){.present = true, .earlycon = true};
	cfg.nr_disks = 1;
	cfg.disks[0].root = true;
	cfg.disks[0].ro = true;
	cfg.params = strdup("init=/bin/sh console=ttyS3");
	ck_assert_ptr_nonnull(cfg.params);
	build(&cfg, line, sizeof(line));
	ck_assert_str_eq(line, "panic=-1 console=ttyS2 earlycon=uart8250,io,0x3f8 "
			       "root=/dev/vda ro init=/bin/sh console=ttyS3");
	config_free(&cfg);
}
END_TEST

START_TEST(too_long_is_an_error)
{
	struct vm_config cfg;
	struct cmdline c;
	char *big = malloc(LAYOUT_CMDLINE_MAX);

	ck_assert_ptr_nonnull(big);
	config_init(&cfg);
	cfg.serial[0] = (struct serial_config){.present = true, .console = true};
	memset(big, 'x', LAYOUT_CMDLINE_MAX - 1);
	big[LAYOUT_CMDLINE_MAX - 1] = '\0';
	cfg.params = big;
	ck_assert_int_eq(cmdline_init(&c, LAYOUT_CMDLINE_MAX), 0);
	ck_assert_int_eq(boot_build_cmdline(&cfg, &c), -E2BIG);
	cmdline_free(&c);
	/* The kernel's own limit (cmdline_size) can be shorter than crosvm's. */
	free(cfg.params);
	cfg.params = strdup("quiet");
	ck_assert_ptr_nonnull(cfg.params);
	ck_assert_int_eq(cmdline_init(&c, 20), 0);
	ck_assert_int_eq(boot_build_cmdline(&cfg, &c), -E2BIG);
	cmdline_free(&c);
	ck_assert_int_eq(cmdline_init(&c, sizeof("panic=-1 console=ttyS0 quiet")), 0);
	ck_assert_int_eq(boot_build_cmdline(&cfg, &c), 0);
	ck_assert_str_eq(c.buf, "panic=-1 console=ttyS0 quiet");
	cmdline_free(&c);
	/* A newline in -p would split the line in /proc/cmdline: refused. */
	free(cfg.params);
	cfg.params = strdup("a\nb");
	ck_assert_ptr_nonnull(cfg.params);
	ck_assert_int_eq(cmdline_init(&c, LAYOUT_CMDLINE_MAX), 0);
	ck_assert_int_eq(boot_build_cmdline(&cfg, &c), -EINVAL);
	cmdline_free(&c);
	config_free(&cfg);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("boot_cmdline");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, default_console);
	tcase_add_test(tc, console_on_com2_no_console);
	tcase_add_test(tc, console_on_virtio_console);
	tcase_add_test(tc, earlycon_port_addresses);
	tcase_add_test(tc, root_disk);
	tcase_add_test(tc, full_order);
	tcase_add_test(tc, too_long_is_an_error);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
