#include "test/unit/testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <event2/event.h>

#include "core/device.h"
#include "core/log.h"
#include "legacy/serial.h"

/* ---- The register model, with a recording owner ---- */

struct rec {
	unsigned irqs, rx_room;
	unsigned tx_len;
	uint8_t tx[256];
};

static void rec_tx(void *ctx, uint8_t b)
{
	struct rec *r = ctx;

	if (r->tx_len < sizeof(r->tx))
		r->tx[r->tx_len] = b;
	r->tx_len++;
}

static void rec_irq(void *ctx)
{
	((struct rec *)ctx)->irqs++;
}

static void rec_rx_room(void *ctx)
{
	((struct rec *)ctx)->rx_room++;
}

static const struct serial_uart_ops rec_ops = {rec_tx, rec_irq, rec_rx_room};

static uint8_t rd(struct serial_uart *u, unsigned reg)
{
	uint8_t v = 0xee;

	ck_assert_int_eq(serial_uart_access(u, reg, &v, false), 0);
	return v;
}

static void wr(struct serial_uart *u, unsigned reg, uint8_t v)
{
	ck_assert_int_eq(serial_uart_access(u, reg, &v, true), 0);
}

static void rx(struct serial_uart *u, const char *s)
{
	unsigned n = (unsigned)strlen(s);

	ck_assert_uint_eq(serial_uart_receive(u, (const uint8_t *)s, n), n);
}

START_TEST(divisor_latch)
{
	struct serial_uart u;
	struct rec r = {0};

	serial_uart_init(&u, &rec_ops, &r);
	wr(&u, SERIAL_LCR, 0x83);
	ck_assert_uint_eq(rd(&u, SERIAL_DLL), SERIAL_DEFAULT_DL);
	ck_assert_uint_eq(rd(&u, SERIAL_DLM), 0);
	wr(&u, SERIAL_DLL, 0x01);
	wr(&u, SERIAL_DLM, 0x02);
	ck_assert_uint_eq(r.tx_len, 0); /* a DLL write is not a transmitted byte */
	ck_assert_uint_eq(rd(&u, SERIAL_DLL), 0x01);
	ck_assert_uint_eq(rd(&u, SERIAL_DLM), 0x02);
	ck_assert_uint_eq(rd(&u, SERIAL_IER), 0x02);
	wr(&u, SERIAL_LCR, 0x03);
	ck_assert_uint_eq(rd(&u, SERIAL_IER), 0); /* IER itself was never written */
	wr(&u, SERIAL_THR, 'x');
	ck_assert_uint_eq(r.tx_len, 1);
	ck_assert_uint_eq(r.tx[0], 'x');
	wr(&u, SERIAL_LCR, 0x83);
	ck_assert_uint_eq(rd(&u, SERIAL_DLL), 0x01);
}
END_TEST

