/*
 * virtio_blk: drives every virtio-blk device (1af4:1042) in slot order and reports what it
 * sees; command-line keys ask for data checks on one disk N (its index in slot order):
 *
 *   vblk.rw=N             write a pattern to every sector, FLUSH, read back and compare
 *   vblk.seed=S           pattern seed (default 0): 64-bit little-endian word i (0..63) of
 *                         sector s is S ^ (s << 16) ^ i
 *   vblk.check=N          read every sector and report the CRC-32 (the host wrote the file)
 *   vblk.ro=N             a write must fail with IOERR and leave sector 0 unchanged
 *   vblk.beyond=N         reads at and across the capacity must fail with IOERR
 *   vblk.discard=N,S,C    DISCARD C sectors at S (when offered), which must read back zero
 *   vblk.zeroes=N,S,C     WRITE_ZEROES likewise
 *   vblk.bad=N            malformed chains, each followed by a good read, then the rng
 *   vblk.capacity_wait=N  print "READY resize", wait for a configuration change interrupt
 *   vblk.timeout_ms=T     how long capacity_wait waits (default 30000)
 *   vblk.max_sectors=M    largest disk rw/check will walk (default 8192: every sector costs
 *                         emulated instructions)
 *
 * INFO: blk.count, blk.N=BDF,CAPACITY,BLK_SIZE,0xFEATURES(offered),RO, blk.N.id=ID|UNSUPP|IOERR,
 * blk.N.crc=CRC32 (hex), blk.N.bad.KIND=..., blk.N.new_capacity=SECTORS.
 * PASS/FAIL: blk_rw, blk_flush, blk_ro_refused, blk_ro_unchanged, blk_beyond_refused,
 * blk_discard, blk_write_zeroes, blk_survives_bad_chain, blk_bad_rng_alive, blk_config_irq,
 * blk_irqs.
 */
#include "lib/cmdline.h"
#include "lib/console.h"
#include "lib/crc32.h"
#include "lib/fmt.h"
#include "lib/str.h"
#include "lib/vblk.h"

#define MAX_DISKS	   8
#define WORDS_PER_SECTOR   (VBLK_SECTOR / 8)
#define DEFAULT_MAX_SECT   8192
#define BAD_WAIT_MS	   1000
#define BAD_OOB_ADDR	   (1ull << 39) /* far above RAM and any PCI window in our tests */
#define RESIZE_TIMEOUT_MS  30000
#define RESIZE_MAX_CHANGES 16

struct blk_guest {
	struct guest *g;
	struct virtio_bus bus;
	struct vblk *disks;
	unsigned ndisks;
	uint64_t seed;
	uint64_t max_sectors;
};

static uint64_t pattern_word(uint64_t seed, uint64_t sector, unsigned i)
{
	return seed ^ (sector << 16) ^ i;
}

static void fill(struct vblk *v, uint64_t seed, uint64_t sector, uint32_t nsect)
{
	uint64_t *w = phys_to_ptr(v->buf_pa);

	for (uint32_t s = 0; s < nsect; s++)
		for (unsigned i = 0; i < WORDS_PER_SECTOR; i++)
			*w++ = pattern_word(seed, sector + s, i);
}

/* First sector in the buffer that differs from the pattern, or -1. */
static int64_t verify(const struct vblk *v, uint64_t seed, uint64_t sector, uint32_t nsect)
{
	const uint64_t *w = phys_to_ptr(v->buf_pa);

	for (uint32_t s = 0; s < nsect; s++)
		for (unsigned i = 0; i < WORDS_PER_SECTOR; i++)
			if (*w++ != pattern_word(seed, sector + s, i))
				return (int64_t)(sector + s);
	return -1;
}

static bool all_zero(const struct vblk *v, uint32_t nsect)
{
	const uint64_t *w = phys_to_ptr(v->buf_pa);

	for (uint32_t i = 0; i < nsect * WORDS_PER_SECTOR; i++)
		if (w[i])
			return false;
	return true;
}

