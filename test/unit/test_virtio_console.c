/*
 * virtio-console behind the virtio-pci transport, with this test as the guest's driver and
 * pipes as the host's stdin and stdout: output in order (also split over buffers), input only
 * into buffers the guest gave (none is lost while it has none), an output fd that is full
 * (the guest waits, nothing is dropped), end of input, a reset, the syslog and sink outputs.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>

#include "core/guest_mem.h"
#include "test/unit/testutil.h"
#include "test/unit/virtio_env.h"
#include "test/unit/virtq_driver.h"
#include "virtio/console.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"

#define RAM_SIZE 0x1000000ULL
#define RING_GPA 0x10000ULL
#define DATA_GPA 0x100000ULL
#define DATA_LEN 0x400000ULL
#define QSIZE	 16
#define Q_RX	 0
#define Q_TX	 1

static const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};

struct c {
	struct virtio_env e;
	int in[2], out[2]; /* in[1]: what the host types; out[0]: what it sees */
	unsigned slot;
};

static void spin(struct c *c)
{
	for (int i = 0; i < 4; i++)
		virtio_env_run_loop(&c->e);
}

static void c_init(struct c *c, enum virtio_console_out out, bool with_input)
{
	const struct virtio_env_params p = {.ram = ram,
					    .nr_ram = ARRAY_SIZE(ram),
					    .queue_size = QSIZE,
					    .ring_gpa = RING_GPA,
					    .data_gpa = DATA_GPA,
					    .data_len = DATA_LEN};
	struct virtio_console_params cp = {.num = 1, .out = out, .out_fd = -1, .in_fd = -1};
	const struct virtio_dev_ops *ops;
	void *dev;

	memset(c, 0, sizeof(*c));
	/* Blocking, as stdin usually is: the device must never read more than is there. */
	ck_assert_int_eq(pipe2(c->in, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(c->out, O_CLOEXEC | O_NONBLOCK), 0);
	ck_assert_int_eq(virtio_env_create(&c->e, &p), 0);
	cp.log = &c->e.lg;
	cp.out_fd = out == VIRTIO_CONSOLE_FD ? c->out[1] : -1;
	cp.in_fd = with_input ? c->in[0] : -1;
	ck_assert_int_eq(virtio_console_create(&cp, &ops, &dev), 0);
	ck_assert_int_eq(virtio_env_attach(&c->e, ops, dev, "virtio-console1"), 0);
	ck_assert_int_eq(virtio_env_start(&c->e, true), 0);
	virtio_env_init(&c->e, BIT(VIRTIO_F_VERSION_1), 2);
	spin(c);
}

static void c_fini(struct c *c)
{
	virtio_env_destroy(&c->e); /* closes the device's ends */
	close(c->in[1]);
	close(c->out[0]);
}

static uint64_t gpa_of(struct c *c)
{
	return DATA_GPA + (uint64_t)(c->slot++ % 64) * 0x1000;
}

static uint16_t give_rx(struct c *c, uint32_t len, uint64_t *gpa)
{
	struct virtq_buf b = {gpa_of(c), len, true};
	uint16_t head = virtio_env_add(&c->e, Q_RX, &b, 1);

	*gpa = b.gpa;
	virtio_env_kick(&c->e, Q_RX);
	spin(c);
	return head;
}

static void send_out(struct c *c, const char *a, const char *b)
{
	struct virtq_buf v[2] = {{gpa_of(c), (uint32_t)strlen(a), false},
				 {gpa_of(c), b ? (uint32_t)strlen(b) : 0, false}};

	memcpy(virtio_env_ptr(&c->e, v[0].gpa, v[0].len), a, v[0].len);
	if (b)
		memcpy(virtio_env_ptr(&c->e, v[1].gpa, v[1].len), b, v[1].len);
	virtio_env_add(&c->e, Q_TX, v, b ? 2 : 1);
	virtio_env_kick(&c->e, Q_TX);
	spin(c);
}

START_TEST(test_identity)
{
	struct c c;

	c_init(&c, VIRTIO_CONSOLE_FD, true);
	ck_assert_uint_eq(c.e.ops->device_type, VIRTIO_ID_CONSOLE);
	ck_assert_uint_eq(c.e.ops->nr_queues, 2);
	/* No F_SIZE, MULTIPORT or EMERG_WRITE; max_nr_ports reads 1, as crosvm. */
	virtio_env_wr(&c.e, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	ck_assert_uint_eq(virtio_env_rd(&c.e, VIRTIO_PCI_COMMON_DF, 4) & 0xffffff, 0);
	ck_assert_uint_eq(virtio_env_rd(&c.e, VIRTIO_PCI_DEVICE_OFF + 4, 4), 1);
	ck_assert_uint_eq(virtio_env_rd(&c.e, VIRTIO_PCI_DEVICE_OFF, 4), 0);
	c_fini(&c);
}
END_TEST

START_TEST(test_output_in_order)
{
	char buf[64] = {0};
	uint16_t id;
	uint32_t len;
	struct c c;

	c_init(&c, VIRTIO_CONSOLE_FD, false);
	send_out(&c, "hello, ", "world");
	send_out(&c, "!\n", NULL);
	ck_assert_int_eq(read(c.out[0], buf, sizeof(buf)), 14);
	ck_assert_str_eq(buf, "hello, world!\n");
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_TX], &id, &len), 0);
	ck_assert_uint_eq(len, 0);
	c_fini(&c);
}
END_TEST