START_TEST(register_semantics)
{
	struct serial_uart u;
	struct rec r = {0};

	serial_uart_init(&u, &rec_ops, &r);
	ck_assert_uint_eq(rd(&u, SERIAL_LCR), 0x03);
	ck_assert_uint_eq(rd(&u, SERIAL_MCR), SERIAL_MCR_OUT2);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_NONE);
	ck_assert_uint_eq(rd(&u, SERIAL_LSR), SERIAL_LSR_THRE | SERIAL_LSR_TEMT);
	ck_assert_uint_eq(rd(&u, SERIAL_MSR), SERIAL_MSR_DCD | SERIAL_MSR_DSR | SERIAL_MSR_CTS);
	wr(&u, SERIAL_SCR, 0x5a);
	ck_assert_uint_eq(rd(&u, SERIAL_SCR), 0x5a);
	wr(&u, SERIAL_IER, 0xff);
	ck_assert_uint_eq(rd(&u, SERIAL_IER), 0x0f);
	wr(&u, SERIAL_IER, 0);
	wr(&u, SERIAL_MCR, 0xff);
	ck_assert_uint_eq(rd(&u, SERIAL_MCR), 0x1f);
	wr(&u, SERIAL_MCR, SERIAL_MCR_OUT2);
	wr(&u, SERIAL_LSR, 0x00);
	wr(&u, SERIAL_MSR, 0x00);
	ck_assert_uint_eq(rd(&u, SERIAL_LSR), SERIAL_LSR_THRE | SERIAL_LSR_TEMT);
	ck_assert_uint_eq(rd(&u, SERIAL_MSR) & 0xf0, 0xb0);
	wr(&u, SERIAL_LCR, 0x1b);
	ck_assert_uint_eq(rd(&u, SERIAL_LCR), 0x1b);
	ck_assert_int_eq(serial_uart_access(&u, 8, &(uint8_t){0}, false), -EINVAL);
	/* FIFO enable shows in IIR bits 6-7; FCR reset of the receive FIFO empties it. */
	wr(&u, SERIAL_FCR, SERIAL_FCR_ENABLE);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_FIFO | SERIAL_IIR_NONE);
	rx(&u, "abc");
	ck_assert_uint_eq(rd(&u, SERIAL_LSR) & SERIAL_LSR_DR, SERIAL_LSR_DR);
	wr(&u, SERIAL_FCR, SERIAL_FCR_ENABLE | SERIAL_FCR_CLR_RX);
	ck_assert_uint_eq(rd(&u, SERIAL_LSR) & SERIAL_LSR_DR, 0);
	wr(&u, SERIAL_FCR, 0);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_NONE);
}
END_TEST

START_TEST(iir_priority_and_clearing)
{
	struct serial_uart u;
	struct rec r = {0};

	serial_uart_init(&u, &rec_ops, &r);
	/* Overrun the FIFO in loopback to get a line-status condition. */
	wr(&u, SERIAL_MCR, SERIAL_MCR_LOOP | SERIAL_MCR_OUT2);
	for (unsigned i = 0; i <= SERIAL_RX_FIFO; i++)
		wr(&u, SERIAL_THR, (uint8_t)i);
	wr(&u, SERIAL_MCR, SERIAL_MCR_OUT2); /* leaving loopback changes modem lines: MSR deltas */
	wr(&u, SERIAL_IER, 0x0f);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_RLS);
	ck_assert_uint_eq(rd(&u, SERIAL_LSR) & (SERIAL_LSR_OE | SERIAL_LSR_DR),
			  SERIAL_LSR_OE | SERIAL_LSR_DR);
	ck_assert_uint_eq(rd(&u, SERIAL_LSR) & SERIAL_LSR_OE, 0); /* read clears OE */
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_RDA);
	for (unsigned i = 0; i < SERIAL_RX_FIFO; i++)
		ck_assert_uint_eq(rd(&u, SERIAL_RBR), i);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_THRE);
	/* Reading IIR acknowledged THRE; modem status is next, cleared by reading MSR. */
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_MSR);
	ck_assert_uint_ne(rd(&u, SERIAL_MSR) & 0x0f, 0);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_NONE);
	ck_assert_uint_eq(r.tx_len, 0); /* nothing left the UART while in loopback */
}
END_TEST