/* A read or write that must succeed: reports FAIL name otherwise. */
static int io_ok(struct guest *g, struct vblk *v, const char *name, bool write, uint64_t sector,
		 uint32_t nsect)
{
	uint8_t st;
	int rc = vblk_rw(v, write, sector, nsect, &st);

	if (rc || st != VIRTIO_BLK_S_OK) {
		report_fail(g, name, "blk%u: %s of %u sectors at %lu: rc %d status 0x%02x",
			    v->index, write ? "write" : "read", nsect, sector, rc, st);
		return rc ? rc : -EIO;
	}
	return 0;
}

/* The status byte by name; "unwritten" when the device left our 0xff there. */
static const char *status_name(uint8_t st)
{
	switch (st) {
	case VIRTIO_BLK_S_OK:
		return "OK";
	case VIRTIO_BLK_S_IOERR:
		return "IOERR";
	case VIRTIO_BLK_S_UNSUPP:
		return "UNSUPP";
	case VBLK_S_UNWRITTEN:
		return "unwritten";
	default:
		return "other";
	}
}

static void report_disk(struct guest *g, struct vblk *v)
{
	char id[VBLK_ID_BYTES + 1], esc[4 * VBLK_ID_BYTES + 1];
	uint8_t st;
	int rc;

	report_info(g, "blk.%u=%s,%lu,%u,0x%lx,%u", v->index, v->dev.bdf, v->capacity, v->blk_size,
		    v->dev.offered, v->ro ? 1 : 0);
	rc = vblk_get_id(v, id, &st);
	con_escape(esc, sizeof(esc), id);
	if (rc)
		report_info(g, "blk.%u.id=ERR%d", v->index, rc);
	else if (st == VIRTIO_BLK_S_OK)
		report_info(g, "blk.%u.id=%s", v->index, esc);
	else
		report_info(g, "blk.%u.id=%s", v->index, status_name(st));
}

static uint64_t walk_limit(struct blk_guest *bg, struct vblk *v, const char *name)
{
	if (v->capacity > bg->max_sectors) {
		report_fail(bg->g, name, "blk%u has %lu sectors, more than vblk.max_sectors=%lu",
			    v->index, v->capacity, bg->max_sectors);
		return 0;
	}
	return v->capacity;
}

/* Reads the whole disk; with verify_seed, compares with the pattern. Reports the CRC. */
static int read_all(struct blk_guest *bg, struct vblk *v, const char *name, bool check,
		    uint64_t seed)
{
	uint64_t n = walk_limit(bg, v, name);
	uint32_t crc = 0;

	for (uint64_t s = 0; s < n;) {
		uint32_t c = (uint32_t)MIN(n - s, v->max_sectors);
		int64_t bad;

		if (io_ok(bg->g, v, name, false, s, c))
			return -EIO;
		if (check && (bad = verify(v, seed, s, c)) >= 0) {
			report_fail(bg->g, name, "blk%u sector %ld does not hold the pattern",
				    v->index, bad);
			return -EIO;
		}
		crc = crc32_update(crc, phys_to_ptr(v->buf_pa), c * VBLK_SECTOR);
		s += c;
	}
	if (!n)
		return -E2BIG;
	report_info(bg->g, "blk.%u.crc=%08x", v->index, crc);
	return 0;
}

static void do_rw(struct blk_guest *bg, struct vblk *v)
{
	struct guest *g = bg->g;
	uint64_t n = walk_limit(bg, v, "blk_rw");
	uint8_t st;
	int rc;

	for (uint64_t s = 0; s < n;) {
		uint32_t c = (uint32_t)MIN(n - s, v->max_sectors);

		fill(v, bg->seed, s, c);
		if (io_ok(g, v, "blk_rw", true, s, c))
			return;
		s += c;
	}
	if (!n)
		return;
	if (virtio_has(&v->dev, VIRTIO_BLK_F_FLUSH)) {
		rc = vblk_flush(v, &st);
		report_check(g, !rc && st == VIRTIO_BLK_S_OK, "blk_flush",
			     "blk%u: rc %d status 0x%02x", v->index, rc, st);
	} else {
		report_info(g, "blk.%u.flush=not_offered", v->index);
	}
	if (read_all(bg, v, "blk_rw", true, bg->seed) == 0)
		report_pass(g, "blk_rw");
}

