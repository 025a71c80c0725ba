/*
 * libFuzzer target for the 8250 model: random register accesses, interleaved with bursts of
 * received bytes, against the pure model and, through device_io() with arbitrary regions,
 * offsets and lengths, against the whole device with a syslog back end. Invariants that a
 * guest must never be able to break are checked after every step.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/log.h"
#include "legacy/serial.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct counts {
	unsigned long tx, irqs, rx_room;
};

static void on_tx(void *ctx, uint8_t b)
{
	((struct counts *)ctx)->tx++;
}

static void on_irq(void *ctx)
{
	((struct counts *)ctx)->irqs++;
}

static void on_rx_room(void *ctx)
{
	((struct counts *)ctx)->rx_room++;
}

static const struct serial_uart_ops ops = {on_tx, on_irq, on_rx_room};

static void check(const struct serial_uart *u)
{
	struct serial_uart peek = *u;
	uint8_t lsr, iir;

	peek.ops = NULL;
	if (u->rx_len > SERIAL_RX_FIFO || u->rx_head >= SERIAL_RX_FIFO)
		__builtin_trap();
	if (u->line && !(u->mcr & SERIAL_MCR_OUT2))
		__builtin_trap();
	serial_uart_access(&peek, SERIAL_LSR, &lsr, false);
	if ((lsr & (SERIAL_LSR_THRE | SERIAL_LSR_TEMT)) != (SERIAL_LSR_THRE | SERIAL_LSR_TEMT))
		__builtin_trap();
	if (!(lsr & SERIAL_LSR_DR) != !u->rx_len)
		__builtin_trap();
	serial_uart_access(&peek, SERIAL_IIR, &iir, false);
	iir &= (uint8_t)~SERIAL_IIR_FIFO;
	if (iir != SERIAL_IIR_NONE && iir != SERIAL_IIR_MSR && iir != SERIAL_IIR_THRE &&
	    iir != SERIAL_IIR_RDA && iir != SERIAL_IIR_RLS)
		__builtin_trap();
}

static void run_model(const uint8_t *data, size_t size)
{
	struct counts c = {0};
	struct serial_uart u;
	size_t i = 0;

	serial_uart_init(&u, &ops, &c);
	while (i < size) {
		uint8_t op = data[i++], v = 0;
		unsigned n;

		switch (op >> 6) {
		case 0:
			serial_uart_access(&u, op & 7, &v, false);
			break;
		case 1:
			v = i < size ? data[i++] : 0;
			serial_uart_access(&u, op & 7, &v, true);
			break;
		case 2:
			n = (unsigned)MIN((size_t)(op & 0x3f), size - i);
			if (serial_uart_receive(&u, data + i, n) > n)
				__builtin_trap();
			i += n;
			break;
		default:
			if (serial_uart_access(&u, 8u + (op & 0x3f), &v, op & 1) != -EINVAL)
				__builtin_trap();
			break;
		}
		check(&u);
	}
}

static void run_device(const uint8_t *data, size_t size)
{
	static const struct logger silent = {.level = LOG_LVL_OFF};
	struct serial_params p = {.num = 1,
				  .type = SERIAL_SYSLOG,
				  .out_fd = -1,
				  .in_fd = -1,
				  .irq_fd = -1,
				  .log = &silent};
	struct device *d;
	size_t i = 0;

	if (serial_create(&p, &d) < 0)
		return;
	while (i + 3 <= size) {
		uint8_t buf[16];
		unsigned region = data[i] >> 6, off = data[i] & 0x3f;
		uint32_t len = data[i + 1] & 0x1f;
		bool is_write = data[i + 1] & 0x80;

		memset(buf, data[i + 2], sizeof(buf));
		i += 3;
		if (len > sizeof(buf))
			len = sizeof(buf);
		device_io(d, region, off, buf, len, is_write);
	}
	device_destroy(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size && (data[0] & 1))
		run_device(data + 1, size - 1);
	else if (size)
		run_model(data + 1, size - 1);
	return 0;
}
