/*
 * balloon: a virtio-balloon driver (1af4:1045) for the host's balloon and balloon_stats
 * commands. It negotiates STATS_VQ (and DEFLATE_ON_OOM, MUST_TELL_HOST when offered), posts
 * a statistics buffer, touches the pages it may give away so the host really holds them,
 * prints "READY balloon", then follows num_pages: it inflates by handing the host PFNs from
 * a RAM region it does not otherwise use (from balloon.base_mib up), deflates by taking the
 * last ones back, and writes `actual` after each change. A statistics buffer the device hands
 * back is refilled and queued again.
 *
 * Keys: balloon.timeout_ms=T (default 60000), balloon.base_mib=M (default 64),
 * balloon.touch_mib=M (pages touched before READY, default 32), plus lib/virtio.h keys.
 * INFO: balloon.dev, balloon.features (negotiated), balloon.region=0xBASE,PAGES,
 * balloon.stats_total=BYTES, balloon.actual=PAGES (after each change),
 * balloon.stats_sent=N (after each statistics request), balloon.capped=PAGES (num_pages
 * beyond the region), balloon.end=cycle|timeout.
 * PASS/FAIL: balloon_found, balloon_init, balloon_inflate, balloon_deflate, balloon_stats,
 * balloon_cycle (num_pages went above 0 and back to 0, and the balloon followed).
 */
#include "lib/cmdline.h"
#include "lib/console.h"
#include "lib/str.h"
#include "lib/virtio.h"

#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ	1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define CFG_NUM_PAGES			0
#define CFG_ACTUAL			4
#define Q_INFLATE			0
#define Q_DEFLATE			1
#define Q_STATS				2
#define PFNS_PER_REQ			256
#define PAGE_SIZE			4096
#define BALLOON_TIMEOUT_MS		60000
#define BALLOON_BASE_MIB		64
#define BALLOON_TOUCH_MIB		32
#define REQ_TIMEOUT_MS			5000
#define POLL_US				100000

enum stat_tag {
	S_SWAP_IN,
	S_SWAP_OUT,
	S_MAJFLT,
	S_MINFLT,
	S_MEMFREE,
	S_MEMTOT,
	S_AVAIL,
	S_CACHES,
	NR_STATS,
};

struct balloon_stat {
	uint16_t tag;
	uint64_t val;
} PACKED;

struct balloon {
	struct guest *g;
	struct virtio_bus bus;
	struct virtio_dev dev;
	uint64_t base;	    /* first page we may give away */
	uint32_t pages;	    /* how many there are */
	uint32_t inflated;  /* pages [base, base + inflated * 4 KiB) are the host's */
	uint32_t max_seen;  /* largest num_pages seen */
	uint64_t total_ram; /* e820 RAM */
	uint32_t *pfns;
	uint64_t pfns_pa;
	struct balloon_stat *stats;
	uint64_t stats_pa;
	uint32_t stats_sent;
	bool capped_reported;
	bool failed;
};

/* The largest RAM run from base_mib up, below the 4 GiB identity map. */
static int pick_region(struct balloon *b)
{
	uint64_t base = MiB(cmdline_u64(b->g->boot.cmdline, "balloon.base_mib", BALLOON_BASE_MIB));
	uint64_t end = base;

	/* Grow 1 MiB at a time: few steps for the RAM sizes tests use, and e820 decides. */
	while (end + MiB(1) <= GUEST_MAPPED_LIMIT &&
	       bootinfo_range_is(&b->g->boot, end, MiB(1), E820_RAM))
		end += MiB(1);
	if (end == base) {
		report_fail(b->g, "balloon_init", "no RAM at 0x%lx to give away", base);
		return -ENOMEM;
	}
	b->base = base;
	b->pages = (uint32_t)((end - base) / PAGE_SIZE);
	return 0;
}

/* Writes one word per page so the host has to back it before we give it away. */
static void touch(uint64_t addr, uint64_t len)
{
	for (uint64_t a = addr; a < addr + len; a += PAGE_SIZE)
		*(volatile uint64_t *)phys_to_ptr(a) = a / PAGE_SIZE;
}