static void do_ro(struct blk_guest *bg, struct vblk *v)
{
	struct guest *g = bg->g;
	uint64_t before[WORDS_PER_SECTOR];
	uint8_t st;
	int rc;

	if (io_ok(g, v, "blk_ro_refused", false, 0, 1))
		return;
	memcpy(before, phys_to_ptr(v->buf_pa), VBLK_SECTOR);
	fill(v, bg->seed ^ 0x5a5a5a5a5a5a5a5aull, 0, 1);
	rc = vblk_rw(v, true, 0, 1, &st);
	report_info(g, "blk.%u.ro_status=%s", v->index, rc ? "none" : status_name(st));
	report_check(g, !rc && st == VIRTIO_BLK_S_IOERR, "blk_ro_refused",
		     "blk%u: a write to a read-only disk gave rc %d status 0x%02x", v->index, rc,
		     st);
	if (io_ok(g, v, "blk_ro_unchanged", false, 0, 1))
		return;
	report_check(g, !memcmp(before, phys_to_ptr(v->buf_pa), VBLK_SECTOR), "blk_ro_unchanged",
		     "blk%u: sector 0 changed", v->index);
}

static void do_beyond(struct blk_guest *bg, struct vblk *v)
{
	uint8_t st1 = 0, st2 = 0;
	int rc1 = vblk_rw(v, false, v->capacity, 1, &st1);
	int rc2 = v->capacity ? vblk_rw(v, false, v->capacity - 1, 2, &st2) : 0;

	report_check(bg->g,
		     !rc1 && st1 == VIRTIO_BLK_S_IOERR && !rc2 &&
			     (!v->capacity || st2 == VIRTIO_BLK_S_IOERR),
		     "blk_beyond_refused",
		     "blk%u: read at capacity: rc %d status 0x%02x; across it: rc %d status 0x%02x",
		     v->index, rc1, st1, rc2, st2);
}

/* DISCARD or WRITE_ZEROES of [sector, sector+count): the range reads zero, its neighbours not. */
static void do_range(struct blk_guest *bg, struct vblk *v, uint32_t type, uint64_t sector,
		     uint64_t count)
{
	struct guest *g = bg->g;
	bool discard = type == VIRTIO_BLK_T_DISCARD;
	const char *name = discard ? "blk_discard" : "blk_write_zeroes";
	uint32_t feature = discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES;
	uint32_t max = discard ? v->max_discard_sectors : v->max_zeroes_sectors;
	uint64_t lo = sector ? sector - 1 : 0, hi = MIN(sector + count + 1, v->capacity);
	uint64_t seed = bg->seed ^ 0xa5a5a5a5ull;
	uint8_t st;

	if (!virtio_has(&v->dev, feature)) {
		report_info(g, "blk.%u.%s=not_offered", v->index, discard ? "discard" : "zeroes");
		return;
	}
	if (!count || sector >= v->capacity || count > v->capacity - sector ||
	    hi - lo > v->max_sectors) {
		report_fail(g, name, "range %lu+%lu does not fit blk%u (%lu sectors, at most %u)",
			    sector, count, v->index, v->capacity, v->max_sectors - 2);
		return;
	}
	fill(v, seed, lo, (uint32_t)(hi - lo));
	if (io_ok(g, v, name, true, lo, (uint32_t)(hi - lo)))
		return;
	for (uint64_t s = sector; s < sector + count;) {
		uint32_t c = (uint32_t)MIN(sector + count - s, max ? max : count);
		int rc = vblk_range(v, type, s, c, &st);

		if (rc || st != VIRTIO_BLK_S_OK) {
			report_fail(g, name, "blk%u: %lu+%u: rc %d status %s", v->index, s, c, rc,
				    status_name(st));
			return;
		}
		s += c;
	}
	for (uint64_t s = lo; s < hi; s++) {
		bool inside = s >= sector && s < sector + count;

		if (io_ok(g, v, name, false, s, 1))
			return;
		if (inside ? !all_zero(v, 1) : verify(v, seed, s, 1) >= 0) {
			report_fail(g, name, "blk%u sector %lu: %s", v->index, s,
				    inside ? "not zero afterwards" : "a neighbour changed");
			return;
		}
	}
	report_pass(g, "%s", name);
}

