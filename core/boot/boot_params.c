/* The zero page and the data it points to: command line and setup_data list. */
#include "core/boot/boot_params.h"
#include "core/layout.h"

#include <string.h>

#define SYNTH_VERSION	       0x020f
#define SYNTH_KERNEL_ALIGNMENT MiB(16)
#define VID_MODE_NORMAL	       0xffff
#define SETUP_DATA_ALIGN       8

/* An ELF kernel has no setup header; give it the one a 2.15 bzImage would have. */
static void synth_header(const struct kernel_info *ki, struct setup_header *h)
{
	*h = (struct setup_header){
		.boot_flag = BOOT_FLAG_MAGIC,
		.header = BOOT_HDRS_MAGIC,
		.version = SYNTH_VERSION,
		.loadflags = BOOT_LOADED_HIGH,
		.kernel_alignment = SYNTH_KERNEL_ALIGNMENT,
		.initrd_addr_max = (uint32_t)MIN(ki->initrd_addr_max, UINT32_MAX),
		.cmdline_size = ki->cmdline_size,
	};
}

/* Writes the command line (with its NUL) at LAYOUT_CMDLINE. */
static int write_cmdline(const struct guest_mem *m, const char *cmdline, uint32_t limit,
			 const struct logger *lg)
{
	size_t len = cmdline ? strlen(cmdline) : 0;
	uint64_t max = MIN((uint64_t)limit, LAYOUT_CMDLINE_MAX - 1);

	if (len > max) {
		log_err(lg, "kernel command line is %zu bytes, the kernel accepts at most %llu",
			len, (unsigned long long)max);
		return -E2BIG;
	}
	return guest_mem_write(m, LAYOUT_CMDLINE, cmdline ? cmdline : "", len + 1);
}

struct sd_chain {
	const struct guest_mem *m;
	uint64_t next;	    /* where the next entry goes */
	uint64_t prev_link; /* gpa of the previous entry's `next` field; 0: the header's */
	uint64_t head;	    /* first entry, 0 if none */
};

static int sd_add(struct sd_chain *c, uint32_t type, const void *data, size_t len,
		  const struct logger *lg)
{
	struct setup_data sd = {.next = 0, .type = type, .len = (uint32_t)len};
	uint64_t at = c->next;
	int ret;

	if (len > UINT32_MAX || len > LAYOUT_SETUP_DATA_END - at ||
	    sizeof(sd) > LAYOUT_SETUP_DATA_END - at - len) {
		log_err(lg,
			"setup_data: type %u entry of %zu bytes does not fit in [0x%llx, "
			"0x%llx)",
			type, len, (unsigned long long)LAYOUT_SETUP_DATA,
			(unsigned long long)LAYOUT_SETUP_DATA_END);
		return -E2BIG;
	}
	ret = guest_mem_write(c->m, at, &sd, sizeof(sd));
	if (!ret)
		ret = guest_mem_write(c->m, at + sizeof(sd), data, len);
	if (!ret && c->prev_link)
		ret = guest_mem_write(c->m, c->prev_link, &at, sizeof(at));
	if (ret < 0)
		return ret;
	if (!c->head)
		c->head = at;
	c->prev_link = at + offsetof(struct setup_data, next);
	c->next = ALIGN_UP(at + sizeof(sd) + len, SETUP_DATA_ALIGN);
	return 0;
}

static int write_setup_data(const struct guest_mem *m, const struct boot_config *bc, uint64_t *head,
			    const struct logger *lg)
{
	struct sd_chain c = {.m = m, .next = LAYOUT_SETUP_DATA};
	int ret;

	if (bc->dtb && bc->dtb_size) {
		ret = sd_add(&c, SETUP_DTB, bc->dtb, bc->dtb_size, lg);
		if (ret < 0)
			return ret;
	}
	if (bc->rng_seed && bc->rng_seed_size) {
		ret = sd_add(&c, SETUP_RNG_SEED, bc->rng_seed, bc->rng_seed_size, lg);
		if (ret < 0)
			return ret;
	}
	*head = c.head;
	return 0;
}

int boot_params_write(const struct guest_mem *m, const struct kernel_info *ki,
		      const struct boot_config *bc, const struct logger *lg)
{
	struct boot_params bp = {0};
	struct e820_entry e820[E820_MAX_ENTRIES];
	unsigned nr;
	uint64_t sd_head;
	int ret;

	if (ki->has_setup_header)
		bp.hdr = ki->hdr;
	else
		synth_header(ki, &bp.hdr);
	ret = write_cmdline(m, bc->cmdline, ki->cmdline_size, lg);
	if (ret < 0)
		return ret;
	if (bc->initrd_size && range_wraps(bc->initrd_gpa, bc->initrd_size))
		return -EINVAL;
	ret = e820_build(m, e820, E820_MAX_ENTRIES, &nr);
	if (ret < 0) {
		log_err(lg, "zero page: cannot build the e820 map: %s", strerror(-ret));
		return ret;
	}
	ret = write_setup_data(m, bc, &sd_head, lg);
	if (ret < 0)
		return ret;

	bp.hdr.type_of_loader = BOOT_TYPE_OF_LOADER_UNDEFINED;
	/* The 64-bit entry skips the real-mode setup code, so it has no heap to announce. */
	bp.hdr.loadflags &= (uint8_t)~BOOT_CAN_USE_HEAP;
	bp.hdr.heap_end_ptr = 0;
	bp.hdr.vid_mode = VID_MODE_NORMAL;
	bp.hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp.ext_cmd_line_ptr = 0;
	bp.hdr.ramdisk_image = (uint32_t)bc->initrd_gpa;
	bp.ext_ramdisk_image = (uint32_t)(bc->initrd_gpa >> 32);
	bp.hdr.ramdisk_size = (uint32_t)bc->initrd_size;
	bp.ext_ramdisk_size = (uint32_t)(bc->initrd_size >> 32);
	if (!bc->initrd_size) {
		bp.hdr.ramdisk_image = bp.hdr.ramdisk_size = 0;
		bp.ext_ramdisk_image = bp.ext_ramdisk_size = 0;
	}
	bp.hdr.setup_data = sd_head;
	bp.acpi_rsdp_addr = bc->acpi_rsdp;
	bp.e820_entries = (uint8_t)nr;
	memcpy(bp.e820_table, e820, nr * sizeof(e820[0]));
	return guest_mem_write(m, LAYOUT_ZERO_PAGE, &bp, sizeof(bp));
}
