#include "legacy/i8042.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/device.h"
#include "core/log.h"
#include "core/vm_event.h"

#define STS_OBF	     0x01 /* output buffer full */
#define STS_SYS	     0x04 /* system flag: self test passed */
#define STS_CMD	     0x08 /* last write went to the command port */
#define STS_UNLOCKED 0x10 /* keyboard not inhibited by the keylock */

#define CTR_KBDINT 0x01
#define CTR_SYS	   0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE  0x40
#define OUT_RESET  0x01 /* output port: 0 holds the CPU in reset */
#define OUT_A20	   0x02

struct i8042 {
	struct device dev;
	pthread_mutex_t lock;
	const struct vm_events *ev; /* the VM's, wherever the device runs (may be NULL) */
	const struct logger *log;
	uint8_t status, ctr, outport, obuf;
	uint8_t pending; /* command waiting for its data byte on port 0x60, or 0 */
	bool kbd_data_logged, unknown_logged, reset_logged;
};

static void respond(struct i8042 *k, uint8_t byte)
{
	k->obuf = byte;
	k->status |= STS_OBF;
}

static void request_reset(struct i8042 *k, const char *how)
{
	if (!k->reset_logged) {
		k->reset_logged = true;
		log_info(k->log, "i8042: guest requested a reset (%s)", how);
	}
	vm_events_exit(k->ev, VM_EXIT_RESET);
}

static void command(struct i8042 *k, uint8_t cmd)
{
	/* 0xF0-0xFF pulse the output lines whose bit is clear; bit 0 is the reset line. */
	if (cmd >= 0xf0) {
		if (!(cmd & 1))
			request_reset(k, "command 0xfe");
		return;
	}
	switch (cmd) {
	case 0x20:
		respond(k, k->ctr);
		break;
	case 0x60: /* write CTR */
	case 0xd1: /* write output port */
	case 0xd2: /* write keyboard output buffer */
	case 0xd3: /* write AUX output buffer (loop test) */
	case 0xd4: /* write to the AUX device */
		k->pending = cmd;
		break;
	case 0xa7:
		k->ctr |= CTR_AUXDIS;
		break;
	case 0xa8:
		k->ctr &= (uint8_t)~CTR_AUXDIS;
		break;
	case 0xa9: /* AUX interface test: "clock line stuck high", i.e. there is no AUX port */
		respond(k, 0x02);
		break;
	case 0xaa: /* controller self test */
		k->status |= STS_SYS;
		respond(k, 0x55);
		break;
	case 0xab: /* keyboard interface test: no error */
		respond(k, 0x00);
		break;
	case 0xad:
		k->ctr |= CTR_KBDDIS;
		break;
	case 0xae:
		k->ctr &= (uint8_t)~CTR_KBDDIS;
		break;
	case 0xc0: /* input port */
	case 0xe0: /* test inputs */
		respond(k, 0x00);
		break;
	case 0xd0:
		respond(k, k->outport);
		break;
	default:
		if (!k->unknown_logged) {
			k->unknown_logged = true;
			log_debug(k->log, "i8042: ignoring command 0x%02x", cmd);
		}
		break;
	}
}

static void data(struct i8042 *k, uint8_t val)
{
	uint8_t cmd = k->pending;

	k->pending = 0;
	switch (cmd) {
	case 0x60:
		k->ctr = val;
		break;
	case 0xd1:
		k->outport = val | OUT_RESET;
		if (!(val & OUT_RESET))
			request_reset(k, "output port");
		break;
	case 0xd3:
		/*
		 * Echoed without the AUX status bit: Linux reads that as "no AUX port" at
		 * once, instead of waiting for a timeout.
		 */
		respond(k, val);
		break;
	case 0xd2: /* the guest's own byte would come back as keyboard data: drop it */
	case 0xd4: /* no mouse */
		break;
	default: /* a byte for the keyboard, and there is none */
		if (!k->kbd_data_logged) {
			k->kbd_data_logged = true;
			log_debug(k->log, "i8042: no keyboard; dropping 0x%02x", val);
		}
		break;
	}
}

static uint8_t read_port(struct i8042 *k, unsigned region)
{
	if (region == 1)
		return k->status;
	/* With the buffer empty a real controller returns the stale byte. */
	k->status &= (uint8_t)~STS_OBF;
	return k->obuf;
}

static int i8042_io(void *dev, unsigned region, uint64_t off, void *buf, uint32_t len,
		    bool is_write)
{
	struct i8042 *k = dev;
	uint8_t *p = buf;

	if (region > 1 || off != 0 || len != 1)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	if (!is_write) {
		*p = read_port(k, region);
	} else if (region == 1) {
		k->status |= STS_CMD;
		k->pending = 0;
		command(k, *p);
	} else {
		k->status &= (uint8_t)~STS_CMD;
		data(k, *p);
	}
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static void i8042_destroy(void *dev)
{
	struct i8042 *k = dev;

	pthread_mutex_destroy(&k->lock);
	free(k);
}

static const struct dev_ops i8042_ops = {
	.io = i8042_io,
	.destroy = i8042_destroy,
};

int i8042_create(const struct vm_events *ev, const struct logger *lg, struct device **out)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	int ret;

	if (!k)
		return -ENOMEM;
	ret = -pthread_mutex_init(&k->lock, NULL);
	if (ret < 0) {
		free(k);
		return ret;
	}
	k->ev = ev;
	k->log = lg;
	/* The state firmware leaves behind: self test passed, translated keyboard. */
	k->status = STS_SYS | STS_UNLOCKED;
	k->ctr = CTR_KBDINT | CTR_SYS | CTR_XLATE;
	k->outport = OUT_RESET | OUT_A20;
	k->dev = (struct device){.name = "i8042", .ops = &i8042_ops, .priv = k};
	*out = &k->dev;
	return 0;
}