enum bad_kind { BAD_OOB, BAD_WRITABLE_HDR, BAD_LOOP, BAD_INDIRECT_LEN, NR_BAD };

static const char *const bad_names[NR_BAD] = {"oob_addr", "writable_header", "loop",
					      "indirect_len"};

static int submit_bad(struct vblk *v, enum bad_kind k)
{
	struct virtio_dev *d = &v->dev;
	struct virtq *q = d->vq[0];
	uint64_t status = v->hdr_pa + VBLK_STATUS_OFF;
	struct virtq_desc c[3] = {
		{v->hdr_pa, 16, VIRTQ_DESC_F_NEXT, 1},
		{v->buf_pa, VBLK_SECTOR, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2},
		{status, 1, VIRTQ_DESC_F_WRITE, 0},
	};
	uint16_t head;
	unsigned n = 3;
	int rc;

	*(volatile uint64_t *)phys_to_ptr(v->hdr_pa) = VIRTIO_BLK_T_IN;
	*(volatile uint64_t *)phys_to_ptr(v->hdr_pa + 8) = 0;
	*(volatile uint8_t *)phys_to_ptr(status) = VBLK_S_UNWRITTEN;
	switch (k) {
	case BAD_OOB:
		c[0].addr = BAD_OOB_ADDR;
		break;
	case BAD_WRITABLE_HDR:
		c[0].flags |= VIRTQ_DESC_F_WRITE;
		break;
	case BAD_LOOP:
		/* Back to the data buffer: the order stays valid, only the length is endless. */
		c[2].flags |= VIRTQ_DESC_F_NEXT;
		c[2].next = 1;
		break;
	default: {
		/* An indirect table whose length is not a multiple of the descriptor size. */
		uint64_t table = v->buf_pa + VBLK_BUF_BYTES / 2;

		memcpy(phys_to_ptr(table), c, sizeof(c));
		c[0] = (struct virtq_desc){table, sizeof(c) - 8, VIRTQ_DESC_F_INDIRECT, 0};
		n = 1;
	}
	}
	rc = virtq_add_raw(q, c, n, &head);
	if (rc)
		return rc;
	d->irq_mark[0] = virtio_queue_irqs(d, 0);
	virtq_kick(q);
	return 0;
}

/* What the device made of the chain: used (with its status byte), needs_reset, or ignored. */
static void bad_outcome(struct blk_guest *bg, struct vblk *v, enum bad_kind k, bool *reset)
{
	struct virtio_dev *d = &v->dev;
	struct clock *c = &bg->bus.clock;
	uint64_t start = clock_now_ms(c);
	uint16_t head;
	uint32_t len;

	*reset = false;
	cpu_cli();
	while (clock_now_ms(c) - start < BAD_WAIT_MS) {
		if (virtq_has_used(d->vq[0])) {
			int rc = virtq_pop(d->vq[0], &head, &len);

			report_info(bg->g, "blk.%u.bad.%s=used:%s", v->index, bad_names[k],
				    rc ? "bad_id"
				       : status_name(*(volatile uint8_t *)phys_to_ptr(
						 v->hdr_pa + VBLK_STATUS_OFF)));
			return;
		}
		if (virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET) {
			report_info(bg->g, "blk.%u.bad.%s=needs_reset", v->index, bad_names[k]);
			*reset = true;
			return;
		}
		clock_halt(c, 10000);
	}
	report_info(bg->g, "blk.%u.bad.%s=ignored", v->index, bad_names[k]);
}

