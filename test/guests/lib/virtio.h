/*
 * A small virtio 1.2 driver core for the modern virtio-pci transport: finds devices on bus 0
 * (ECAM or config ports, see pci_access.h), walks their capabilities, checks the BARs the VMM
 * or firmware assigned, runs the device initialisation sequence, sets up split virtqueues,
 * and takes interrupts through MSI-X (one entry for configuration changes, one per queue),
 * through INTx with the ISR register, or not at all (polling).
 *
 * Command-line keys read by virtio_bus_init():
 *   virtio.irq=msix|intx|poll   interrupt mode of every device (default msix, INTx for a
 *                               device without MSI-X)
 *   virtio.event_idx=0          do not negotiate VIRTIO_F_EVENT_IDX
 *   virtio.indirect=0           do not negotiate (or use) VIRTIO_F_INDIRECT_DESC
 *   pci.access=ecam|ports       configuration mechanism (pci_access.h)
 */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include "clock.h"
#include "dma.h"
#include "pci.h"
#include "pci_intx.h"
#include "pci_msix.h"
#include "virtq.h"

#define VIRTIO_VENDOR	       0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040 /* modern PCI device id = 0x1040 + virtio device type */
#define VIRTIO_ID_NET	       1
#define VIRTIO_ID_BLOCK	       2
#define VIRTIO_ID_RNG	       4
#define VIRTIO_ID_BALLOON      5

#define VIRTIO_BIT(n)	       (1ull << (n))
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

#define VIRTIO_STATUS_ACK	  0x01
#define VIRTIO_STATUS_DRIVER	  0x02
#define VIRTIO_STATUS_DRIVER_OK	  0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

#define VIRTIO_PCI_CAP_COMMON  1
#define VIRTIO_PCI_CAP_NOTIFY  2
#define VIRTIO_PCI_CAP_ISR     3
#define VIRTIO_PCI_CAP_DEVICE  4
#define VIRTIO_PCI_CAP_PCI_CFG 5
#define VIRTIO_ISR_QUEUE       0x1
#define VIRTIO_ISR_CONFIG      0x2
#define VIRTIO_MSI_NO_VECTOR   0xffff

#define VIRTIO_MAX_QUEUES  4
#define VIRTIO_MAX_ENTRIES (VIRTIO_MAX_QUEUES + 1) /* MSI-X: config + one per queue */
/*
 * Each device owns VIRTIO_VECS_PER_DEV IDT vectors for good: its MSI-X entries from the
 * first, its INTx GSIs (pci_intx.h) from VIRTIO_VEC_INTX. Handlers are never removed, so an
 * interrupt sent just before a mask or a reset still finds its handler. Room for 10 devices.
 */
#define VEC_VIRTIO_FIRST     0x50
#define VEC_VIRTIO_END	     0xf0
#define VIRTIO_VECS_PER_DEV  16
#define VIRTIO_VEC_INTX	     8
#define VIRTIO_IRQ_GRACE_MS  100  /* a completion's interrupt may trail its used entry */
#define VIRTIO_RESET_WAIT_MS 1000 /* a device must finish a reset within this */

enum virtio_irq_mode { VIRTIO_IRQ_MSIX, VIRTIO_IRQ_INTX, VIRTIO_IRQ_POLL };

struct virtio_bus {
	struct guest *g;
	struct pci_cfg pci;
	struct clock clock;
	struct dma_pool pool;
	uint8_t next_vector;
	bool use_event_idx, use_indirect;
	enum virtio_irq_mode irq_mode;
};

struct virtio_dev;

struct virtio_msix_slot {
	struct virtio_dev *d;
	uint16_t entry;
};

