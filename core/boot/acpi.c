#include "core/boot/acpi.h"
#include "core/boot/acpi_tables.h"
#include "core/guest_mem.h"
#include "core/layout.h"
#include "core/log.h"
#include "legacy/acpi_pm.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The DSDT compiled from core/boot/dsdt.asl, embedded by core/boot/acpi.cmake. */
extern const uint8_t dsdt_aml_start[];
extern const uint8_t dsdt_aml_end[];

#define WINDOW_SIZE (LAYOUT_ACPI_END - LAYOUT_ACPI_RSDP)

#define OEM_ID		 "CROSVM"
#define OEM_TABLE_ID	 "CROSVM  "
#define OEM_REVISION	 1
#define CREATOR_ID	 "CRVM"
#define CREATOR_REVISION 1

/* x86 physical addresses have at most 52 bits. */
#define MAX_PHYS_ADDR (1ULL << 52)

#define RESET_PORT  0xcf9
#define RESET_VALUE 0x06

/* The tables are laid out in a host buffer the size of the window, then copied in once. */
struct tbuf {
	uint8_t *p;
	uint64_t used;
};

static int place(struct tbuf *b, uint64_t len, uint64_t align, uint64_t *gpa, void **ptr)
{
	uint64_t off = ALIGN_UP(b->used, align);

	if (off > WINDOW_SIZE || len > WINDOW_SIZE - off)
		return -ENOSPC;
	b->used = off + len;
	*gpa = LAYOUT_ACPI_RSDP + off;
	*ptr = b->p + off;
	return 0;
}

static uint8_t sum8(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *b++);
	return s;
}

static void header_init(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, OEM_ID, 6);
	memcpy(h->oem_table_id, OEM_TABLE_ID, 8);
	h->oem_revision = OEM_REVISION;
	memcpy(h->creator_id, CREATOR_ID, 4);
	h->creator_revision = CREATOR_REVISION;
}

static void header_seal(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = (uint8_t)-sum8(h, h->length);
}

static struct acpi_gas io_gas(uint64_t port, unsigned len, uint8_t access)
{
	return (struct acpi_gas){.space_id = ACPI_GAS_SPACE_IO,
				 .bit_width = (uint8_t)(len * 8),
				 .access_size = access,
				 .address = port};
}

static int check_params(const struct guest_mem *m, const struct acpi_params *p,
			const struct logger *lg)
{
	uint64_t ram_end = MAX(guest_mem_end(m), LAYOUT_4G);

	if (p->nr_cpus < 1 || p->nr_cpus > ACPI_MAX_CPUS) {
		log_err(lg, "acpi: %u vCPUs cannot be described (1..%u with xAPIC ids)", p->nr_cpus,
			ACPI_MAX_CPUS);
		return -EINVAL;
	}
	if (!p->mmio64_size || range_wraps(p->mmio64_base, p->mmio64_size) ||
	    !IS_ALIGNED(p->mmio64_base | p->mmio64_size, 4096) || p->mmio64_base < ram_end ||
	    p->mmio64_base + p->mmio64_size > MAX_PHYS_ADDR) {
		log_err(lg,
			"acpi: 64-bit PCI window [0x%llx, +0x%llx) must be page aligned, non-empty "
			"and lie between the end of RAM (0x%llx) and 2^52",
			(unsigned long long)p->mmio64_base, (unsigned long long)p->mmio64_size,
			(unsigned long long)ram_end);
		return -EINVAL;
	}
	if (!guest_mem_valid(m, LAYOUT_ACPI_RSDP, WINDOW_SIZE)) {
		log_err(lg, "acpi: the table window [0x%llx, 0x%llx) is not guest RAM",
			(unsigned long long)LAYOUT_ACPI_RSDP, (unsigned long long)LAYOUT_ACPI_END);
		return -EFAULT;
	}
	return 0;
}

static int find_qword(const uint8_t *aml, size_t len, uint64_t v, size_t *at)
{
	unsigned found = 0;

	for (size_t i = 0; len >= 8 && i <= len - 8; i++) {
		uint64_t cur;

		memcpy(&cur, aml + i, 8);
		if (cur != v)
			continue;
		found++;
		*at = i;
	}
	if (!found)
		return -ENOENT;
	return found == 1 ? 0 : -EEXIST;
}