static void rng_alive(struct blk_guest *bg)
{
	struct guest *g = bg->g;
	struct virtio_dev *d = dma_zalloc(&bg->bus.pool, sizeof(*d), 64);
	uint64_t buf;
	uint32_t len = 0;
	int rc;

	if (!d || dma_alloc(&bg->bus.pool, 16, 16, &buf))
		return;
	if (virtio_find(&bg->bus, VIRTIO_ID_RNG, 0, d) == -ENOENT) {
		report_info(g, "blk.bad_rng=absent");
		return;
	}
	str_copy(d->name, "rng", sizeof(d->name));
	rc = virtio_begin(d, 0);
	if (!rc)
		rc = virtio_setup_queue(d, 0, 0);
	if (!rc)
		rc = virtio_driver_ok(d);
	if (!rc) {
		struct virtq_buf b = {buf, 16, true};

		rc = virtio_request(d, 0, &b, 1, VBLK_TIMEOUT_MS, &len);
	}
	report_check(g, !rc && len > 0, "blk_bad_rng_alive", "the rng gave rc %d, %u bytes", rc,
		     len);
	virtio_reset(d);
}

static void do_bad(struct blk_guest *bg, struct vblk *v)
{
	struct guest *g = bg->g;
	bool ok = true;

	for (unsigned k = 0; k < NR_BAD; k++) {
		bool reset;
		int rc;

		if (k == BAD_INDIRECT_LEN && !virtio_has(&v->dev, VIRTIO_F_INDIRECT_DESC))
			continue;
		rc = submit_bad(v, k);
		if (rc) {
			report_fail(g, "blk_survives_bad_chain", "cannot queue %s (%d)",
				    bad_names[k], rc);
			ok = false;
			break;
		}
		bad_outcome(bg, v, k, &reset);
		if (reset && vblk_start(v)) {
			report_fail(g, "blk_survives_bad_chain", "blk%u cannot restart after %s",
				    v->index, bad_names[k]);
			ok = false;
			break;
		}
		if (io_ok(g, v, "blk_survives_bad_chain", false, 0, 1)) {
			ok = false;
			/* Start over so the next kind is judged on its own. */
			if (vblk_start(v))
				break;
		}
	}
	if (ok)
		report_pass(g, "blk_survives_bad_chain");
	rng_alive(bg);
}

static void do_capacity_wait(struct blk_guest *bg, struct vblk *v)
{
	struct guest *g = bg->g;
	struct virtio_dev *d = &v->dev;
	uint64_t timeout = cmdline_u64(g->boot.cmdline, "vblk.timeout_ms", RESIZE_TIMEOUT_MS);
	uint64_t start = clock_now_ms(&bg->bus.clock), cap = v->capacity;
	uint32_t since = d->config_irqs;

	con_printf(g, "READY resize\n");
	for (unsigned i = 0; i < RESIZE_MAX_CHANGES && cap == v->capacity; i++) {
		uint64_t spent = clock_now_ms(&bg->bus.clock) - start;

		if (spent >= timeout ||
		    virtio_wait_config(d, since, (uint32_t)MIN(timeout - spent, UINT32_MAX))) {
			report_fail(g, "blk_config_irq", "no configuration change within %lu ms",
				    timeout);
			return;
		}
		since = d->config_irqs;
		if (vblk_read_capacity(v, &cap))
			cap = v->capacity;
	}
	report_pass(g, "blk_config_irq");
	report_info(g, "blk.%u.new_capacity=%lu", v->index, cap);
	v->capacity = cap;
}

