#include "legacy/serial.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/log.h"
#include "legacy/serial_backend.h"

/* ---- Register model ---- */

/* The modem status lines a connected host side presents outside loopback. */
#define MSR_LINES_UP (SERIAL_MSR_DCD | SERIAL_MSR_DSR | SERIAL_MSR_CTS)

void serial_uart_init(struct serial_uart *u, const struct serial_uart_ops *ops, void *ctx)
{
	*u = (struct serial_uart){
		.ops = ops,
		.ctx = ctx,
		.lcr = 0x03, /* 8 data bits, no parity, 1 stop bit */
		.mcr = SERIAL_MCR_OUT2,
		.msr = MSR_LINES_UP,
		.dll = SERIAL_DEFAULT_DL,
	};
}

static uint8_t iir_reason(const struct serial_uart *u)
{
	if ((u->ier & SERIAL_IER_ELSI) && u->overrun)
		return SERIAL_IIR_RLS;
	if ((u->ier & SERIAL_IER_ERBFI) && u->rx_len)
		return SERIAL_IIR_RDA;
	if ((u->ier & SERIAL_IER_ETBEI) && u->thre_pending)
		return SERIAL_IIR_THRE;
	if ((u->ier & SERIAL_IER_EDSSI) && (u->msr & 0x0f))
		return SERIAL_IIR_MSR;
	return SERIAL_IIR_NONE;
}

/*
 * The line is edge-signalled: once when it rises, and again for every new event while it is
 * up, so an edge-triggered PIC/IOAPIC that already took the previous edge sees this one too.
 * OUT2 gates the line as on a PC.
 */
static void update_irq(struct serial_uart *u)
{
	bool line = iir_reason(u) != SERIAL_IIR_NONE && (u->mcr & SERIAL_MCR_OUT2);

	if (line && (!u->line || u->kick) && u->ops && u->ops->irq)
		u->ops->irq(u->ctx);
	u->line = line;
	u->kick = false;
}

unsigned serial_uart_rx_room(const struct serial_uart *u)
{
	if (u->mcr & SERIAL_MCR_LOOP)
		return 0;
	return SERIAL_RX_FIFO - u->rx_len;
}

/* Asks for more input once the guest has drained half the FIFO, not byte by byte. */
static void check_rx_room(struct serial_uart *u)
{
	if (!u->rx_waiting || (u->mcr & SERIAL_MCR_LOOP) || u->rx_len > SERIAL_RX_FIFO / 2)
		return;
	u->rx_waiting = false;
	if (u->ops && u->ops->rx_room)
		u->ops->rx_room(u->ctx);
}

static bool fifo_push(struct serial_uart *u, uint8_t byte)
{
	if (u->rx_len == SERIAL_RX_FIFO)
		return false;
	u->rx[(u->rx_head + u->rx_len++) % SERIAL_RX_FIFO] = byte;
	if (u->ier & SERIAL_IER_ERBFI)
		u->kick = true;
	return true;
}

unsigned serial_uart_receive(struct serial_uart *u, const uint8_t *buf, unsigned len)
{
	unsigned n = MIN(len, serial_uart_rx_room(u));

	for (unsigned i = 0; i < n; i++)
		fifo_push(u, buf[i]);
	if (serial_uart_rx_room(u) == 0)
		u->rx_waiting = true;
	update_irq(u);
	return n;
}

static uint8_t read_rbr(struct serial_uart *u)
{
	uint8_t byte = 0;

	if (u->rx_len) {
		byte = u->rx[u->rx_head];
		u->rx_head = (u->rx_head + 1) % SERIAL_RX_FIFO;
		u->rx_len--;
	}
	check_rx_room(u);
	return byte;
}

static void write_thr(struct serial_uart *u, uint8_t byte)
{
	if (u->mcr & SERIAL_MCR_LOOP) {
		if (!fifo_push(u, byte)) {
			u->overrun = true;
			if (u->ier & SERIAL_IER_ELSI)
				u->kick = true;
		}
	} else if (u->ops && u->ops->tx) {
		u->ops->tx(u->ctx, byte);
	}
	/* Transmission is instantaneous: THR is empty again right away. */
	u->thre_pending = true;
	if (u->ier & SERIAL_IER_ETBEI)
		u->kick = true;
}