START_TEST(thr_empty_interrupt)
{
	struct serial_uart u;
	struct rec r = {0};

	serial_uart_init(&u, &rec_ops, &r);
	wr(&u, SERIAL_IER, SERIAL_IER_ETBEI);
	ck_assert_uint_eq(r.irqs, 1);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_THRE);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_NONE);
	/* Each transmitted byte empties THR again: a new edge each time. */
	wr(&u, SERIAL_THR, 'a');
	ck_assert_uint_eq(r.irqs, 2);
	wr(&u, SERIAL_THR, 'b');
	ck_assert_uint_eq(r.irqs, 3);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_THRE);
	/* Re-enabling ETBEI while THR is empty raises it again (Linux checks this). */
	wr(&u, SERIAL_IER, 0);
	wr(&u, SERIAL_IER, SERIAL_IER_ETBEI);
	ck_assert_uint_eq(r.irqs, 4);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_THRE);
	/* Without OUT2 the line stays low although IIR reports the cause. */
	wr(&u, SERIAL_MCR, 0);
	wr(&u, SERIAL_THR, 'c');
	ck_assert_uint_eq(r.irqs, 4);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_THRE);
	wr(&u, SERIAL_THR, 'd');
	wr(&u, SERIAL_MCR, SERIAL_MCR_OUT2);
	ck_assert_uint_eq(r.irqs, 5);
	ck_assert_uint_eq(r.tx_len, 4);
	ck_assert_int_eq(memcmp(r.tx, "abcd", 4), 0);
}
END_TEST

START_TEST(receive_interrupt)
{
	struct serial_uart u;
	struct rec r = {0};

	serial_uart_init(&u, &rec_ops, &r);
	rx(&u, "x");
	ck_assert_uint_eq(r.irqs, 0); /* ERBFI off */
	wr(&u, SERIAL_IER, SERIAL_IER_ERBFI);
	ck_assert_uint_eq(r.irqs, 1);
	rx(&u, "yz");
	ck_assert_uint_eq(r.irqs, 2); /* a new byte is a new edge although the line was up */
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_RDA);
	ck_assert_uint_eq(rd(&u, SERIAL_RBR), 'x');
	ck_assert_uint_eq(rd(&u, SERIAL_RBR), 'y');
	ck_assert_uint_eq(rd(&u, SERIAL_LSR) & SERIAL_LSR_DR, SERIAL_LSR_DR);
	ck_assert_uint_eq(rd(&u, SERIAL_RBR), 'z');
	ck_assert_uint_eq(rd(&u, SERIAL_LSR) & SERIAL_LSR_DR, 0);
	ck_assert_uint_eq(rd(&u, SERIAL_IIR), SERIAL_IIR_NONE);
	rx(&u, "w");
	ck_assert_uint_eq(r.irqs, 3);
}
END_TEST

START_TEST(loopback)
{
	struct serial_uart u;
	struct rec r = {0};

	serial_uart_init(&u, &rec_ops, &r);
	/* Linux's probe: loopback with RTS and OUT2 must read back CTS and DCD only. */
	wr(&u, SERIAL_MCR, SERIAL_MCR_LOOP | 0x0a);
	ck_assert_uint_eq(rd(&u, SERIAL_MSR) & 0xf0, SERIAL_MSR_DCD | SERIAL_MSR_CTS);
	wr(&u, SERIAL_MCR, SERIAL_MCR_LOOP | SERIAL_MCR_DTR | SERIAL_MCR_OUT1);
	ck_assert_uint_eq(rd(&u, SERIAL_MSR), SERIAL_MSR_DSR | SERIAL_MSR_RI | SERIAL_MSR_DCTS |
						      SERIAL_MSR_DDSR | SERIAL_MSR_DDCD);
	wr(&u, SERIAL_MCR, SERIAL_MCR_LOOP);
	ck_assert_uint_eq(rd(&u, SERIAL_MSR), SERIAL_MSR_DDSR | SERIAL_MSR_TERI);
	ck_assert_uint_eq(serial_uart_rx_room(&u), 0); /* the line is disconnected */
	wr(&u, SERIAL_THR, 'q');
	wr(&u, SERIAL_THR, 'r');
	ck_assert_uint_eq(r.tx_len, 0);
	ck_assert_uint_eq(rd(&u, SERIAL_RBR), 'q');
	ck_assert_uint_eq(rd(&u, SERIAL_RBR), 'r');
	wr(&u, SERIAL_MCR, SERIAL_MCR_OUT2);
	ck_assert_uint_eq(rd(&u, SERIAL_MSR) & 0xf0, 0xb0);
	wr(&u, SERIAL_THR, 's');
	ck_assert_uint_eq(r.tx_len, 1);
}
END_TEST