int acpi_patch_qwords(uint8_t *aml, size_t len, const struct acpi_patch *patches, unsigned nr)
{
	size_t at[8];
	int ret;

	if (nr > ARRAY_SIZE(at))
		return -E2BIG;
	for (unsigned i = 0; i < nr; i++) {
		ret = find_qword(aml, len, patches[i].placeholder, &at[i]);
		if (ret < 0)
			return ret;
		for (unsigned j = 0; j < i; j++)
			if (ranges_overlap(at[i], 8, at[j], 8))
				return -EEXIST;
	}
	for (unsigned i = 0; i < nr; i++)
		memcpy(aml + at[i], &patches[i].value, 8);
	return 0;
}

static int build_dsdt(struct tbuf *b, const struct acpi_params *p, uint64_t *gpa,
		      const struct logger *lg)
{
	/* Two symbols, two objects to C: their distance is taken as integers. */
	size_t len = (size_t)((uintptr_t)dsdt_aml_end - (uintptr_t)dsdt_aml_start);
	const struct acpi_patch patches[] = {
		{ACPI_DSDT_PH_FEAT,
		 (p->has_rtc ? ACPI_DSDT_FEAT_RTC : 0) | (p->has_i8042 ? ACPI_DSDT_FEAT_I8042 : 0)},
		{ACPI_DSDT_PH_MMIO64_MIN, p->mmio64_base},
		{ACPI_DSDT_PH_MMIO64_MAX, p->mmio64_base + p->mmio64_size - 1},
		{ACPI_DSDT_PH_MMIO64_LEN, p->mmio64_size},
	};
	struct acpi_header *h;
	void *mem;
	int ret;

	if (len < sizeof(*h)) {
		log_err(lg, "acpi: the embedded DSDT is truncated");
		return -EINVAL;
	}
	ret = place(b, len, 16, gpa, &mem);
	if (ret < 0)
		return ret;
	h = mem;
	memcpy(h, dsdt_aml_start, len);
	if (memcmp(h->signature, "DSDT", 4) != 0 || h->length != len) {
		log_err(lg, "acpi: the embedded DSDT is malformed");
		return -EINVAL;
	}
	ret = acpi_patch_qwords((uint8_t *)h, len, patches, ARRAY_SIZE(patches));
	if (ret < 0) {
		log_err(lg, "acpi: a DSDT placeholder is missing or not unique: %s",
			strerror(-ret));
		return ret;
	}
	header_seal(h);
	return 0;
}

static int build_facs(struct tbuf *b, uint64_t *gpa)
{
	struct acpi_facs *f;
	void *mem;
	int ret;

	ret = place(b, sizeof(*f), ACPI_FACS_ALIGN, gpa, &mem);
	if (ret < 0)
		return ret;
	f = mem;
	memcpy(f->signature, "FACS", 4);
	f->length = sizeof(*f);
	f->version = ACPI_FACS_VERSION;
	return 0;
}

static int build_fadt(struct tbuf *b, const struct acpi_params *p, uint64_t dsdt, uint64_t facs,
		      uint64_t *gpa)
{
	const uint64_t pm = LAYOUT_PORT_ACPI_PM;
	struct acpi_fadt *f;
	void *mem;
	int ret;

	ret = place(b, sizeof(*f), 16, gpa, &mem);
	if (ret < 0)
		return ret;
	f = mem;
	header_init(&f->h, "FACP", sizeof(*f), ACPI_FADT_REVISION);
	/* At most one of each 32-bit/64-bit address pair may be set; the 64-bit ones are. */
	f->x_firmware_ctrl = facs;
	f->x_dsdt = dsdt;
	f->sci_int = LAYOUT_IRQ_SCI;
	/* No SMI_CMD: the hardware is always in ACPI mode (SCI_EN reads 1). */
	f->pm1a_evt_blk = (uint32_t)(pm + ACPI_PM_PM1_EVT_OFF);
	f->pm1a_cnt_blk = (uint32_t)(pm + ACPI_PM_PM1_CNT_OFF);
	f->gpe0_blk = (uint32_t)(pm + ACPI_PM_GPE0_OFF);
	f->pm1_evt_len = ACPI_PM_PM1_EVT_LEN;
	f->pm1_cnt_len = ACPI_PM_PM1_CNT_LEN;
	f->gpe0_blk_len = ACPI_PM_GPE0_LEN;
	f->x_pm1a_evt_blk =
		io_gas(pm + ACPI_PM_PM1_EVT_OFF, ACPI_PM_PM1_EVT_LEN, ACPI_GAS_ACCESS_WORD);
	f->x_pm1a_cnt_blk =
		io_gas(pm + ACPI_PM_PM1_CNT_OFF, ACPI_PM_PM1_CNT_LEN, ACPI_GAS_ACCESS_WORD);
	f->x_gpe0_blk = io_gas(pm + ACPI_PM_GPE0_OFF, ACPI_PM_GPE0_LEN, ACPI_GAS_ACCESS_BYTE);
	f->p_lvl2_lat = ACPI_FADT_NO_C2_LATENCY;
	f->p_lvl3_lat = ACPI_FADT_NO_C3_LATENCY;
	/*
	 * CENTURY stays 0: Linux would otherwise trust CMOS register 0x32 for the century,
	 * which the CMOS device need not implement.
	 */
	f->iapc_boot_arch = ACPI_IAPC_LEGACY_DEVICES | ACPI_IAPC_VGA_NOT_PRESENT |
			    (p->has_i8042 ? ACPI_IAPC_8042 : 0) |
			    (p->has_rtc ? 0 : ACPI_IAPC_CMOS_RTC_ABSENT);
	/* PWR_BUTTON and SLP_BUTTON clear: both buttons are fixed features of PM1. */
	f->flags = ACPI_FADT_F_WBINVD | ACPI_FADT_F_PROC_C1 | ACPI_FADT_F_FIX_RTC |
		   ACPI_FADT_F_RESET_REG_SUP;
	f->reset_reg = io_gas(RESET_PORT, 1, ACPI_GAS_ACCESS_BYTE);
	f->reset_value = RESET_VALUE;
	f->minor_version = ACPI_FADT_MINOR_REVISION;
	memcpy(f->hypervisor_vendor_id, "CROSVM\0\0", 8);
	header_seal(&f->h);
	return 0;
}