static void write_ier(struct serial_uart *u, uint8_t val)
{
	uint8_t old = u->ier;

	u->ier = val & 0x0f;
	/* A 16550 raises THRE as soon as the interrupt is enabled while THR is empty. */
	if ((u->ier & SERIAL_IER_ETBEI) && !(old & SERIAL_IER_ETBEI)) {
		u->thre_pending = true;
		u->kick = true;
	}
}

static uint8_t read_iir(struct serial_uart *u)
{
	uint8_t reason = iir_reason(u);

	if (reason == SERIAL_IIR_THRE)
		u->thre_pending = false;
	return reason | ((u->fcr & SERIAL_FCR_ENABLE) ? SERIAL_IIR_FIFO : 0);
}

static void write_fcr(struct serial_uart *u, uint8_t val)
{
	/* Toggling the FIFO enable also empties the FIFOs, as on a 16550. */
	if ((val ^ u->fcr) & SERIAL_FCR_ENABLE)
		val |= SERIAL_FCR_CLR_RX;
	if (val & SERIAL_FCR_CLR_RX) {
		u->rx_head = 0;
		u->rx_len = 0;
		check_rx_room(u);
	}
	u->fcr = val & 0xc9; /* the reset bits clear themselves */
}

static uint8_t loop_lines(uint8_t mcr)
{
	uint8_t msr = 0;

	if (mcr & SERIAL_MCR_DTR)
		msr |= SERIAL_MSR_DSR;
	if (mcr & SERIAL_MCR_RTS)
		msr |= SERIAL_MSR_CTS;
	if (mcr & SERIAL_MCR_OUT1)
		msr |= SERIAL_MSR_RI;
	if (mcr & SERIAL_MCR_OUT2)
		msr |= SERIAL_MSR_DCD;
	return msr;
}

static void write_mcr(struct serial_uart *u, uint8_t val)
{
	uint8_t old = u->msr & 0xf0, now, delta = 0;

	u->mcr = val & 0x1f;
	now = (u->mcr & SERIAL_MCR_LOOP) ? loop_lines(u->mcr) : MSR_LINES_UP;
	if ((old ^ now) & SERIAL_MSR_CTS)
		delta |= SERIAL_MSR_DCTS;
	if ((old ^ now) & SERIAL_MSR_DSR)
		delta |= SERIAL_MSR_DDSR;
	if ((old & SERIAL_MSR_RI) && !(now & SERIAL_MSR_RI))
		delta |= SERIAL_MSR_TERI;
	if ((old ^ now) & SERIAL_MSR_DCD)
		delta |= SERIAL_MSR_DDCD;
	u->msr = now | (u->msr & 0x0f) | delta;
	if (delta && (u->ier & SERIAL_IER_EDSSI))
		u->kick = true;
	check_rx_room(u);
}

static uint8_t read_lsr(struct serial_uart *u)
{
	uint8_t lsr = SERIAL_LSR_THRE | SERIAL_LSR_TEMT;

	if (u->rx_len)
		lsr |= SERIAL_LSR_DR;
	if (u->overrun)
		lsr |= SERIAL_LSR_OE;
	u->overrun = false;
	return lsr;
}

static void uart_write(struct serial_uart *u, unsigned reg, uint8_t val)
{
	bool dlab = u->lcr & SERIAL_LCR_DLAB;

	switch (reg) {
	case SERIAL_THR:
		if (dlab)
			u->dll = val;
		else
			write_thr(u, val);
		break;
	case SERIAL_IER:
		if (dlab)
			u->dlm = val;
		else
			write_ier(u, val);
		break;
	case SERIAL_FCR:
		write_fcr(u, val);
		break;
	case SERIAL_LCR:
		u->lcr = val;
		break;
	case SERIAL_MCR:
		write_mcr(u, val);
		break;
	case SERIAL_SCR:
		u->scr = val;
		break;
	default: /* LSR and MSR are read-only (factory test writes are ignored) */
		break;
	}
}

