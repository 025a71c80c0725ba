/*
 * The networking options of `crosvm run` as crosvm users write them: --net's modes and keys,
 * our `user` mode, every refusal, the deprecated options turned into devices, and the vCPU
 * cap on queue pairs.
 */
#include "core/vmm/cli.h"
#include "core/log.h"
#include "core/util.h"
#include "test/unit/testutil.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <string.h>

#define MAX_ARGS 32

static int parse(struct vm_config *cfg, ...)
{
	char *argv[MAX_ARGS + 2];
	struct logger lg;
	int argc = 0;
	const char *a;
	va_list ap;

	log_init(&lg);
	lg.level = LOG_LVL_OFF;
	argv[argc++] = (char *)"run";
	va_start(ap, cfg);
	while ((a = va_arg(ap, const char *))) {
		ck_assert_int_lt(argc, MAX_ARGS);
		argv[argc++] = (char *)a;
	}
	va_end(ap);
	argv[argc] = NULL;
	config_init(cfg);
	return cli_parse_run(argc, argv, cfg, &lg);
}

#define REFUSED(...)                                                                               \
	do {                                                                                       \
		struct vm_config c_;                                                               \
		ck_assert_int_eq(parse(&c_, __VA_ARGS__, NULL), -EINVAL);                          \
		config_free(&c_);                                                                  \
	} while (0)

