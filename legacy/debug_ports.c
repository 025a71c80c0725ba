#include "legacy/debug_ports.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/device.h"
#include "core/log.h"

enum { R_POST, R_DMA_PAGE, R_A20, R_IO_DELAY, R_VGA, R_DEBUGCON, R_COUNT };

static const struct port_range ranges[R_COUNT] = {
	[R_POST] = {0x80, 1},	  /* POST codes; Linux's default io delay writes here too */
	[R_DMA_PAGE] = {0x87, 1}, /* DMA page register of channel 0 */
	[R_A20] = {0x92, 1},	  /* system control port A: fast A20, fast reset */
	[R_IO_DELAY] = {0xed, 1}, /* io_delay=0xed */
	[R_VGA] = {0x3c0, 0x20},  /* VGA registers: there is no VGA */
	[R_DEBUGCON] = {DEBUG_PORTS_DEBUGCON, 1},
};

#define A20_ENABLED 0x02
#define FAST_RESET  0x01

struct debug_ports {
	struct device dev;
	pthread_mutex_t lock;
	const struct logger *log;
	uint8_t post, port92;
	bool reset_logged, debugcon_logged;
};

static void write_port(struct debug_ports *d, unsigned region, uint8_t val)
{
	switch (region) {
	case R_POST:
		/* io delays repeat the same byte endlessly; only a change is a POST code. */
		if (val != d->post)
			log_debug(d->log, "debug ports: POST code 0x%02x", val);
		d->post = val;
		break;
	case R_A20:
		d->port92 = val & A20_ENABLED;
		if ((val & FAST_RESET) && !d->reset_logged) {
			d->reset_logged = true;
			log_debug(d->log, "debug ports: ignoring a fast reset through port 0x92");
		}
		break;
	case R_DEBUGCON:
		if (!d->debugcon_logged) {
			d->debugcon_logged = true;
			log_debug(d->log,
				  "debug ports: guest writes to debugcon port 0x%x, which "
				  "is not enabled",
				  DEBUG_PORTS_DEBUGCON);
		}
		break;
	default:
		break;
	}
}

static int debug_ports_io(void *dev, unsigned region, uint64_t off, void *data, uint32_t len,
			  bool is_write)
{
	struct debug_ports *d = dev;
	uint8_t *p = data;

	if (region >= R_COUNT || off >= ranges[region].len || len > ranges[region].len - off)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 0; i < len; i++) {
		if (is_write)
			write_port(d, region, p[i]);
		else
			p[i] = region == R_A20 ? d->port92 : 0xff;
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static void debug_ports_destroy(void *dev)
{
	struct debug_ports *d = dev;

	pthread_mutex_destroy(&d->lock);
	free(d);
}

static const struct dev_ops debug_ports_ops = {
	.io = debug_ports_io,
	.destroy = debug_ports_destroy,
};

int debug_ports_create(const struct logger *lg, struct device **out,
		       const struct port_range **rangesp, unsigned *nr)
{
	struct debug_ports *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	ret = -pthread_mutex_init(&d->lock, NULL);
	if (ret < 0) {
		free(d);
		return ret;
	}
	d->log = lg;
	d->port92 = A20_ENABLED;
	d->dev = (struct device){.name = "debug-ports", .ops = &debug_ports_ops, .priv = d};
	*out = &d->dev;
	*rangesp = ranges;
	*nr = R_COUNT;
	return 0;
}