START_TEST(model_backpressure)
{
	struct serial_uart u;
	struct rec r = {0};
	uint8_t buf[100];

	serial_uart_init(&u, &rec_ops, &r);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	ck_assert_uint_eq(serial_uart_receive(&u, buf, sizeof(buf)), SERIAL_RX_FIFO);
	ck_assert_uint_eq(serial_uart_rx_room(&u), 0);
	ck_assert_uint_eq(rd(&u, SERIAL_LSR) & SERIAL_LSR_OE, 0); /* refused, not overrun */
	for (unsigned i = 0; i < SERIAL_RX_FIFO / 2 - 1; i++)
		rd(&u, SERIAL_RBR);
	ck_assert_uint_eq(r.rx_room, 0);
	rd(&u, SERIAL_RBR);
	ck_assert_uint_eq(r.rx_room, 1);
	rd(&u, SERIAL_RBR);
	ck_assert_uint_eq(r.rx_room, 1); /* once per refusal, not per byte */
}
END_TEST

/* ---- The device, with real fds and an event loop ---- */

static const struct logger quiet = {.level = LOG_LVL_ERROR, .to_stderr = true, .tag = "test"};

static int dev_rd(struct device *d, unsigned reg, uint8_t *v)
{
	return device_io(d, 0, reg, v, 1, false);
}

static void dev_wr(struct device *d, unsigned reg, uint8_t v)
{
	ck_assert_int_eq(device_io(d, 0, reg, &v, 1, true), 0);
}

