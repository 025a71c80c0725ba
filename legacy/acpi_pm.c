#include "legacy/acpi_pm.h"
#include "core/device.h"
#include "core/log.h"
#include "core/vm_event.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PM1_STS_BITS                                                                               \
	(ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC | ACPI_PM1_WAK)
/* ACPICA reads an enable bit back after setting it and gives up on the event if it is 0. */
#define PM1_EN_BITS (ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC)
/* SLP_TYP is kept so that a read-modify-write by the OS sees what it wrote. */
#define PM1_CNT_KEPT ACPI_PM1_CNT_SLP_TYP_MASK
#define GPE_BYTES    (ACPI_PM_NR_GPES / 8)
#define GPE0_STS_OFF ACPI_PM_GPE0_OFF
#define GPE0_EN_OFF  (ACPI_PM_GPE0_OFF + GPE_BYTES)

struct acpi_pm {
	struct device dev;
	struct acpi_pm_params p;
	pthread_mutex_t lock;
	uint16_t pm1_sts;
	uint16_t pm1_en;
	uint16_t pm1_cnt;
	uint8_t gpe_sts[GPE_BYTES];
	uint8_t gpe_en[GPE_BYTES];
	bool sci;	      /* raised and not yet lowered by the guest's EOI */
	uint8_t slp_typ_seen; /* sleep types already logged, one bit each */
	struct event *resample_ev;
};

_Static_assert(GPE0_EN_OFF + GPE_BYTES == ACPI_PM_IO_LEN, "GPE0 block ends the region");
_Static_assert(ACPI_PM_GPE0_LEN == 2 * GPE_BYTES, "GPE0 block is status then enable");

static bool sci_pending(const struct acpi_pm *pm)
{
	if (pm->pm1_sts & pm->pm1_en & PM1_EN_BITS)
		return true;
	for (unsigned i = 0; i < GPE_BYTES; i++)
		if (pm->gpe_sts[i] & pm->gpe_en[i])
			return true;
	return false;
}

/*
 * Lock held. Raises the SCI when an enabled event is pending and the line is not up yet.
 * The line is a level irqfd: KVM lowers it at the guest's EOI and signals the resample
 * eventfd (on_resample), so a cleared event needs nothing here. Only a saturated counter
 * fails, and then the line is up anyway.
 */
static void update_sci(struct acpi_pm *pm)
{
	if (pm->sci || !sci_pending(pm))
		return;
	(void)eventfd_signal(pm->p.sci_fd);
	pm->sci = true;
}

