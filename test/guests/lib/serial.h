/*
 * The 8250/16550 UART at COM1: polled output, polled or interrupt-signalled input.
 */
#ifndef GUEST_SERIAL_H
#define GUEST_SERIAL_H

#include "util.h"

#define SERIAL_COM1 0x3f8

/* Register offsets and bits the guests use. */
#define UART_RBR 0
#define UART_THR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_SCR 7

#define UART_IER_RDI	0x01 /* receive data available */
#define UART_IER_THRI	0x02 /* transmitter holding register empty */
#define UART_IIR_NO_INT 0x01
#define UART_IIR_ID	0x0e
#define UART_IIR_THRI	0x02
#define UART_IIR_RDI	0x04
#define UART_LSR_DR	0x01
#define UART_LSR_THRE	0x20
#define UART_MCR_DTR	0x01
#define UART_MCR_RTS	0x02
#define UART_MCR_OUT2	0x08 /* gates the interrupt line on PC-style UARTs */

struct serial {
	uint16_t port;
};

/* 115200 8N1 with FIFOs; interrupts off. Nothing to detect: output to a missing UART is lost. */
int serial_init(struct serial *s, uint16_t port);
void serial_putc(const struct serial *s, char c);
bool serial_rx_ready(const struct serial *s);
/* The next received byte, or -ENODATA. */
int serial_getc(const struct serial *s);
/* Sets IER to bits (UART_IER_*) with OUT2 on so the line reaches the interrupt controller. */
void serial_set_ier(const struct serial *s, uint8_t bits);
uint8_t serial_read_iir(const struct serial *s);

#endif