static uint64_t irq_count(int efd)
{
	uint64_t n = 0;

	if (read(efd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

START_TEST(input_backpressure)
{
	enum { TOTAL = 1000 };
	struct serial_params p = {.num = 1, .type = SERIAL_SINK, .out_fd = -1, .log = &quiet};
	struct event_base *eb = event_base_new();
	uint8_t in[TOTAL], got[TOTAL], lsr;
	unsigned n = 0, spins = 0;
	int pfd[2], efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct device *d;

	ck_assert_ptr_nonnull(eb);
	ck_assert_int_ge(efd, 0);
	ck_assert_int_eq(pipe(pfd), 0);
	for (unsigned i = 0; i < TOTAL; i++)
		in[i] = (uint8_t)(i * 7 + i / 256);
	ck_assert_int_eq(write(pfd[1], in, TOTAL), TOTAL);
	p.in_fd = pfd[0];
	p.irq_fd = dup(efd);
	ck_assert_int_eq(serial_create(&p, &d), 0);
	ck_assert_int_eq(device_start(d, eb), 0);
	dev_wr(d, SERIAL_IER, SERIAL_IER_ERBFI);
	/* The guest drains slowly, a few bytes per loop turn, so the FIFO fills up. */
	while (n < TOTAL && spins++ < 100000) {
		event_base_loop(eb, EVLOOP_NONBLOCK);
		for (unsigned k = 0; k < 5; k++) {
			ck_assert_int_eq(dev_rd(d, SERIAL_LSR, &lsr), 0);
			ck_assert_uint_eq(lsr & SERIAL_LSR_OE, 0);
			if (!(lsr & SERIAL_LSR_DR))
				break;
			ck_assert_int_eq(dev_rd(d, SERIAL_RBR, &got[n]), 0);
			n++;
		}
	}
	ck_assert_uint_eq(n, TOTAL);
	ck_assert_int_eq(memcmp(in, got, TOTAL), 0);
	ck_assert_uint_gt(irq_count(efd), 0);
	device_stop(d);
	device_destroy(d);
	close(pfd[1]);
	close(efd);
	event_base_free(eb);
}
END_TEST

START_TEST(input_eof_and_regular_file)
{
	struct serial_params p = {.num = 2, .type = SERIAL_SINK, .out_fd = -1, .log = &quiet};
	struct event_base *eb = event_base_new();
	char path[64];
	uint8_t b;
	struct device *d;
	char got[8] = {0};
	unsigned n = 0;

	/* stdin redirected from a file cannot be polled; it is read all the same. */
	ck_assert_int_eq(testutil_tmpfile("hello", 5, path, sizeof(path)), 0);
	p.in_fd = open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	ck_assert_int_ge(p.in_fd, 0);
	ck_assert_int_eq(serial_create(&p, &d), 0);
	ck_assert_int_eq(device_start(d, eb), 0);
	for (unsigned spin = 0; spin < 100 && n < 5; spin++) {
		event_base_loop(eb, EVLOOP_NONBLOCK);
		while (dev_rd(d, SERIAL_LSR, &b) == 0 && (b & SERIAL_LSR_DR) && n < 5)
			dev_rd(d, SERIAL_RBR, (uint8_t *)&got[n++]);
	}
	ck_assert_str_eq(got, "hello");
	/* End of input is not an error: the loop keeps running and the UART still works. */
	ck_assert_int_ge(event_base_loop(eb, EVLOOP_NONBLOCK), 0);
	dev_wr(d, SERIAL_SCR, 0x42);
	ck_assert_int_eq(dev_rd(d, SERIAL_SCR, &b), 0);
	ck_assert_uint_eq(b, 0x42);
	device_stop(d);
	device_destroy(d);
	event_base_free(eb);
}
END_TEST

START_TEST(output_file_and_irq)
{
	struct serial_params p = {.num = 1, .type = SERIAL_FILE, .in_fd = -1, .log = &quiet};
	int pfd[2], efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct device *d;
	char buf[16] = {0};
	struct fd_list fl = {.nr = 0};

	ck_assert_int_eq(pipe(pfd), 0);
	p.out_fd = pfd[1];
	p.irq_fd = dup(efd);
	ck_assert_int_eq(serial_create(&p, &d), 0);
	ck_assert_int_eq(device_fds(d, &fl), 0);
	ck_assert_uint_eq(fl.nr, 3); /* out, irq, the device's own wake eventfd */
	dev_wr(d, SERIAL_IER, SERIAL_IER_ETBEI);
	ck_assert_uint_eq(irq_count(efd), 1);
	for (const char *s = "hi\n"; *s; s++)
		dev_wr(d, SERIAL_THR, (uint8_t)*s);
	ck_assert_uint_eq(irq_count(efd), 3);
	ck_assert_int_eq(read(pfd[0], buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "hi\n");
	/* A 2-byte access reaches two consecutive registers. */
	ck_assert_int_eq(device_io(d, 0, 3, &(uint16_t){0x0b03}, 2, true), 0);
	ck_assert_int_eq(dev_rd(d, SERIAL_MCR, (uint8_t *)buf), 0);
	ck_assert_uint_eq((uint8_t)buf[0], 0x0b);
	ck_assert_int_eq(device_io(d, 0, 7, buf, 2, false), -EINVAL);
	ck_assert_int_eq(device_io(d, 1, 0, buf, 1, false), -EINVAL);
	device_destroy(d);
	close(pfd[0]);
	close(efd);
}
END_TEST

START_TEST(output_eagain_keeps_bytes)
{
	enum { EXTRA = 3000 };
	struct serial_params p = {
		.num = 1, .type = SERIAL_STDOUT, .in_fd = -1, .irq_fd = -1, .log = &quiet};
	struct event_base *eb = event_base_new();
	uint8_t sink[8192];
	int pfd[2], cap;
	struct device *d;
	size_t n = 0;
	ssize_t r;

	ck_assert_int_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
	cap = fcntl(pfd[1], F_SETPIPE_SZ, 4096);
	ck_assert_int_gt(cap, 0);
	ck_assert_int_le(cap + EXTRA, (int)sizeof(sink));
	p.out_fd = pfd[1];
	ck_assert_int_eq(serial_create(&p, &d), 0);
	ck_assert_int_eq(device_start(d, eb), 0);
	/* More than the pipe holds: the rest waits in the device while the reader is away. */
	for (unsigned i = 0; i < (unsigned)cap + EXTRA; i++)
		dev_wr(d, SERIAL_THR, (uint8_t)(i % 251));
	for (unsigned spin = 0; spin < 10000 && n < (size_t)cap + EXTRA; spin++) {
		r = read(pfd[0], sink + n, sizeof(sink) - n);
		if (r > 0)
			n += (size_t)r;
		event_base_loop(eb, EVLOOP_NONBLOCK);
	}
	ck_assert_uint_eq(n, (size_t)cap + EXTRA);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(sink[i], i % 251);
	device_stop(d);
	device_destroy(d);
	close(pfd[0]);
	event_base_free(eb);
}
END_TEST

START_TEST(syslog_lines_are_escaped)
{
	struct serial_params p = {
		.num = 3, .type = SERIAL_SYSLOG, .out_fd = -1, .in_fd = -1, .irq_fd = -1};
	struct logger lg;
	int pfd[2];
	struct device *d;
	char buf[512] = {0};

	/* The VMM log goes to stderr here; capture it (each test runs in its own process). */
	ck_assert_int_eq(pipe(pfd), 0);
	ck_assert_int_ge(dup2(pfd[1], STDERR_FILENO), 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	log_init(&lg);
	p.log = &lg;
	ck_assert_int_eq(serial_create(&p, &d), 0);
	for (const char *s = "boot \x1b[31mok\r\nnext"; *s; s++)
		dev_wr(d, SERIAL_THR, (uint8_t)*s);
	device_destroy(d); /* flushes the unterminated last line */
	close(pfd[1]);
	close(STDERR_FILENO);
	ck_assert_int_gt(read(pfd[0], buf, sizeof(buf) - 1), 0);
	ck_assert_ptr_nonnull(strstr(buf, "serial3: boot \\x1b[31mok\n"));
	ck_assert_ptr_nonnull(strstr(buf, "serial3: next\n"));
}
END_TEST

START_TEST(create_rejects_bad_params)
{
	struct serial_params p = {.num = 1,
				  .type = SERIAL_FILE,
				  .out_fd = -1,
				  .in_fd = -1,
				  .irq_fd = -1,
				  .log = &quiet};
	struct device *d;

	ck_assert_int_eq(serial_create(&p, &d), -EINVAL);
	p.type = SERIAL_SINK;
	p.num = 5;
	ck_assert_int_eq(serial_create(&p, &d), -EINVAL);
	p.num = 0;
	ck_assert_int_eq(serial_create(&p, &d), -EINVAL);
	p.num = 4;
	p.type = (enum serial_type)42;
	ck_assert_int_eq(serial_create(&p, &d), -EINVAL);
}
END_TEST

static Suite *serial_suite(void)
{
	Suite *s = suite_create("serial");
	TCase *model = tcase_create("model");
	TCase *dev = tcase_create("device");

	tcase_add_test(model, divisor_latch);
	tcase_add_test(model, register_semantics);
	tcase_add_test(model, iir_priority_and_clearing);
	tcase_add_test(model, thr_empty_interrupt);
	tcase_add_test(model, receive_interrupt);
	tcase_add_test(model, loopback);
	tcase_add_test(model, model_backpressure);
	tcase_add_test(dev, input_backpressure);
	tcase_add_test(dev, input_eof_and_regular_file);
	tcase_add_test(dev, output_file_and_irq);
	tcase_add_test(dev, output_eagain_keeps_bytes);
	tcase_add_test(dev, syslog_lines_are_escaped);
	tcase_add_test(dev, create_rejects_bad_params);
	suite_add_tcase(s, model);
	suite_add_tcase(s, dev);
	return s;
}

int main(void)
{
	return testutil_run(serial_suite());
}