static void fill_stats(struct balloon *b)
{
	uint64_t free = (uint64_t)(b->pages - b->inflated) * PAGE_SIZE;
	static const uint16_t tags[NR_STATS] = {S_SWAP_IN, S_SWAP_OUT, S_MAJFLT, S_MINFLT,
						S_MEMFREE, S_MEMTOT,   S_AVAIL,	 S_CACHES};

	for (unsigned i = 0; i < NR_STATS; i++) {
		uint64_t v = 0;

		if (tags[i] == S_MEMFREE || tags[i] == S_AVAIL)
			v = free;
		else if (tags[i] == S_MEMTOT)
			v = b->total_ram;
		b->stats[i] = (struct balloon_stat){.tag = tags[i], .val = v};
	}
}

static int post_stats(struct balloon *b)
{
	struct virtq_buf buf = {b->stats_pa, sizeof(*b->stats) * NR_STATS, false};
	uint16_t head;

	fill_stats(b);
	return virtio_submit(&b->dev, Q_STATS, &buf, 1, &head);
}

static int start(struct balloon *b)
{
	struct virtio_dev *d = &b->dev;
	uint64_t want = VIRTIO_BIT(VIRTIO_BALLOON_F_MUST_TELL_HOST) |
			VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) |
			VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
	int rc = virtio_begin(d, want);

	if (!rc)
		rc = virtio_setup_queue(d, Q_INFLATE, 0);
	if (!rc)
		rc = virtio_setup_queue(d, Q_DEFLATE, 0);
	if (!rc && virtio_has(d, VIRTIO_BALLOON_F_STATS_VQ))
		rc = virtio_setup_queue(d, Q_STATS, 0);
	if (!rc)
		rc = virtio_driver_ok(d);
	/* The device asks for statistics by returning the buffer we give it now. */
	if (!rc && virtio_has(d, VIRTIO_BALLOON_F_STATS_VQ))
		rc = post_stats(b);
	return rc;
}

/* Moves count pages at the top of the balloon in (inflate) or out. */
static int move_pages(struct balloon *b, bool inflate, uint32_t count)
{
	uint32_t first = inflate ? b->inflated : b->inflated - count;
	struct virtq_buf buf = {b->pfns_pa, count * 4, false};
	uint32_t len;
	int rc;

	for (uint32_t i = 0; i < count; i++) {
		uint64_t addr = b->base + (uint64_t)(first + i) * PAGE_SIZE;

		if (inflate)
			touch(addr, PAGE_SIZE);
		b->pfns[i] = (uint32_t)(addr / PAGE_SIZE);
	}
	rc = virtio_request(&b->dev, inflate ? Q_INFLATE : Q_DEFLATE, &buf, 1, REQ_TIMEOUT_MS,
			    &len);
	if (rc) {
		report_fail(b->g, inflate ? "balloon_inflate" : "balloon_deflate",
			    "%u pages at pfn 0x%x: no completion (%d)", count, b->pfns[0], rc);
		return rc;
	}
	b->inflated = inflate ? b->inflated + count : b->inflated - count;
	return 0;
}

static int follow(struct balloon *b, uint32_t target)
{
	uint32_t before = b->inflated;
	int rc = 0;

	if (target > b->pages) {
		if (!b->capped_reported)
			report_info(b->g, "balloon.capped=%u", b->pages);
		b->capped_reported = true;
		target = b->pages;
	}
	while (!rc && b->inflated < target)
		rc = move_pages(b, true, MIN(target - b->inflated, PFNS_PER_REQ));
	while (!rc && b->inflated > target)
		rc = move_pages(b, false, MIN(b->inflated - target, PFNS_PER_REQ));
	if (b->inflated != before) {
		virtio_cfg_write(&b->dev, CFG_ACTUAL, 4, b->inflated);
		report_info(b->g, "balloon.actual=%u", b->inflated);
	}
	return rc;
}

