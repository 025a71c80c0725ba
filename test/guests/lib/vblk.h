/*
 * virtio-blk requests on top of the virtio driver core: one queue, one request at a time,
 * each a chain of header, data and status (through an indirect table when negotiated).
 * Data moves through one DMA buffer of VBLK_BUF_BYTES per disk.
 */
#ifndef GUEST_VBLK_H
#define GUEST_VBLK_H

#include "virtio.h"

#define VIRTIO_BLK_F_SIZE_MAX	  1
#define VIRTIO_BLK_F_SEG_MAX	  2
#define VIRTIO_BLK_F_RO		  5
#define VIRTIO_BLK_F_BLK_SIZE	  6
#define VIRTIO_BLK_F_FLUSH	  9
#define VIRTIO_BLK_F_DISCARD	  13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2
#define VBLK_S_UNWRITTEN    0xff /* what we put in the status byte before a request */

#define VBLK_SECTOR	512
#define VBLK_ID_BYTES	20
#define VBLK_BUF_BYTES	KiB(64)
#define VBLK_TIMEOUT_MS 5000

/* Where the request header, status byte, discard range and id live inside hdr_pa. */
#define VBLK_HDR_OFF	0
#define VBLK_STATUS_OFF 16
#define VBLK_RANGE_OFF	32
#define VBLK_ID_OFF	64
#define VBLK_HDR_AREA	128

struct vblk {
	struct virtio_dev dev;
	unsigned index;
	uint64_t capacity; /* 512-byte sectors */
	uint32_t blk_size, size_max, seg_max;
	uint32_t max_discard_sectors, discard_align, max_zeroes_sectors;
	bool ro;
	uint64_t hdr_pa, buf_pa;
	uint32_t max_sectors; /* per read/write request */
};

/*
 * Finds the index-th virtio-blk device, initialises it (features: RO, BLK_SIZE, SIZE_MAX,
 * SEG_MAX, FLUSH, DISCARD, WRITE_ZEROES when offered) and reads its configuration.
 */
int vblk_open(struct virtio_bus *b, unsigned index, struct vblk *v);
/* Initialises the device again (after a reset or NEEDS_RESET); keeps the buffers. */
int vblk_start(struct vblk *v);
/*
 * One request; *status gets the device's status byte (VBLK_S_UNWRITTEN if it wrote none).
 * Returns -errno only when the request did not complete. Data is in phys_to_ptr(buf_pa).
 */
int vblk_rw(struct vblk *v, bool write, uint64_t sector, uint32_t nsect, uint8_t *status);
int vblk_flush(struct vblk *v, uint8_t *status);
/* id gets the serial, NUL-terminated (up to VBLK_ID_BYTES characters). */
int vblk_get_id(struct vblk *v, char id[VBLK_ID_BYTES + 1], uint8_t *status);
/* type is VIRTIO_BLK_T_DISCARD or VIRTIO_BLK_T_WRITE_ZEROES (one range, no unmap flag). */
int vblk_range(struct vblk *v, uint32_t type, uint64_t sector, uint32_t nsect, uint8_t *status);
/* Reads capacity again (after a configuration change). */
int vblk_read_capacity(struct vblk *v, uint64_t *capacity);

#endif
