#include "vblk.h"
#include "fmt.h"
#include "str.h"

/* Configuration layout (virtio 1.2, 5.2.4). */
#define CFG_CAPACITY		0
#define CFG_SIZE_MAX		8
#define CFG_SEG_MAX		12
#define CFG_BLK_SIZE		20
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_DISCARD_ALIGN	44
#define CFG_MAX_ZEROES_SECTORS	48

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
} PACKED;

struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
} PACKED;

static uint32_t cfg32(const struct vblk *v, uint32_t off, uint32_t def)
{
	uint64_t x;

	return virtio_cfg_read(&v->dev, off, 4, &x) ? def : (uint32_t)x;
}

int vblk_read_capacity(struct vblk *v, uint64_t *capacity)
{
	return virtio_cfg_read(&v->dev, CFG_CAPACITY, 8, capacity);
}

static void read_config(struct vblk *v)
{
	const struct virtio_dev *d = &v->dev;
	uint32_t max = VBLK_BUF_BYTES / VBLK_SECTOR;

	vblk_read_capacity(v, &v->capacity);
	v->blk_size = virtio_has(d, VIRTIO_BLK_F_BLK_SIZE) ? cfg32(v, CFG_BLK_SIZE, 512) : 512;
	v->size_max = virtio_has(d, VIRTIO_BLK_F_SIZE_MAX) ? cfg32(v, CFG_SIZE_MAX, 0) : 0;
	v->seg_max = virtio_has(d, VIRTIO_BLK_F_SEG_MAX) ? cfg32(v, CFG_SEG_MAX, 0) : 0;
	v->ro = virtio_has(d, VIRTIO_BLK_F_RO);
	v->max_discard_sectors = cfg32(v, CFG_MAX_DISCARD_SECTORS, 0);
	v->discard_align = cfg32(v, CFG_DISCARD_ALIGN, 0);
	v->max_zeroes_sectors = cfg32(v, CFG_MAX_ZEROES_SECTORS, 0);
	/* One data segment per request, no larger than the device takes. */
	if (v->size_max >= VBLK_SECTOR && v->size_max / VBLK_SECTOR < max)
		max = v->size_max / VBLK_SECTOR;
	v->max_sectors = max;
}

int vblk_start(struct vblk *v)
{
	uint64_t want = VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
			VIRTIO_BIT(VIRTIO_BLK_F_RO) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
			VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
			VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	int rc = virtio_begin(&v->dev, want);

	if (!rc)
		rc = virtio_setup_queue(&v->dev, 0, 0);
	if (!rc)
		rc = virtio_driver_ok(&v->dev);
	if (!rc)
		read_config(v);
	return rc;
}

int vblk_open(struct virtio_bus *b, unsigned index, struct vblk *v)
{
	int rc;

	memset(v, 0, sizeof(*v));
	v->index = index;
	rc = virtio_find(b, VIRTIO_ID_BLOCK, index, &v->dev);
	if (rc)
		return rc;
	fmt_snprintf(v->dev.name, sizeof(v->dev.name), "blk%u", index);
	if (dma_alloc(&b->pool, VBLK_HDR_AREA, 64, &v->hdr_pa) ||
	    dma_alloc(&b->pool, VBLK_BUF_BYTES, 4096, &v->buf_pa))
		return -ENOMEM;
	return vblk_start(v);
}

static volatile uint8_t *status_byte(const struct vblk *v)
{
	return phys_to_ptr(v->hdr_pa + VBLK_STATUS_OFF);
}

static int request(struct vblk *v, uint32_t type, uint64_t sector, const struct virtq_buf *data,
		   uint8_t *status)
{
	struct blk_hdr *h = phys_to_ptr(v->hdr_pa + VBLK_HDR_OFF);
	struct virtq_buf bufs[3];
	unsigned n = 0;
	uint32_t len;
	int rc;

	*h = (struct blk_hdr){.type = type, .sector = sector};
	*status_byte(v) = VBLK_S_UNWRITTEN;
	bufs[n++] = (struct virtq_buf){v->hdr_pa + VBLK_HDR_OFF, sizeof(*h), false};
	if (data)
		bufs[n++] = *data;
	bufs[n++] = (struct virtq_buf){v->hdr_pa + VBLK_STATUS_OFF, 1, true};
	rc = virtio_request(&v->dev, 0, bufs, n, VBLK_TIMEOUT_MS, &len);
	*status = *status_byte(v);
	return rc;
}

int vblk_rw(struct vblk *v, bool write, uint64_t sector, uint32_t nsect, uint8_t *status)
{
	struct virtq_buf data = {v->buf_pa, nsect * VBLK_SECTOR, !write};

	if (!nsect || nsect > VBLK_BUF_BYTES / VBLK_SECTOR)
		return -EINVAL;
	return request(v, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector, &data, status);
}

int vblk_flush(struct vblk *v, uint8_t *status)
{
	return request(v, VIRTIO_BLK_T_FLUSH, 0, NULL, status);
}

int vblk_get_id(struct vblk *v, char id[VBLK_ID_BYTES + 1], uint8_t *status)
{
	struct virtq_buf data = {v->hdr_pa + VBLK_ID_OFF, VBLK_ID_BYTES, true};
	int rc;

	memset(phys_to_ptr(data.addr), 0, VBLK_ID_BYTES);
	rc = request(v, VIRTIO_BLK_T_GET_ID, 0, &data, status);
	memcpy(id, phys_to_ptr(data.addr), VBLK_ID_BYTES);
	id[VBLK_ID_BYTES] = '\0';
	return rc;
}

int vblk_range(struct vblk *v, uint32_t type, uint64_t sector, uint32_t nsect, uint8_t *status)
{
	struct blk_range *r = phys_to_ptr(v->hdr_pa + VBLK_RANGE_OFF);
	struct virtq_buf data = {v->hdr_pa + VBLK_RANGE_OFF, sizeof(*r), false};

	*r = (struct blk_range){.sector = sector, .num_sectors = nsect};
	return request(v, type, 0, &data, status);
}