static uint8_t uart_read(struct serial_uart *u, unsigned reg)
{
	bool dlab = u->lcr & SERIAL_LCR_DLAB;
	uint8_t val;

	switch (reg) {
	case SERIAL_RBR:
		return dlab ? u->dll : read_rbr(u);
	case SERIAL_IER:
		return dlab ? u->dlm : u->ier;
	case SERIAL_IIR:
		return read_iir(u);
	case SERIAL_LCR:
		return u->lcr;
	case SERIAL_MCR:
		return u->mcr;
	case SERIAL_LSR:
		return read_lsr(u);
	case SERIAL_MSR:
		val = u->msr;
		u->msr &= 0xf0;
		return val;
	default:
		return u->scr;
	}
}

int serial_uart_access(struct serial_uart *u, unsigned reg, uint8_t *val, bool is_write)
{
	if (reg >= SERIAL_NR_REGS)
		return -EINVAL;
	if (is_write)
		uart_write(u, reg, *val);
	else
		*val = uart_read(u, reg);
	update_irq(u);
	return 0;
}

/* ---- The device ---- */

struct serial_dev {
	struct device dev;
	pthread_mutex_t lock;
	struct serial_uart uart;
	const struct logger *log;
	unsigned num;
	int irq_fd;
	bool irq_err_logged;
	struct serial_backend be; /* last: it holds the big pending-output buffer */
};

static void on_tx(void *ctx, uint8_t byte)
{
	serial_backend_put(&((struct serial_dev *)ctx)->be, byte);
}

static void on_rx_room(void *ctx)
{
	serial_backend_rx_room(&((struct serial_dev *)ctx)->be);
}

static void on_irq(void *ctx)
{
	struct serial_dev *s = ctx;
	int ret;

	if (s->irq_fd < 0)
		return;
	ret = eventfd_signal(s->irq_fd);
	if (ret < 0 && !s->irq_err_logged) {
		s->irq_err_logged = true;
		log_warn(s->log, "serial%u: cannot raise the interrupt: %s", s->num,
			 strerror(-ret));
	}
}

static const struct serial_uart_ops uart_ops = {
	.tx = on_tx,
	.irq = on_irq,
	.rx_room = on_rx_room,
};

static int serial_io(void *dev, unsigned region, uint64_t off, void *data, uint32_t len,
		     bool is_write)
{
	struct serial_dev *s = dev;
	uint8_t *p = data;

	if (region != 0 || off >= SERIAL_NR_REGS || len > SERIAL_NR_REGS - off)
		return -EINVAL;
	/* A wider access reaches consecutive 8-bit registers, as on the ISA bus. */
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < len; i++)
		serial_uart_access(&s->uart, (unsigned)off + i, &p[i], is_write);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int serial_start(void *dev, struct event_base *eb)
{
	return serial_backend_start(&((struct serial_dev *)dev)->be, eb);
}

static void serial_stop(void *dev)
{
	serial_backend_stop(&((struct serial_dev *)dev)->be);
}

static int serial_fds(void *dev, struct fd_list *out)
{
	struct serial_dev *s = dev;
	int ret = fd_list_add(out, s->irq_fd);

	return ret < 0 ? ret : serial_backend_fds(&s->be, out);
}

static void serial_destroy(void *dev)
{
	struct serial_dev *s = dev;

	serial_backend_destroy(&s->be);
	close_fd(&s->irq_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct dev_ops serial_ops = {
	.io = serial_io,
	.start = serial_start,
	.stop = serial_stop,
	.destroy = serial_destroy,
	.fds = serial_fds,
};

int serial_create(const struct serial_params *p, struct device **out)
{
	struct serial_dev *s;
	int ret;

	if (p->num < 1 || p->num > 4)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	ret = -pthread_mutex_init(&s->lock, NULL);
	if (ret < 0)
		goto err_free;
	ret = serial_backend_init(&s->be, p, &s->uart, &s->lock);
	if (ret < 0)
		goto err_lock;
	serial_uart_init(&s->uart, &uart_ops, s);
	s->log = p->log;
	s->num = p->num;
	s->irq_fd = p->irq_fd;
	snprintf(s->dev.name, sizeof(s->dev.name), "serial%u", p->num);
	/*
	 * The register model stays in the main process, sandboxed or not: a sandboxed port's
	 * host files are handled by its jailed pump (legacy/serial_pump.h says why).
	 */
	s->dev.policy = NULL;
	s->dev.ops = &serial_ops;
	s->dev.priv = s;
	*out = &s->dev;
	return 0;
err_lock:
	pthread_mutex_destroy(&s->lock);
err_free:
	free(s);
	return ret;
}