/* The guest ended its SCI handler: the line is down; raise it again if still pending. */
static void on_resample(evutil_socket_t fd, short what, void *arg)
{
	struct acpi_pm *pm = arg;
	uint64_t n;

	if (eventfd_drain(fd, &n) < 0 || !n)
		return;
	pthread_mutex_lock(&pm->lock);
	pm->sci = false;
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static uint8_t reg_read(const struct acpi_pm *pm, unsigned off)
{
	unsigned shift = (off & 1) * 8;

	if (off >= GPE0_EN_OFF)
		return pm->gpe_en[off - GPE0_EN_OFF];
	if (off >= GPE0_STS_OFF)
		return pm->gpe_sts[off - GPE0_STS_OFF];
	switch (off & ~1u) {
	case ACPI_PM_PM1_EVT_OFF:
		return (uint8_t)(pm->pm1_sts >> shift);
	case ACPI_PM_PM1_EVT_OFF + 2:
		return (uint8_t)(pm->pm1_en >> shift);
	case ACPI_PM_PM1_CNT_OFF:
		/* ACPI is always enabled; SLP_EN is write-only. */
		return (uint8_t)((pm->pm1_cnt | ACPI_PM1_CNT_SCI_EN) >> shift);
	default:
		return 0;
	}
}

/* Returns the sleep type requested by this byte (SLP_EN set), or -1. */
static int reg_write(struct acpi_pm *pm, unsigned off, uint8_t v)
{
	unsigned shift = (off & 1) * 8;
	uint16_t bits = (uint16_t)(v << shift);
	uint16_t keep = (uint16_t) ~(0xffu << shift);

	if (off >= GPE0_EN_OFF) {
		pm->gpe_en[off - GPE0_EN_OFF] = v;
		return -1;
	}
	if (off >= GPE0_STS_OFF) {
		pm->gpe_sts[off - GPE0_STS_OFF] &= (uint8_t)~v;
		return -1;
	}
	switch (off & ~1u) {
	case ACPI_PM_PM1_EVT_OFF:
		pm->pm1_sts &= (uint16_t) ~(bits & PM1_STS_BITS);
		return -1;
	case ACPI_PM_PM1_EVT_OFF + 2:
		pm->pm1_en = ((pm->pm1_en & keep) | bits) & PM1_EN_BITS;
		return -1;
	case ACPI_PM_PM1_CNT_OFF:
		pm->pm1_cnt = ((pm->pm1_cnt & keep) | bits) & PM1_CNT_KEPT;
		if (bits & ACPI_PM1_CNT_SLP_EN)
			return (pm->pm1_cnt & ACPI_PM1_CNT_SLP_TYP_MASK) >>
			       ACPI_PM1_CNT_SLP_TYP_SHIFT;
		return -1;
	default:
		return -1;
	}
}

/* Each sleep type is logged once: a guest may repeat the request from every vCPU. */
static void sleep_request(struct acpi_pm *pm, int slp_typ)
{
	bool first;

	pthread_mutex_lock(&pm->lock);
	first = !(pm->slp_typ_seen & (1u << slp_typ));
	pm->slp_typ_seen |= (uint8_t)(1u << slp_typ);
	pthread_mutex_unlock(&pm->lock);
	if (slp_typ == ACPI_PM_SLP_TYP_S5) {
		if (first)
			log_debug(pm->p.log, "acpi_pm: guest requested power off (S5)");
		vm_events_exit(pm->p.ev, VM_EXIT_STOP);
		return;
	}
	if (first)
		log_warn(pm->p.log, "acpi_pm: sleep type %d is not supported; ignored", slp_typ);
}

static int pm_io(void *dev, unsigned region, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = dev;
	uint8_t *bytes = data;
	int slp_typ = -1;

	if (region != 0 || len == 0 || off >= ACPI_PM_IO_LEN || len > ACPI_PM_IO_LEN - off)
		return -EINVAL;
	pthread_mutex_lock(&pm->lock);
	for (uint32_t i = 0; i < len; i++) {
		int t = -1;

		if (is_write)
			t = reg_write(pm, (unsigned)off + i, bytes[i]);
		else
			bytes[i] = reg_read(pm, (unsigned)off + i);
		if (t >= 0)
			slp_typ = t;
	}
	if (is_write)
		update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	if (slp_typ >= 0)
		sleep_request(pm, slp_typ);
	return 0;
}

/* Raises a fixed event (pm1_bit) or GPE gpe: sets its status; the SCI follows if enabled. */
static int raise_event(struct acpi_pm *pm, unsigned gpe, uint16_t pm1_bit)
{
	if (gpe >= ACPI_PM_NR_GPES)
		return -EINVAL;
	pthread_mutex_lock(&pm->lock);
	if (pm1_bit)
		pm->pm1_sts |= pm1_bit;
	else
		pm->gpe_sts[gpe / 8] |= (uint8_t)(1u << (gpe % 8));
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

/* The power and sleep buttons and the GPEs, pressed from the control socket. */
static int pm_command(void *dev, const struct dev_cmd *cmd, dev_reply_fn done, void *done_ctx)
{
	struct acpi_pm *pm = dev;
	int ret;

	switch (cmd->op) {
	case DEV_CMD_POWER_BUTTON:
		ret = raise_event(pm, 0, ACPI_PM1_PWRBTN);
		break;
	case DEV_CMD_SLEEP_BUTTON:
		ret = raise_event(pm, 0, ACPI_PM1_SLPBTN);
		break;
	case DEV_CMD_GPE:
		ret = cmd->arg < ACPI_PM_NR_GPES ? raise_event(pm, (unsigned)cmd->arg, 0) : -EINVAL;
		break;
	default:
		return -EOPNOTSUPP;
	}
	dev_reply_status(done, done_ctx, ret);
	return 0;
}

static int pm_start(void *dev, struct event_base *eb)
{
	struct acpi_pm *pm = dev;

	if (pm->resample_ev)
		return -EBUSY;
	pm->resample_ev =
		event_new(eb, pm->p.sci_resample_fd, EV_READ | EV_PERSIST, on_resample, pm);
	if (!pm->resample_ev)
		return -ENOMEM;
	if (event_add(pm->resample_ev, NULL) < 0) {
		event_free(pm->resample_ev);
		pm->resample_ev = NULL;
		return -EIO;
	}
	return 0;
}

static void pm_stop(void *dev)
{
	struct acpi_pm *pm = dev;

	if (pm->resample_ev)
		event_free(pm->resample_ev);
	pm->resample_ev = NULL;
}

static int pm_fds(void *dev, struct fd_list *out)
{
	struct acpi_pm *pm = dev;
	int ret = fd_list_add(out, pm->p.sci_fd);

	return ret ? ret : fd_list_add(out, pm->p.sci_resample_fd);
}

static void pm_destroy(void *dev)
{
	struct acpi_pm *pm = dev;

	pm_stop(pm);
	close_fd(&pm->p.sci_fd);
	close_fd(&pm->p.sci_resample_fd);
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

static const struct dev_ops acpi_pm_ops = {
	.io = pm_io,
	.start = pm_start,
	.stop = pm_stop,
	.fds = pm_fds,
	.command = pm_command,
	.destroy = pm_destroy,
};

int acpi_pm_create(const struct acpi_pm_params *p, struct device **out)
{
	struct acpi_pm *pm;
	int ret;

	if (!p || !out || p->sci_fd < 0 || p->sci_resample_fd < 0)
		return -EINVAL;
	pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	ret = -pthread_mutex_init(&pm->lock, NULL);
	if (ret)
		goto err_free;
	pm->p = *p;
	/* Runs in the main process, as in crosvm: it only touches a few registers. */
	pm->dev = (struct device){.name = "acpi_pm", .ops = &acpi_pm_ops, .priv = pm};
	*out = &pm->dev;
	return 0;
err_free:
	free(pm);
	return ret;
}
