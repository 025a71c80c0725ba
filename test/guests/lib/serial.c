#include "serial.h"
#include "io.h"

/*
 * Bounded so a UART that never drains cannot stall the guest (a character may then be
 * lost). An emulated UART is ready at once; a real one at 115200 baud within ~90 us.
 */
#define THRE_POLL_LIMIT 10000

int serial_init(struct serial *s, uint16_t port)
{
	s->port = port;
	outb(port + UART_IER, 0);
	outb(port + UART_LCR, 0x80); /* DLAB: divisor 1 = 115200 baud */
	outb(port + UART_RBR, 1);
	outb(port + UART_IER, 0);
	outb(port + UART_LCR, 0x03); /* 8N1 */
	outb(port + UART_FCR, 0x07); /* enable and clear FIFOs */
	outb(port + UART_MCR, UART_MCR_DTR | UART_MCR_RTS);
	return 0;
}

void serial_putc(const struct serial *s, char c)
{
	for (unsigned i = 0; i < THRE_POLL_LIMIT; i++) {
		if (inb(s->port + UART_LSR) & UART_LSR_THRE)
			break;
		__asm__ volatile("pause");
	}
	outb(s->port + UART_THR, (uint8_t)c);
}

bool serial_rx_ready(const struct serial *s)
{
	return inb(s->port + UART_LSR) & UART_LSR_DR;
}

int serial_getc(const struct serial *s)
{
	if (!serial_rx_ready(s))
		return -ENODATA;
	return inb(s->port + UART_RBR);
}

void serial_set_ier(const struct serial *s, uint8_t bits)
{
	outb(s->port + UART_MCR, UART_MCR_DTR | UART_MCR_RTS | (bits ? UART_MCR_OUT2 : 0));
	outb(s->port + UART_IER, bits);
}

uint8_t serial_read_iir(const struct serial *s)
{
	return inb(s->port + UART_IIR);
}