/* A statistics buffer came back: the host wants fresh numbers. */
static void answer_stats(struct balloon *b)
{
	struct virtq *q = b->dev.vq[Q_STATS];
	uint16_t head;
	uint32_t len;

	while (q && virtq_has_used(q)) {
		if (virtq_pop(q, &head, &len)) {
			report_fail(b->g, "balloon_stats", "the device returned a bad buffer id");
			b->failed = true;
			return;
		}
		b->stats_sent++;
		if (post_stats(b)) {
			report_fail(b->g, "balloon_stats", "cannot queue the statistics buffer");
			b->failed = true;
			return;
		}
		report_info(b->g, "balloon.stats_sent=%u", b->stats_sent);
	}
}

static void run(struct balloon *b)
{
	struct clock *c = &b->bus.clock;
	uint64_t timeout =
		cmdline_u64(b->g->boot.cmdline, "balloon.timeout_ms", BALLOON_TIMEOUT_MS);
	uint64_t start_ms = clock_now_ms(c);

	cpu_cli();
	for (;;) {
		uint64_t target;

		if (virtio_cfg_read(&b->dev, CFG_NUM_PAGES, 4, &target) == 0) {
			if (target > b->max_seen)
				b->max_seen = (uint32_t)target;
			if (follow(b, (uint32_t)target))
				b->failed = true;
		}
		answer_stats(b);
		if (b->failed)
			return;
		if (b->max_seen && !target && !b->inflated) {
			report_info(b->g, "balloon.end=cycle");
			report_pass(b->g, "balloon_cycle");
			return;
		}
		if (clock_now_ms(c) - start_ms >= timeout) {
			report_info(b->g, "balloon.end=timeout");
			return;
		}
		/* Config changes and returned statistics both interrupt; the timer bounds it. */
		clock_halt(c, POLL_US);
	}
}

int guest_main(struct guest *g)
{
	struct balloon bal, *b = &bal;
	uint64_t touch_bytes;
	int rc;

	memset(b, 0, sizeof(*b));
	b->g = g;
	if (virtio_bus_init(g, &b->bus))
		return 0;
	b->total_ram = bootinfo_mem_total(&g->boot);
	b->pfns = dma_zalloc(&b->bus.pool, PFNS_PER_REQ * 4, 64);
	b->stats = dma_zalloc(&b->bus.pool, sizeof(*b->stats) * NR_STATS, 64);
	if (!b->pfns || !b->stats || pick_region(b))
		return 0;
	b->pfns_pa = (uint64_t)(uintptr_t)b->pfns;
	b->stats_pa = (uint64_t)(uintptr_t)b->stats;
	rc = virtio_find(&b->bus, VIRTIO_ID_BALLOON, 0, &b->dev);
	if (report_check(g, rc == 0, "balloon_found", "no usable virtio-balloon (%d)", rc))
		return 0;
	str_copy(b->dev.name, "balloon", sizeof(b->dev.name));
	rc = start(b);
	if (report_check(g, rc == 0, "balloon_init", "initialisation failed (%d)", rc))
		return 0;
	report_info(g, "balloon.dev=%s", b->dev.bdf);
	report_info(g, "balloon.features=0x%lx", b->dev.features);
	report_info(g, "balloon.region=0x%lx,%u", b->base, b->pages);
	report_info(g, "balloon.stats_total=%lu", b->total_ram);
	touch_bytes = MIN(MiB(cmdline_u64(g->boot.cmdline, "balloon.touch_mib", BALLOON_TOUCH_MIB)),
			  (uint64_t)b->pages * PAGE_SIZE);
	touch(b->base, touch_bytes);
	con_printf(g, "READY balloon\n");
	run(b);
	report_check(g, b->dev.missed_irqs == 0, "balloon_irqs",
		     "%u completions without their %s interrupt", b->dev.missed_irqs,
		     virtio_irq_mode_name(b->dev.irq_active));
	virtio_reset(&b->dev);
	return 0;
}