/*
 * KVM's default GSI routing sends GSI i to IOAPIC pin i (and PIC pin i below 16), and its
 * PIT raises GSI 0. So IRQ 0 needs no override: Linux then maps ISA IRQ 0 to pin 0 (as for
 * every ISA IRQ without an override, mp_config_acpi_legacy_irqs) and check_timer() finds
 * the timer there. Only the SCI gets an override, for its level trigger.
 */
static int build_madt(struct tbuf *b, const struct acpi_params *p, uint64_t *gpa)
{
	size_t len = sizeof(struct acpi_madt) + p->nr_cpus * sizeof(struct acpi_madt_lapic) +
		     sizeof(struct acpi_madt_ioapic) + sizeof(struct acpi_madt_iso) +
		     sizeof(struct acpi_madt_lapic_nmi);
	struct acpi_madt_lapic_nmi *nmi;
	struct acpi_madt_ioapic *io;
	struct acpi_madt_lapic *lapic;
	struct acpi_madt_iso *iso;
	struct acpi_madt *t;
	void *mem;
	int ret;

	ret = place(b, len, 16, gpa, &mem);
	if (ret < 0)
		return ret;
	t = mem;
	header_init(&t->h, "APIC", (uint32_t)len, ACPI_MADT_REVISION);
	t->lapic_address = (uint32_t)LAYOUT_LAPIC;
	t->flags = ACPI_MADT_PCAT_COMPAT;
	lapic = (struct acpi_madt_lapic *)(t + 1);
	for (unsigned i = 0; i < p->nr_cpus; i++)
		lapic[i] = (struct acpi_madt_lapic){.type = ACPI_MADT_TYPE_LAPIC,
						    .length = sizeof(*lapic),
						    .processor_uid = (uint8_t)i,
						    .apic_id = (uint8_t)i,
						    .flags = ACPI_MADT_LAPIC_ENABLED};
	/*
	 * The IOAPIC id is 0, which is what KVM's IOAPIC ID register holds after reset, so the
	 * table and the hardware agree. IOAPIC and LAPIC ids are separate name spaces since
	 * the xAPIC; crosvm and QEMU use 0 as well.
	 */
	io = (struct acpi_madt_ioapic *)(lapic + p->nr_cpus);
	*io = (struct acpi_madt_ioapic){.type = ACPI_MADT_TYPE_IOAPIC,
					.length = sizeof(*io),
					.ioapic_id = ACPI_IOAPIC_ID,
					.address = (uint32_t)LAYOUT_IOAPIC,
					.gsi_base = 0};
	iso = (struct acpi_madt_iso *)(io + 1);
	*iso = (struct acpi_madt_iso){.type = ACPI_MADT_TYPE_ISO,
				      .length = sizeof(*iso),
				      .bus = 0,
				      .source = LAYOUT_IRQ_SCI,
				      .gsi = LAYOUT_IRQ_SCI,
				      .flags = ACPI_MPS_POLARITY_HIGH | ACPI_MPS_TRIGGER_LEVEL};
	/* LINT1 of every CPU is the NMI input, as on a PC. */
	nmi = (struct acpi_madt_lapic_nmi *)(iso + 1);
	*nmi = (struct acpi_madt_lapic_nmi){.type = ACPI_MADT_TYPE_LAPIC_NMI,
					    .length = sizeof(*nmi),
					    .processor_uid = ACPI_MADT_ALL_PROCESSORS,
					    .flags = 0,
					    .lint = 1};
	header_seal(&t->h);
	return 0;
}

