/*
 * The 8250/16550A UART (COM1..COM4). Two layers: a pure register model (struct serial_uart)
 * that knows nothing about fds, threads or time, so unit tests and the fuzzer drive it
 * directly; and the device around it (serial_create) that owns the fds, the lock, the
 * event-loop glue and the output back end (legacy/serial_backend.h).
 */
#ifndef CROSVM_LEGACY_SERIAL_H
#define CROSVM_LEGACY_SERIAL_H

#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

struct device;
struct logger;

enum serial_type { SERIAL_SINK, SERIAL_STDOUT, SERIAL_FILE, SERIAL_SYSLOG };

struct serial_params {
	unsigned num; /* 1..4: COM1..COM4 (for names and logs) */
	enum serial_type type;
	int out_fd; /* stdout or the opened file; -1 for sink/syslog */
	int in_fd;  /* stdin when this port takes input, else -1 */
	int irq_fd; /* eventfd bound to the port's IRQ; -1: no interrupt line */
	const struct logger *log;
};

/*
 * Creates the device (region 0: the 8 registers at the port base). On success the device
 * owns out_fd, in_fd and irq_fd and closes them in destroy; on failure the caller still
 * does. in_fd may be anything readable (tty, pipe, regular file, /dev/null); the device never
 * changes its flags. Returns 0 or -errno.
 */
int serial_create(const struct serial_params *p, struct device **out) MUST_CHECK;

/* ---- The register model ---- */

#define SERIAL_NR_REGS	  8
#define SERIAL_RX_FIFO	  64 /* receive FIFO depth; host input waits in its fd beyond it */
#define SERIAL_DEFAULT_DL 12 /* divisor latch after reset: 115200 / 12 = 9600 baud */

/* Register offsets (DLAB selects DLL/DLM at 0/1) and bits the tests and glue use. */
enum {
	SERIAL_RBR = 0,
	SERIAL_THR = 0,
	SERIAL_DLL = 0,
	SERIAL_IER = 1,
	SERIAL_DLM = 1,
	SERIAL_IIR = 2,
	SERIAL_FCR = 2,
	SERIAL_LCR = 3,
	SERIAL_MCR = 4,
	SERIAL_LSR = 5,
	SERIAL_MSR = 6,
	SERIAL_SCR = 7,
};

#define SERIAL_IER_ERBFI  0x01 /* received data available */
#define SERIAL_IER_ETBEI  0x02 /* THR empty */
#define SERIAL_IER_ELSI	  0x04 /* receiver line status */
#define SERIAL_IER_EDSSI  0x08 /* modem status */
#define SERIAL_IIR_NONE	  0x01
#define SERIAL_IIR_MSR	  0x00
#define SERIAL_IIR_THRE	  0x02
#define SERIAL_IIR_RDA	  0x04
#define SERIAL_IIR_RLS	  0x06
#define SERIAL_IIR_FIFO	  0xc0
#define SERIAL_FCR_ENABLE 0x01
#define SERIAL_FCR_CLR_RX 0x02
#define SERIAL_FCR_CLR_TX 0x04
#define SERIAL_LCR_DLAB	  0x80
#define SERIAL_MCR_DTR	  0x01
#define SERIAL_MCR_RTS	  0x02
#define SERIAL_MCR_OUT1	  0x04
#define SERIAL_MCR_OUT2	  0x08
#define SERIAL_MCR_LOOP	  0x10
#define SERIAL_LSR_DR	  0x01
#define SERIAL_LSR_OE	  0x02
#define SERIAL_LSR_THRE	  0x20
#define SERIAL_LSR_TEMT	  0x40
#define SERIAL_MSR_DCTS	  0x01
#define SERIAL_MSR_DDSR	  0x02
#define SERIAL_MSR_TERI	  0x04
#define SERIAL_MSR_DDCD	  0x08
#define SERIAL_MSR_CTS	  0x10
#define SERIAL_MSR_DSR	  0x20
#define SERIAL_MSR_RI	  0x40
#define SERIAL_MSR_DCD	  0x80

/* What the model asks of its owner; called synchronously, under the owner's lock. */
struct serial_uart_ops {
	void (*tx)(void *ctx, uint8_t byte); /* the guest sent a byte (never in loopback) */
	void (*irq)(void *ctx);		     /* one edge on the interrupt line */
	void (*rx_room)(void *ctx);	     /* input that was refused may be offered again */
};

struct serial_uart {
	const struct serial_uart_ops *ops;
	void *ctx;
	uint8_t ier, lcr, mcr, msr, scr, fcr, dll, dlm;
	bool thre_pending; /* THR-empty interrupt not yet acknowledged */
	bool overrun;	   /* LSR.OE until LSR is read */
	bool line;	   /* interrupt line level after the last access */
	bool kick;	   /* an enabled interrupt event happened since the last evaluation */
	bool rx_waiting;   /* input was refused for lack of room: owe an rx_room call */
	uint8_t rx[SERIAL_RX_FIFO];
	unsigned rx_head, rx_len;
};

/* Power-on state: 9600 8N1, OUT2 set (as crosvm and QEMU), modem lines up, FIFOs empty. */
void serial_uart_init(struct serial_uart *u, const struct serial_uart_ops *ops, void *ctx);
/* One byte access to register reg (0..7); -EINVAL for any other reg. */
int serial_uart_access(struct serial_uart *u, unsigned reg, uint8_t *val, bool is_write);
/* Bytes the receive FIFO takes now (0 in loopback: the line is disconnected). */
unsigned serial_uart_rx_room(const struct serial_uart *u);
/* Queues up to rx_room() received bytes; returns how many it took. */
unsigned serial_uart_receive(struct serial_uart *u, const uint8_t *buf, unsigned len);

#endif