struct virtio_dev {
	struct virtio_bus *bus;
	char name[12]; /* what messages call it: "rng", "blk0" ... */
	char bdf[8];   /* "00:DD.F" */
	uint8_t dev, fn, pin;
	uint16_t type;
	struct pci_bar bars[6];
	uint64_t common, isr, device_cfg, notify;
	uint32_t device_cfg_len, notify_len, notify_mult;
	uint8_t caps;	    /* bit t: a usable structure of cfg_type t */
	uint8_t window_cap; /* config offset of the VIRTIO_PCI_CAP_PCI_CFG capability, or 0 */
	struct pci_msix msix;
	enum virtio_irq_mode irq_mode; /* set by virtio_find, may be changed before begin */
	enum virtio_irq_mode irq_active;
	uint64_t offered, features;
	uint16_t num_queues;
	struct virtq *vq[VIRTIO_MAX_QUEUES];
	uint16_t q_entry[VIRTIO_MAX_QUEUES]; /* MSI-X entry of each queue */
	uint8_t vec_base;		     /* IDT vectors of our MSI-X entries / INTx */
	uint16_t nentries;		     /* MSI-X entries in use */
	struct virtio_msix_slot slots[VIRTIO_MAX_ENTRIES];
	volatile uint32_t entry_irqs[VIRTIO_MAX_ENTRIES];
	struct pci_intx intx;
	int32_t intx_gsi; /* the GSI an INTx probe found (kept across resets), or -1 */
	volatile uint32_t isr_queue_irqs;     /* INTx with ISR bit 0 */
	volatile uint32_t config_irqs;	      /* configuration change interrupts, any mode */
	uint32_t irq_mark[VIRTIO_MAX_QUEUES]; /* queue interrupt count at the last kick */
	uint32_t missed_irqs;		      /* completions whose interrupt never came */
	uint32_t stale;			      /* used entries for chains nobody waited for */
};

/* Reads the keys, opens PCI, calibrates the clock, sets up the DMA pool. */
int virtio_bus_init(struct guest *g, struct virtio_bus *b);
/*
 * Finds the index-th device of a virtio type in slot order, checks its capabilities and BARs,
 * and enables decoding and bus mastering; prints INFO virtio.BDF=... . -ENOENT when there are
 * fewer devices, -EIO when this one is unusable (reported as FAIL virtio_caps / pci_bar).
 */
int virtio_find(struct virtio_bus *b, uint16_t type, unsigned index, struct virtio_dev *d);
/*
 * Reset, ACKNOWLEDGE, DRIVER, feature negotiation (want & offered, plus VERSION_1 and the
 * ring features the keys allow), FEATURES_OK read back, interrupt setup and the config
 * vector. -ENODEV without VERSION_1, -EIO when the device refuses.
 */
int virtio_begin(struct virtio_dev *d, uint64_t want);
/* Sets up queue idx with at most max_size entries. -ENOENT when the device has no such queue. */
int virtio_setup_queue(struct virtio_dev *d, uint16_t idx, uint16_t max_size);
int virtio_driver_ok(struct virtio_dev *d);
/* Writes 0 to the status and waits for it to read 0; tears interrupts down. */
int virtio_reset(struct virtio_dev *d);
uint8_t virtio_status(const struct virtio_dev *d);
bool virtio_has(const struct virtio_dev *d, unsigned bit);

/* Device configuration fields (width 1, 2, 4 or 8) read consistently with config_generation. */
int virtio_cfg_read(const struct virtio_dev *d, uint32_t off, unsigned width, uint64_t *v);
int virtio_cfg_write(const struct virtio_dev *d, uint32_t off, unsigned width, uint64_t v);
/* A 32-bit read of BAR bar at off through the VIRTIO_PCI_CAP_PCI_CFG window. */
int virtio_window_read32(const struct virtio_dev *d, uint8_t bar, uint32_t off, uint32_t *v);

/* Adds a chain to queue idx and notifies the device. */
int virtio_submit(struct virtio_dev *d, uint16_t idx, const struct virtq_buf *bufs, unsigned n,
		  uint16_t *head);
/*
 * Waits (halting, or polling in poll mode) for the next used element of queue idx and its
 * interrupt. -ETIMEDOUT when nothing was used in time; a used element whose interrupt did not
 * follow within VIRTIO_IRQ_GRACE_MS is returned and counted in missed_irqs.
 */
int virtio_wait(struct virtio_dev *d, uint16_t idx, uint32_t timeout_ms, uint16_t *head,
		uint32_t *len);
/* submit + wait for that very chain (other used entries are counted in stale). */
int virtio_request(struct virtio_dev *d, uint16_t idx, const struct virtq_buf *bufs, unsigned n,
		   uint32_t timeout_ms, uint32_t *len);
/* Waits until config_irqs differs from since: 0 or -ETIMEDOUT. */
int virtio_wait_config(struct virtio_dev *d, uint32_t since, uint32_t timeout_ms);
/* Interrupts taken for queue idx so far (0 in poll mode). */
uint32_t virtio_queue_irqs(const struct virtio_dev *d, uint16_t idx);
const char *virtio_irq_mode_name(enum virtio_irq_mode m);

#endif