static int build_mcfg(struct tbuf *b, uint64_t *gpa)
{
	size_t len = sizeof(struct acpi_mcfg) + sizeof(struct acpi_mcfg_alloc);
	struct acpi_mcfg_alloc *a;
	struct acpi_mcfg *t;
	void *mem;
	int ret;

	_Static_assert(LAYOUT_PCIE_ECAM_SIZE == (ACPI_PCI_LAST_BUS + 1) * MiB(1),
		       "ECAM covers the bus range");
	ret = place(b, len, 16, gpa, &mem);
	if (ret < 0)
		return ret;
	t = mem;
	header_init(&t->h, "MCFG", (uint32_t)len, 1);
	a = (struct acpi_mcfg_alloc *)(t + 1);
	*a = (struct acpi_mcfg_alloc){.base = LAYOUT_PCIE_ECAM,
				      .segment = 0,
				      .start_bus = 0,
				      .end_bus = ACPI_PCI_LAST_BUS};
	header_seal(&t->h);
	return 0;
}

static int build_xsdt(struct tbuf *b, const uint64_t *tables, unsigned nr, uint64_t *gpa)
{
	size_t len = sizeof(struct acpi_xsdt) + nr * sizeof(uint64_t);
	struct acpi_xsdt *t;
	void *mem;
	int ret;

	ret = place(b, len, 16, gpa, &mem);
	if (ret < 0)
		return ret;
	t = mem;
	header_init(&t->h, "XSDT", (uint32_t)len, 1);
	memcpy(t->entry, tables, nr * sizeof(uint64_t));
	header_seal(&t->h);
	return 0;
}

static void build_rsdp(struct acpi_rsdp *r, uint64_t xsdt)
{
	memcpy(r->signature, ACPI_RSDP_SIGNATURE, 8);
	memcpy(r->oem_id, OEM_ID, 6);
	r->revision = 2;
	r->length = sizeof(*r);
	r->xsdt_address = xsdt;
	r->checksum = (uint8_t)-sum8(r, ACPI_RSDP_V1_LEN);
	r->ext_checksum = (uint8_t)-sum8(r, sizeof(*r));
}

int acpi_build(const struct guest_mem *m, const struct acpi_params *p, uint64_t *rsdp,
	       const struct logger *lg)
{
	uint64_t rsdp_gpa, facs, dsdt, xsdt, tables[3];
	struct tbuf b = {0};
	struct acpi_rsdp *r;
	void *mem;
	int ret;

	if (!m || !p || !rsdp)
		return -EINVAL;
	ret = check_params(m, p, lg);
	if (ret < 0)
		return ret;
	b.p = calloc(1, WINDOW_SIZE);
	if (!b.p)
		return -ENOMEM;
	/* The RSDP comes first: Linux scans 0xe0000..0xfffff for it when not told. */
	ret = place(&b, sizeof(*r), 16, &rsdp_gpa, &mem);
	if (ret < 0)
		goto out;
	r = mem;
	ret = build_facs(&b, &facs);
	if (ret < 0)
		goto out;
	ret = build_dsdt(&b, p, &dsdt, lg);
	if (ret < 0)
		goto out;
	ret = build_fadt(&b, p, dsdt, facs, &tables[0]);
	if (ret < 0)
		goto out;
	ret = build_madt(&b, p, &tables[1]);
	if (ret < 0)
		goto out;
	ret = build_mcfg(&b, &tables[2]);
	if (ret < 0)
		goto out;
	ret = build_xsdt(&b, tables, ARRAY_SIZE(tables), &xsdt);
	if (ret < 0)
		goto out;
	build_rsdp(r, xsdt);
	ret = guest_mem_write(m, LAYOUT_ACPI_RSDP, b.p, WINDOW_SIZE);
	if (ret < 0)
		goto out;
	log_debug(lg, "acpi: %llu bytes of tables at 0x%llx, %u vCPUs, 64-bit window 0x%llx+0x%llx",
		  (unsigned long long)b.used, (unsigned long long)rsdp_gpa, p->nr_cpus,
		  (unsigned long long)p->mmio64_base, (unsigned long long)p->mmio64_size);
	*rsdp = rsdp_gpa;
out:
	if (ret == -ENOSPC)
		log_err(lg, "acpi: the tables do not fit in [0x%llx, 0x%llx)",
			(unsigned long long)LAYOUT_ACPI_RSDP, (unsigned long long)LAYOUT_ACPI_END);
	free(b.p);
	return ret;
}

