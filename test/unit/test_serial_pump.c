/*
 * The jailed host side of a serial port (legacy/serial_pump.c), driven in-process on its
 * event loop: bytes go from the TX pipe to the output and from the input to the RX pipe, in
 * order and complete, with back-pressure both ways; end of input reaches the UART; what is
 * in the TX pipe when the VM stops still comes out; once forked, the main process holds
 * none of its fds.
 */
#include "test/unit/testutil.h"

#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/device.h"
#include "legacy/serial.h"
#include "legacy/serial_pump.h"

struct rig {
	struct event_base *eb;
	struct device *dev;
	int tx_w;  /* the UART's end of the TX pipe */
	int out_r; /* what the host sees on "stdout" */
	int in_w;  /* what the host types on "stdin" */
	int rx_r;  /* the UART's end of the RX pipe */
};

static void nonblock(int fd)
{
	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* A pump between pipes, as serial_pump_wrap builds it, with pipes for stdout and stdin. */
static void setup(struct rig *r)
{
	struct serial_params p = {.num = 1, .out_fd = -1, .in_fd = -1, .irq_fd = -1};
	int out[2], in[2];

	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	/* A host stdout that can fill, without blocking the test. */
	nonblock(out[1]);
	nonblock(out[0]);
	p.out_fd = out[1];
	p.in_fd = in[0];
	ck_assert_int_eq(serial_pump_wrap(&p, &r->dev), 0);
	ck_assert_ptr_nonnull(r->dev);
	ck_assert_str_eq(r->dev->name, "serial1");
	ck_assert_str_eq(r->dev->policy, "serial_device");
	ck_assert(r->dev->sched_batch);
	/* The UART got new pipe ends: TX blocking, RX non-blocking. */
	ck_assert_int_ne(p.out_fd, out[1]);
	ck_assert_int_ne(p.in_fd, in[0]);
	ck_assert_int_eq(fcntl(p.out_fd, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_ne(fcntl(p.in_fd, F_GETFL) & O_NONBLOCK, 0);
	r->tx_w = p.out_fd;
	r->rx_r = p.in_fd;
	r->out_r = out[0];
	r->in_w = in[1];
	r->eb = event_base_new();
	ck_assert_ptr_nonnull(r->eb);
	ck_assert_int_eq(r->dev->ops->start(r->dev->priv, r->eb), 0);
}

static void teardown(struct rig *r)
{
	r->dev->ops->stop(r->dev->priv);
	r->dev->ops->destroy(r->dev->priv);
	event_base_free(r->eb);
	close(r->tx_w);
	close(r->out_r);
	close(r->in_w);
	close(r->rx_r);
}

static void spin(struct rig *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		ck_assert_int_ge(event_base_loop(r->eb, EVLOOP_NONBLOCK), 0);
}

/* Reads what fd has now (non-blocking), up to max. */
static size_t take(int fd, uint8_t *buf, size_t max)
{
	ssize_t n = read(fd, buf, max);

	return n > 0 ? (size_t)n : 0;
}

START_TEST(output_goes_out_in_order)
{
	struct rig r;
	uint8_t buf[16];

	setup(&r);
	ck_assert_int_eq(write(r.tx_w, "hello", 5), 5);
	spin(&r, 3);
	ck_assert_uint_eq(take(r.out_r, buf, sizeof(buf)), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	teardown(&r);
}
END_TEST

/* 1 MiB through a stdout that fills up: nothing lost, nothing reordered. */
START_TEST(output_pushes_back)
{
	enum { TOTAL = 1 << 20 };
	uint8_t *sent = malloc(TOTAL), *got = malloc(TOTAL);
	size_t wrote = 0, read_ = 0;
	struct rig r;

	ck_assert_ptr_nonnull(sent);
	ck_assert_ptr_nonnull(got);
	for (size_t i = 0; i < TOTAL; i++)
		sent[i] = (uint8_t)(i * 7 + i / 4096);
	setup(&r);
	nonblock(r.tx_w); /* the test plays the UART and must not block */
	for (unsigned guard = 0; read_ < TOTAL && guard < 100000; guard++) {
		ssize_t n = wrote < TOTAL ? write(r.tx_w, sent + wrote, TOTAL - wrote) : 0;

		if (n > 0)
			wrote += (size_t)n;
		spin(&r, 1);
		/* Read slowly: the output pipe fills, the pump must wait and keep everything. */
		if (guard % 3 == 0)
			read_ += take(r.out_r, got + read_, TOTAL - read_);
	}
	ck_assert_uint_eq(read_, TOTAL);
	ck_assert_mem_eq(got, sent, TOTAL);
	teardown(&r);
	free(sent);
	free(got);
}
END_TEST

START_TEST(input_reaches_the_uart_then_its_end)
{
	struct rig r;
	uint8_t buf[16];

	setup(&r);
	ck_assert_int_eq(write(r.in_w, "abc", 3), 3);
	spin(&r, 3);
	ck_assert_uint_eq(take(r.rx_r, buf, sizeof(buf)), 3);
	ck_assert_mem_eq(buf, "abc", 3);
	/* End of input closes the RX pipe: the UART reads end of file. */
	close(r.in_w);
	r.in_w = -1;
	spin(&r, 3);
	ck_assert_int_eq(read(r.rx_r, buf, sizeof(buf)), 0);
	teardown(&r);
}
END_TEST

/* A guest that does not read its input: the pump stops reading the host's. */
START_TEST(input_pushes_back)
{
	enum { CHUNK = 4096 };
	static uint8_t chunk[CHUNK], buf[CHUNK];
	size_t typed = 0, got = 0;
	struct rig r;

	setup(&r);
	nonblock(r.in_w);
	for (unsigned i = 0; i < 200; i++) {
		ssize_t n = write(r.in_w, chunk, sizeof(chunk));

		if (n > 0)
			typed += (size_t)n;
		spin(&r, 1);
	}
	/* Both pipes are full and the rest waits on "stdin": the host's writes stopped. */
	ck_assert_int_lt(write(r.in_w, chunk, sizeof(chunk)), 0);
	for (unsigned i = 0; got < typed && i < 10000; i++) {
		got += take(r.rx_r, buf, sizeof(buf));
		spin(&r, 1);
	}
	ck_assert_uint_eq(got, typed);
	teardown(&r);
}
END_TEST

/* A regular file as stdin (not pollable) is read to its end. */
START_TEST(input_from_a_regular_file)
{
	struct serial_params p = {.num = 2, .out_fd = -1, .in_fd = -1, .irq_fd = -1};
	char path[64];
	struct event_base *eb = event_base_new();
	struct device *dev = NULL;
	uint8_t buf[64];
	size_t got = 0;
	int fd;

	ck_assert_int_eq(testutil_tmpfile("typed ahead", 11, path, sizeof(path)), 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	ck_assert_int_ge(fd, 0);
	p.in_fd = fd;
	ck_assert_int_eq(serial_pump_wrap(&p, &dev), 0);
	ck_assert_int_lt(p.out_fd, 0); /* no output side: no TX pipe */
	ck_assert_int_eq(dev->ops->start(dev->priv, eb), 0);
	for (unsigned i = 0; i < 10; i++) {
		ck_assert_int_ge(event_base_loop(eb, EVLOOP_NONBLOCK), 0);
		got += take(p.in_fd, buf + got, sizeof(buf) - got);
	}
	ck_assert_uint_eq(got, 11);
	ck_assert_mem_eq(buf, "typed ahead", 11);
	ck_assert_int_eq(read(p.in_fd, buf, sizeof(buf)), 0);
	dev->ops->stop(dev->priv);
	dev->ops->destroy(dev->priv);
	event_base_free(eb);
	close(p.in_fd);
}
END_TEST

/* The VM stops with output still in the TX pipe: stopping the pump writes it out. */
START_TEST(stop_flushes_the_tx_pipe)
{
	struct rig r;
	uint8_t buf[16];

	setup(&r);
	ck_assert_int_eq(write(r.tx_w, "last words", 10), 10);
	r.dev->ops->stop(r.dev->priv);
	ck_assert_uint_eq(take(r.out_r, buf, sizeof(buf)), 10);
	ck_assert_mem_eq(buf, "last words", 10);
	teardown(&r);
}
END_TEST

/* Once the pump runs in its own process, the main process keeps none of its ends: writing
 * to a pump that is gone is an error, not a pipe that fills forever. */
START_TEST(forked_closes_the_pump_side)
{
	struct rig r;

	setup(&r);
	r.dev->ops->stop(r.dev->priv);
	r.dev->ops->forked(r.dev->priv);
	ck_assert_int_eq(write(r.tx_w, "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	teardown(&r);
}
END_TEST

START_TEST(refusals)
{
	struct serial_pump_params p = {
		.num = 1, .tx_in = 3, .out_fd = -1, .in_fd = -1, .rx_out = -1};
	struct serial_params none = {.num = 1, .out_fd = -1, .in_fd = -1, .irq_fd = -1};
	struct device *dev = (struct device *)1;

	/* A direction needs both of its fds. */
	ck_assert_int_eq(serial_pump_create(&p, &dev), -EINVAL);
	p = (struct serial_pump_params){
		.num = 1, .tx_in = -1, .out_fd = -1, .in_fd = 0, .rx_out = -1};
	ck_assert_int_eq(serial_pump_create(&p, &dev), -EINVAL);
	p.rx_out = 1;
	p.num = 5;
	ck_assert_int_eq(serial_pump_create(&p, &dev), -EINVAL);
	/* A port with no host fds needs no pump. */
	ck_assert_int_eq(serial_pump_wrap(&none, &dev), 0);
	ck_assert_ptr_null(dev);
	ck_assert_int_eq(none.out_fd, -1);
	ck_assert_int_eq(none.in_fd, -1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("serial_pump");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, output_goes_out_in_order);
	tcase_add_test(tc, output_pushes_back);
	tcase_add_test(tc, input_reaches_the_uart_then_its_end);
	tcase_add_test(tc, input_pushes_back);
	tcase_add_test(tc, input_from_a_regular_file);
	tcase_add_test(tc, stop_flushes_the_tx_pipe);
	tcase_add_test(tc, forked_closes_the_pump_side);
	tcase_add_test(tc, refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