/* Parses "N[,A,B]" (the disk index and up to two numbers). */
static int parse_key(struct guest *g, const char *key, unsigned nargs, uint64_t out[3])
{
	char buf[64], *p = buf;

	if (cmdline_get(g->boot.cmdline, key, buf, sizeof(buf)))
		return -ENOENT;
	for (unsigned i = 0; i <= nargs; i++) {
		char *end = p;

		while (*end && *end != ',')
			end++;
		if ((i < nargs) != (*end == ',')) {
			report_fail(g, "vblk_keys", "%s=%s: expected %u comma-separated numbers",
				    key, buf, nargs + 1);
			return -EINVAL;
		}
		*end = '\0';
		if (str_to_u64(p, &out[i])) {
			report_fail(g, "vblk_keys", "%s: '%s' is not a number", key, p);
			return -EINVAL;
		}
		p = end + 1;
	}
	return 0;
}

static struct vblk *disk_for(struct blk_guest *bg, const char *key, unsigned nargs, uint64_t out[3])
{
	if (parse_key(bg->g, key, nargs, out))
		return NULL;
	if (out[0] >= bg->ndisks) {
		report_fail(bg->g, "vblk_keys", "%s: there is no disk %lu (%u found)", key, out[0],
			    bg->ndisks);
		return NULL;
	}
	return &bg->disks[out[0]];
}

int guest_main(struct guest *g)
{
	struct blk_guest bg = {.g = g};
	const char *cl = g->boot.cmdline;
	uint64_t a[3];
	struct vblk *v;

	bg.seed = cmdline_u64(cl, "vblk.seed", 0);
	bg.max_sectors = cmdline_u64(cl, "vblk.max_sectors", DEFAULT_MAX_SECT);
	if (virtio_bus_init(g, &bg.bus))
		return 0;
	bg.disks = dma_zalloc(&bg.bus.pool, sizeof(*bg.disks) * MAX_DISKS, 64);
	if (!bg.disks)
		return 0;
	while (bg.ndisks < MAX_DISKS) {
		int rc = vblk_open(&bg.bus, bg.ndisks, &bg.disks[bg.ndisks]);

		if (rc == -ENOENT)
			break;
		if (rc) {
			report_fail(g, "blk_init", "blk%u: initialisation failed (%d)", bg.ndisks,
				    rc);
			break;
		}
		report_disk(g, &bg.disks[bg.ndisks]);
		bg.ndisks++;
	}
	report_info(g, "blk.count=%u", bg.ndisks);

	if ((v = disk_for(&bg, "vblk.ro", 0, a)))
		do_ro(&bg, v);
	if ((v = disk_for(&bg, "vblk.beyond", 0, a)))
		do_beyond(&bg, v);
	if ((v = disk_for(&bg, "vblk.rw", 0, a)))
		do_rw(&bg, v);
	if ((v = disk_for(&bg, "vblk.check", 0, a)))
		read_all(&bg, v, "blk_check", false, 0);
	if ((v = disk_for(&bg, "vblk.zeroes", 2, a)))
		do_range(&bg, v, VIRTIO_BLK_T_WRITE_ZEROES, a[1], a[2]);
	if ((v = disk_for(&bg, "vblk.discard", 2, a)))
		do_range(&bg, v, VIRTIO_BLK_T_DISCARD, a[1], a[2]);
	if ((v = disk_for(&bg, "vblk.bad", 0, a)))
		do_bad(&bg, v);
	if ((v = disk_for(&bg, "vblk.capacity_wait", 0, a)))
		do_capacity_wait(&bg, v);

	for (unsigned i = 0; i < bg.ndisks; i++) {
		struct virtio_dev *d = &bg.disks[i].dev;

		if (d->stale)
			report_info(g, "blk.%u.stale_completions=%u", i, d->stale);
		report_check(g, d->missed_irqs == 0, "blk_irqs",
			     "blk%u: %u completions without their %s interrupt", i, d->missed_irqs,
			     virtio_irq_mode_name(d->irq_active));
		virtio_reset(d);
	}
	return 0;
}