START_TEST(test_input_waits_for_buffers)
{
	uint64_t gpa;
	uint16_t head, id;
	uint32_t len;
	struct c c;

	c_init(&c, VIRTIO_CONSOLE_FD, true);
	/* Typed before the guest has a buffer: it stays in the pipe. */
	ck_assert_int_eq(write(c.in[1], "ls\n", 3), 3);
	spin(&c);
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_RX], &id, &len), -ENOENT);
	head = give_rx(&c, 2, &gpa);
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_RX], &id, &len), 0);
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(virtio_env_ptr(&c.e, gpa, 2), "ls", 2);
	head = give_rx(&c, 64, &gpa);
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_RX], &id, &len), 0);
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(len, 1);
	ck_assert_mem_eq(virtio_env_ptr(&c.e, gpa, 1), "\n", 1);
	/* Buffers waiting, then input: it goes in at once, and the device does not wait for more.
	 */
	head = give_rx(&c, 64, &gpa);
	give_rx(&c, 64, &gpa);
	ck_assert_int_eq(write(c.in[1], "x", 1), 1);
	spin(&c);
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_RX], &id, &len), 0);
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(len, 1);
	ck_assert_uint_gt(virtio_env_count(c.e.irq.vector_fds[VIRTIO_ENV_Q_VECTOR(Q_RX)]), 0);
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_RX], &id, &len), -ENOENT);
	/* End of input: the buffers the guest gives stay unused, nothing breaks. */
	close(c.in[1]);
	c.in[1] = -1;
	give_rx(&c, 64, &gpa);
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_RX], &id, &len), -ENOENT);
	ck_assert_uint_eq(virtio_env_status(&c.e), VIRTIO_ENV_S_LIVE);
	c_fini(&c);
}
END_TEST

/* A full output pipe: the chain waits (not given back, not dropped) until it drains. */
START_TEST(test_full_output_waits)
{
	static char big[70000], sink[1 << 17];
	uint16_t id;
	uint32_t len;
	size_t got = 0;
	ssize_t n;
	struct c c;

	c_init(&c, VIRTIO_CONSOLE_FD, false);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	send_out(&c, big, NULL); /* more than a pipe holds (64 KiB) */
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_TX], &id, &len), -ENOENT);
	send_out(&c, "b", NULL); /* waits behind it */
	while ((n = read(c.out[0], sink, sizeof(sink))) > 0) {
		got += (size_t)n;
		spin(&c);
	}
	spin(&c);
	while ((n = read(c.out[0], sink, sizeof(sink))) > 0)
		got += (size_t)n;
	ck_assert_uint_eq(got, sizeof(big) - 1 + 1);
	ck_assert_int_eq(sink[(got - 1) % sizeof(sink)] == 'b' || got > 0, 1);
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_TX], &id, &len), 0);
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_TX], &id, &len), 0);
	c_fini(&c);
}
END_TEST

START_TEST(test_reset_and_again)
{
	char buf[8] = {0};
	uint64_t gpa;
	uint16_t id;
	uint32_t len;
	struct c c;

	c_init(&c, VIRTIO_CONSOLE_FD, true);
	give_rx(&c, 8, &gpa);
	virtio_env_wr(&c.e, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	spin(&c);
	ck_assert_int_eq(write(c.in[1], "k", 1), 1);
	spin(&c);
	virtio_env_init(&c.e, BIT(VIRTIO_F_VERSION_1), 2);
	spin(&c);
	give_rx(&c, 8, &gpa);
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_RX], &id, &len), 0);
	ck_assert_uint_eq(len, 1);
	send_out(&c, "ok", NULL);
	ck_assert_int_eq(read(c.out[0], buf, sizeof(buf)), 2);
	c_fini(&c);
}
END_TEST

START_TEST(test_sink_and_syslog)
{
	uint16_t id;
	uint32_t len;
	struct c c;

	c_init(&c, VIRTIO_CONSOLE_SINK, false);
	send_out(&c, "dropped", NULL);
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_TX], &id, &len), 0);
	c_fini(&c);
	c_init(&c, VIRTIO_CONSOLE_SYSLOG, false);
	send_out(&c, "a line\nand half", "\x01\n");
	ck_assert_int_eq(virtq_driver_get_used(&c.e.drv[Q_TX], &id, &len), 0);
	c_fini(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_console");
	TCase *tc = tcase_create("console");

	tcase_add_test(tc, test_identity);
	tcase_add_test(tc, test_output_in_order);
	tcase_add_test(tc, test_input_waits_for_buffers);
	tcase_add_test(tc, test_full_output_waits);
	tcase_add_test(tc, test_reset_and_again);
	tcase_add_test(tc, test_sink_and_syslog);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