static uint32_t ip(const char *s)
{
	struct in_addr a;

	ck_assert_int_eq(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

START_TEST(net_modes)
{
	static const uint8_t mac[6] = {0x3c, 0x70, 0xeb, 0x61, 0x1a, 0x91};
	struct vm_config c;

	ck_assert_int_eq(parse(&c, "--net", "tap-name=tap0", "k", NULL), 0);
	ck_assert_uint_eq(c.nr_nets, 1);
	ck_assert_int_eq(c.nets[0].mode, NET_TAP_NAME);
	ck_assert_str_eq(c.nets[0].tap_name, "tap0");
	ck_assert(!c.nets[0].has_mac && !c.nets[0].vhost && !c.nets[0].no_mrg_rxbuf);
	ck_assert_uint_eq(c.nets[0].vq_pairs, 1);
	config_free(&c);

	/* crosvm quotes values in its examples; the shell may leave the quotes in. */
	ck_assert_int_eq(parse(&c, "-c", "4", "--net", "tap-fd=12,mac=\"3c:70:eb:61:1a:91\"",
			       "--net", "tap-name=t1,vhost-net,vq-pairs=4,mrg_rxbuf=false", "k",
			       NULL),
			 0);
	ck_assert_uint_eq(c.nr_nets, 2);
	ck_assert_int_eq(c.nets[0].mode, NET_TAP_FD);
	ck_assert_int_eq(c.nets[0].tap_fd, 12);
	ck_assert(c.nets[0].has_mac);
	ck_assert_mem_eq(c.nets[0].mac, mac, 6);
	ck_assert(c.nets[1].vhost && c.nets[1].no_mrg_rxbuf);
	ck_assert_ptr_null(c.nets[1].vhost_device);
	ck_assert_uint_eq(c.nets[1].vq_pairs, 4);
	config_free(&c);

	ck_assert_int_eq(parse(&c, "--net",
			       "host-ip=192.168.10.1,netmask=255.255.255.0,mac=3c:70:eb:61:1a:91,"
			       "vhost-net=[device=/dev/vhost-net-test]",
			       "k", NULL),
			 0);
	ck_assert_int_eq(c.nets[0].mode, NET_TAP_CREATE);
	ck_assert_uint_eq(c.nets[0].host_ip, ip("192.168.10.1"));
	ck_assert_uint_eq(c.nets[0].netmask, ip("255.255.255.0"));
	ck_assert_str_eq(c.nets[0].vhost_device, "/dev/vhost-net-test");
	ck_assert(c.nets[0].vhost);
	config_free(&c);

	ck_assert_int_eq(parse(&c, "--net",
			       "user,hostfwd=tcp:8022-:22,hostfwd=tcp:127.0.0.1:80-:8080,dns", "k",
			       NULL),
			 0);
	ck_assert_int_eq(c.nets[0].mode, NET_USER);
	ck_assert_uint_eq(c.nets[0].nr_fwd, 2);
	ck_assert_uint_eq(c.nets[0].fwd[0].host_port, 8022);
	ck_assert_uint_eq(c.nets[0].fwd[0].guest_port, 22);
	ck_assert_uint_eq(c.nets[0].fwd[1].host_port, 80);
	ck_assert_uint_eq(c.nets[0].fwd[1].guest_port, 8080);
	ck_assert(c.nets[0].dns);
	config_free(&c);
	ck_assert_int_eq(parse(&c, "--net", "user", "k", NULL), 0);
	ck_assert(!c.nets[0].dns);
	config_free(&c);
}
END_TEST

START_TEST(net_refusals)
{
	REFUSED("--net", "", "k");
	REFUSED("--net", "mac=3c:70:eb:61:1a:91", "k");			 /* no mode */
	REFUSED("--net", "tap-name=a,tap-fd=3", "k");			 /* two modes */
	REFUSED("--net", "tap-name=a,user", "k");			 /* two modes */
	REFUSED("--net", "host-ip=10.0.0.1,mac=3c:70:eb:61:1a:91", "k"); /* no netmask */
	REFUSED("--net", "host-ip=10.0.0.1,netmask=255.0.0.0", "k");	 /* no mac */
	REFUSED("--net", "tap-name=a,netmask=255.0.0.0", "k");
	REFUSED("--net", "host-ip=10.0.0.300,netmask=255.0.0.0,mac=3c:70:eb:61:1a:91", "k");
	REFUSED("--net", "tap-name=a,mac=01:00:5e:00:00:01", "k"); /* multicast */
	REFUSED("--net", "tap-name=a,mac=00:00:00:00:00:00", "k");
	REFUSED("--net", "tap-name=a,mac=3c:70:eb:61:1a", "k");
	REFUSED("--net", "tap-name=a,mac=3c:70:eb:61:1a:91:00", "k");
	REFUSED("--net", "tap-name=a,vq-pairs=0", "k");
	REFUSED("--net", "tap-name=a,vq-pairs=9", "k");
	REFUSED("--net", "tap-fd=3,vq-pairs=2", "-c", "2", "k");
	REFUSED("--net", "tap-fd=x", "k");
	REFUSED("--net", "tap-name=a,vhost-net=maybe", "k");
	REFUSED("--net", "tap-name=a,vhost-net=[path=/x]", "k");
	REFUSED("--net", "tap-name=a,frobnicate", "k");
	REFUSED("--net", "tap-name=a,packed-queue", "k");
	REFUSED("--net", "tap-name=a,hostfwd=tcp:1-:2", "k"); /* hostfwd is user's */
	REFUSED("--net", "user,vhost-net", "k");
	REFUSED("--net", "user,hostfwd=udp:1-:2", "k");
	REFUSED("--net", "user,hostfwd=tcp:0.0.0.0:8080-:80", "k"); /* loopback only */
	REFUSED("--net", "user,hostfwd=tcp:8080-10.0.2.16:80", "k");
	REFUSED("--net", "user,hostfwd=tcp:0-:80", "k");
	REFUSED("--net", "user,hostfwd=tcp:70000-:80", "k");
	REFUSED("--net", "user,hostfwd=tcp:8080", "k");
	/* Nine devices: one more than the PCI budget for them. */
	REFUSED("--net", "tap-name=a", "--net", "tap-name=a", "--net", "tap-name=a", "--net",
		"tap-name=a", "--net", "tap-name=a", "--net", "tap-name=a", "--net", "tap-name=a",
		"--net", "tap-name=a", "--net", "tap-name=a", "k");
}
END_TEST

START_TEST(deprecated_options)
{
	struct vm_config c;

	/* --host_ip is the seed's spelling; the three go together and make one device. */
	ck_assert_int_eq(parse(&c, "--net", "tap-name=first", "--host_ip", "10.1.0.1", "--netmask",
			       "255.255.0.0", "--mac", "3c:70:eb:61:1a:91", "--tap-name", "t0",
			       "--tap-fd", "7", "--tap-name", "t1", "--vhost-net", "k", NULL),
			 0);
	ck_assert_uint_eq(c.nr_nets, 5);
	ck_assert_int_eq(c.nets[0].mode, NET_TAP_NAME);
	ck_assert(!c.nets[0].vhost); /* --vhost-net is for the deprecated devices */
	ck_assert_int_eq(c.nets[1].mode, NET_TAP_CREATE);
	ck_assert_uint_eq(c.nets[1].host_ip, ip("10.1.0.1"));
	ck_assert(c.nets[1].vhost);
	ck_assert_str_eq(c.nets[2].tap_name, "t0");
	ck_assert_str_eq(c.nets[3].tap_name, "t1");
	ck_assert_int_eq(c.nets[4].mode, NET_TAP_FD);
	ck_assert_int_eq(c.nets[4].tap_fd, 7);
	ck_assert(c.nets[4].vhost);
	config_free(&c);

	ck_assert_int_eq(parse(&c, "--host-ip", "10.1.0.1", "--netmask", "255.255.0.0", "--mac",
			       "3c:70:eb:61:1a:91", "-c", "2", "--net-vq-pairs", "2", "k", NULL),
			 0);
	ck_assert_uint_eq(c.nets[0].vq_pairs, 2);
	config_free(&c);

	REFUSED("--host-ip", "10.1.0.1", "--netmask", "255.255.0.0", "k");
	REFUSED("--mac", "3c:70:eb:61:1a:91", "k");
	REFUSED("--vhost-net", "k");
	REFUSED("--tap-fd", "-1", "k");
	REFUSED("--net-vq-pairs", "0", "k");
}
END_TEST

START_TEST(queue_pairs_capped_by_vcpus)
{
	struct vm_config c;

	/* As crosvm: more pairs than vCPUs falls back to one pair (with a warning). */
	ck_assert_int_eq(parse(&c, "-c", "2", "--net", "tap-name=a,vq-pairs=4", "--net",
			       "tap-name=b,vq-pairs=2", "k", NULL),
			 0);
	ck_assert_uint_eq(c.nets[0].vq_pairs, 1);
	ck_assert_uint_eq(c.nets[1].vq_pairs, 2);
	config_free(&c);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("net_cli");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, net_modes);
	tcase_add_test(tc, net_refusals);
	tcase_add_test(tc, deprecated_options);
	tcase_add_test(tc, queue_pairs_capped_by_vcpus);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