/* Limits for reading tables back from guest memory, which the guest may have rewritten. */
#define DUMP_MAX_TABLE	 MiB(1)
#define DUMP_MAX_ENTRIES 64

static bool sig_is_name(const char *sig)
{
	for (unsigned i = 0; i < 4; i++) {
		char c = sig[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

static int write_file(int dfd, const char *name, const void *buf, size_t len)
{
	int fd, ret;

	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	ret = write_full(fd, buf, len);
	close(fd);
	return ret;
}

/*
 * Writes the table at gpa to <SIG>.dat and hands back its bytes (*out, malloc'd). The FACS
 * has no full header but keeps the signature and length where the others have them.
 */
static int dump_table(const struct guest_mem *m, int dfd, uint64_t gpa, uint8_t **out,
		      uint32_t *len)
{
	struct acpi_header h;
	char name[16];
	uint8_t *buf;
	int ret;

	ret = guest_mem_read(m, gpa, &h, sizeof(h));
	if (ret < 0)
		return ret;
	if (!sig_is_name(h.signature) || h.length < sizeof(h) || h.length > DUMP_MAX_TABLE)
		return -EINVAL;
	buf = malloc(h.length);
	if (!buf)
		return -ENOMEM;
	ret = guest_mem_read(m, gpa, buf, h.length);
	if (ret < 0)
		goto err_free;
	snprintf(name, sizeof(name), "%.4s.dat", h.signature);
	ret = write_file(dfd, name, buf, h.length);
	if (ret < 0)
		goto err_free;
	*out = buf;
	*len = h.length;
	return 0;
err_free:
	free(buf);
	return ret;
}

static int dump_at(const struct guest_mem *m, int dfd, uint64_t gpa)
{
	uint8_t *buf;
	uint32_t len;
	int ret;

	if (!gpa)
		return 0;
	ret = dump_table(m, dfd, gpa, &buf, &len);
	if (ret == 0)
		free(buf);
	return ret;
}

/* The DSDT and FACS hang off the FADT; a 64-bit address wins over its 32-bit twin. */
static int dump_fadt_refs(const struct guest_mem *m, int dfd, const uint8_t *fadt, uint32_t len)
{
	struct acpi_fadt f = {0};
	int ret;

	memcpy(&f, fadt, MIN(len, sizeof(f)));
	ret = dump_at(m, dfd, f.x_dsdt ? f.x_dsdt : f.dsdt);
	if (ret < 0)
		return ret;
	return dump_at(m, dfd, f.x_firmware_ctrl ? f.x_firmware_ctrl : f.firmware_ctrl);
}

int acpi_dump(const struct guest_mem *m, uint64_t rsdp, const char *dir, const struct logger *lg)
{
	uint8_t *xsdt = NULL, *t;
	uint32_t xlen, tlen;
	struct acpi_rsdp r;
	int dfd = -1, ret;
	unsigned n;

	if (!m || !dir)
		return -EINVAL;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		ret = -errno;
		goto out;
	}
	ret = guest_mem_read(m, rsdp, &r, sizeof(r));
	if (ret < 0)
		goto out;
	ret = -EINVAL;
	if (memcmp(r.signature, ACPI_RSDP_SIGNATURE, 8) != 0 || r.revision < 2 || !r.xsdt_address)
		goto out;
	ret = write_file(dfd, "RSDP.dat", &r, sizeof(r));
	if (ret < 0)
		goto out;
	ret = dump_table(m, dfd, r.xsdt_address, &xsdt, &xlen);
	if (ret < 0)
		goto out;
	ret = -EINVAL;
	if (memcmp(xsdt, "XSDT", 4) != 0 || (xlen - sizeof(struct acpi_header)) % 8)
		goto out;
	n = (unsigned)MIN((xlen - sizeof(struct acpi_header)) / 8, DUMP_MAX_ENTRIES);
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa;

		memcpy(&gpa, xsdt + sizeof(struct acpi_header) + i * 8, 8);
		ret = dump_table(m, dfd, gpa, &t, &tlen);
		if (ret < 0)
			goto out;
		if (!memcmp(t, "FACP", 4))
			ret = dump_fadt_refs(m, dfd, t, tlen);
		free(t);
		if (ret < 0)
			goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		log_err(lg, "acpi: cannot dump the tables at 0x%llx to %s: %s",
			(unsigned long long)rsdp, dir, strerror(-ret));
	free(xsdt);
	close_fd(&dfd);
	return ret;
}
