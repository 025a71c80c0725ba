#include "core/boot/acpi.h"
#include "core/boot/acpi_tables.h"
#include "core/guest_mem.h"
#include "core/layout.h"
#include "legacy/acpi_pm.h"
#include "test/unit/testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define WIN_START LAYOUT_ACPI_RSDP
#define WIN_END	  LAYOUT_ACPI_END

struct cfg {
	unsigned cpus;
	bool i8042, rtc;
	uint64_t ram;
};

/* RAM sizes put the 64-bit window at 4 GiB, 5 GiB and 17 GiB. */
static const struct cfg cfgs[] = {
	{1, false, false, MiB(256)}, {2, true, true, MiB(512)},	  {4, true, false, GiB(4)},
	{16, false, true, GiB(16)},  {255, true, true, MiB(128)},
};

/* The 64-bit window as the VMM computes it: the first 1 GiB boundary above RAM and 4 GiB. */
static void window_for(const struct guest_mem *m, uint64_t *base, uint64_t *size)
{
	*base = ALIGN_UP(MAX(guest_mem_end(m), LAYOUT_4G), GiB(1));
	*size = GiB(64);
}

static struct acpi_params params_for(const struct guest_mem *m, const struct cfg *c)
{
	struct acpi_params p = {.nr_cpus = c->cpus, .has_i8042 = c->i8042, .has_rtc = c->rtc};

	window_for(m, &p.mmio64_base, &p.mmio64_size);
	return p;
}

static uint8_t sum8(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *b++);
	return s;
}

static const uint8_t *gptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	void *p = NULL;

	ck_assert_msg(gpa >= WIN_START && gpa < WIN_END && len <= WIN_END - gpa,
		      "[0x%llx, +0x%llx) lies outside the ACPI window", (unsigned long long)gpa,
		      (unsigned long long)len);
	ck_assert_int_eq(guest_mem_ptr(m, gpa, len, &p), 0);
	return p;
}

/* Checks a table the way ACPICA does before using it: signature, length, checksum. */
static const uint8_t *table(const struct guest_mem *m, uint64_t gpa, const char *sig)
{
	const struct acpi_header *h = (const void *)gptr(m, gpa, sizeof(*h));
	uint32_t len = h->length;

	ck_assert_msg(!memcmp(h->signature, sig, 4), "expected %s at 0x%llx, found %.4s", sig,
		      (unsigned long long)gpa, h->signature);
	ck_assert_uint_ge(len, sizeof(*h));
	ck_assert_msg(sum8(gptr(m, gpa, len), len) == 0, "%s checksum", sig);
	ck_assert_uint_eq(gpa % 8, 0);
	return gptr(m, gpa, len);
}

struct found {
	uint64_t rsdp, xsdt, fadt, facs, dsdt, madt, mcfg;
};

/* Finds the RSDP as Linux does without a hint: 16-byte steps through 0xe0000..0xfffff. */
static uint64_t scan_rsdp(const struct guest_mem *m)
{
	for (uint64_t a = WIN_START; a < WIN_END; a += 16) {
		const uint8_t *p = gptr(m, a, 16);

		if (memcmp(p, ACPI_RSDP_SIGNATURE, 8) != 0 ||
		    a + sizeof(struct acpi_rsdp) > WIN_END)
			continue;
		if (sum8(gptr(m, a, ACPI_RSDP_V1_LEN), ACPI_RSDP_V1_LEN) == 0)
			return a;
	}
	return 0;
}

static void walk(const struct guest_mem *m, uint64_t rsdp, struct found *f)
{
	const struct acpi_rsdp *r = (const void *)gptr(m, rsdp, sizeof(*r));
	const struct acpi_header *x;
	const struct acpi_fadt *fadt;
	const struct acpi_facs *facs;
	unsigned n;

	memset(f, 0, sizeof(*f));
	f->rsdp = rsdp;
	ck_assert_uint_eq(scan_rsdp(m), rsdp);
	ck_assert(!memcmp(r->signature, ACPI_RSDP_SIGNATURE, 8));
	ck_assert(!memcmp(r->oem_id, "CROSVM", 6));
	ck_assert_uint_eq(r->revision, 2);
	ck_assert_uint_eq(r->length, sizeof(*r));
	ck_assert_uint_eq(sum8(r, ACPI_RSDP_V1_LEN), 0);
	ck_assert_uint_eq(sum8(r, sizeof(*r)), 0);

	f->xsdt = r->xsdt_address;
	x = (const void *)table(m, f->xsdt, "XSDT");
	ck_assert_uint_eq((x->length - sizeof(*x)) % 8, 0);
	n = (x->length - sizeof(*x)) / 8;
	ck_assert_uint_eq(n, 3);
	for (unsigned i = 0; i < n; i++) {
		uint64_t a;
		const struct acpi_header *h;

		memcpy(&a, (const uint8_t *)x + sizeof(*x) + 8 * i, 8);
		h = (const void *)gptr(m, a, sizeof(*h));
		if (!memcmp(h->signature, "FACP", 4)) {
			ck_assert_uint_eq(f->fadt, 0);
			f->fadt = a;
		} else if (!memcmp(h->signature, "APIC", 4)) {
			ck_assert_uint_eq(f->madt, 0);
			f->madt = a;
		} else if (!memcmp(h->signature, "MCFG", 4)) {
			ck_assert_uint_eq(f->mcfg, 0);
			f->mcfg = a;
		} else {
			ck_abort_msg("unexpected table %.4s in the XSDT", h->signature);
		}
	}
	ck_assert(f->fadt && f->madt && f->mcfg);

	fadt = (const void *)table(m, f->fadt, "FACP");
	ck_assert_uint_eq(fadt->h.length, sizeof(*fadt));
	ck_assert_uint_eq(fadt->h.revision, 6);
	/* At most one of each 32/64-bit pair may be set (ACPI 6.5, 5.2.9). */
	ck_assert_uint_eq(fadt->firmware_ctrl, 0);
	ck_assert_uint_eq(fadt->dsdt, 0);
	f->facs = fadt->x_firmware_ctrl;
	f->dsdt = fadt->x_dsdt;

	facs = (const void *)gptr(m, f->facs, sizeof(*facs));
	ck_assert(!memcmp(facs->signature, "FACS", 4));
	ck_assert_uint_eq(facs->length, 64);
	ck_assert_uint_eq(f->facs % 64, 0);
	table(m, f->dsdt, "DSDT");
	table(m, f->madt, "APIC");
	table(m, f->mcfg, "MCFG");
}

static void setup_vm(const struct cfg *c, struct guest_mem *m, struct acpi_params *p,
		     uint64_t *rsdp)
{
	ck_assert_int_eq(guest_mem_create(m, c->ram), 0);
	*p = params_for(m, c);
	ck_assert_int_eq(acpi_build(m, p, rsdp, NULL), 0);
	ck_assert_uint_eq(*rsdp, LAYOUT_ACPI_RSDP);
}

START_TEST(test_walk_like_linux)
{
	const struct cfg *c = &cfgs[_i];
	struct acpi_params p;
	struct guest_mem m;
	struct found f;
	uint64_t rsdp;

	setup_vm(c, &m, &p, &rsdp);
	walk(&m, rsdp, &f);
	guest_mem_destroy(&m);
}
END_TEST

static struct acpi_gas gas_io(uint64_t port, unsigned bits, unsigned access)
{
	return (struct acpi_gas){.space_id = ACPI_GAS_SPACE_IO,
				 .bit_width = (uint8_t)bits,
				 .access_size = (uint8_t)access,
				 .address = port};
}

static void assert_gas(struct acpi_gas got, struct acpi_gas want)
{
	ck_assert_uint_eq(got.space_id, want.space_id);
	ck_assert_uint_eq(got.bit_width, want.bit_width);
	ck_assert_uint_eq(got.bit_offset, want.bit_offset);
	ck_assert_uint_eq(got.access_size, want.access_size);
	ck_assert_uint_eq(got.address, want.address);
}

START_TEST(test_fadt)
{
	const struct cfg *c = &cfgs[_i];
	const struct acpi_fadt *f;
	struct acpi_params p;
	struct guest_mem m;
	struct found t;
	uint64_t rsdp;
	uint16_t boot;

	setup_vm(c, &m, &p, &rsdp);
	walk(&m, rsdp, &t);
	f = (const void *)table(&m, t.fadt, "FACP");
	ck_assert_uint_eq(f->minor_version, ACPI_FADT_MINOR_REVISION);
	ck_assert_uint_eq(f->sci_int, LAYOUT_IRQ_SCI);
	ck_assert_uint_eq(f->smi_cmd, 0);
	/* The legacy block fields and the GAS describe the same registers. */
	ck_assert_uint_eq(f->pm1a_evt_blk, LAYOUT_PORT_ACPI_PM);
	ck_assert_uint_eq(f->pm1_evt_len, 4);
	ck_assert_uint_eq(f->pm1a_cnt_blk, LAYOUT_PORT_ACPI_PM + 4);
	ck_assert_uint_eq(f->pm1_cnt_len, 2);
	ck_assert_uint_eq(f->gpe0_blk, LAYOUT_PORT_ACPI_PM + 8);
	ck_assert_uint_eq(f->gpe0_blk_len, 16);
	ck_assert_uint_eq(f->pm_tmr_blk, 0);
	ck_assert_uint_eq(f->pm_tmr_len, 0);
	ck_assert_uint_eq(f->pm1b_evt_blk | f->pm1b_cnt_blk | f->pm2_cnt_blk | f->gpe1_blk, 0);
	assert_gas(f->x_pm1a_evt_blk, gas_io(LAYOUT_PORT_ACPI_PM, 32, ACPI_GAS_ACCESS_WORD));
	assert_gas(f->x_pm1a_cnt_blk, gas_io(LAYOUT_PORT_ACPI_PM + 4, 16, ACPI_GAS_ACCESS_WORD));
	assert_gas(f->x_gpe0_blk, gas_io(LAYOUT_PORT_ACPI_PM + 8, 128, ACPI_GAS_ACCESS_BYTE));
	ck_assert_uint_eq(f->x_pm_tmr_blk.address, 0);
	/* Fixed-feature buttons, reset through 0xcf9. */
	ck_assert_uint_eq(f->flags & (ACPI_FADT_F_PWR_BUTTON | ACPI_FADT_F_SLP_BUTTON), 0);
	ck_assert_uint_eq(f->flags & ACPI_FADT_F_HW_REDUCED, 0);
	ck_assert(f->flags & ACPI_FADT_F_RESET_REG_SUP);
	assert_gas(f->reset_reg, gas_io(0xcf9, 8, ACPI_GAS_ACCESS_BYTE));
	ck_assert_uint_eq(f->reset_value, 6);
	boot = f->iapc_boot_arch;
	ck_assert(boot & ACPI_IAPC_LEGACY_DEVICES);
	ck_assert(boot & ACPI_IAPC_VGA_NOT_PRESENT);
	ck_assert(!(boot & ACPI_IAPC_MSI_NOT_SUPP));
	ck_assert_int_eq(!!(boot & ACPI_IAPC_8042), c->i8042);
	ck_assert_int_eq(!!(boot & ACPI_IAPC_CMOS_RTC_ABSENT), !c->rtc);
	ck_assert(!memcmp(f->hypervisor_vendor_id, "CROSVM\0\0", 8));
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(test_madt)
{
	const struct cfg *c = &cfgs[_i];
	const struct acpi_madt *t;
	const uint8_t *p, *end;
	uint8_t apic_seen[256] = {0}, uid_seen[256] = {0};
	unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;
	struct acpi_params prm;
	struct guest_mem m;
	struct found f;
	uint64_t rsdp;

	setup_vm(c, &m, &prm, &rsdp);
	walk(&m, rsdp, &f);
	t = (const void *)table(&m, f.madt, "APIC");
	ck_assert_uint_eq(t->lapic_address, LAYOUT_LAPIC);
	ck_assert(t->flags & ACPI_MADT_PCAT_COMPAT);
	p = (const uint8_t *)(t + 1);
	end = (const uint8_t *)t + t->h.length;
	while (p < end) {
		ck_assert_int_ge(end - p, 2);
		ck_assert_uint_ge(p[1], 2);
		ck_assert_int_le(p[1], end - p);
		switch (p[0]) {
		case ACPI_MADT_TYPE_LAPIC: {
			const struct acpi_madt_lapic *l = (const void *)p;

			ck_assert_uint_eq(l->length, sizeof(*l));
			ck_assert(l->flags & ACPI_MADT_LAPIC_ENABLED);
			ck_assert_uint_lt(l->apic_id, 0xff);
			ck_assert(!apic_seen[l->apic_id]++);
			ck_assert(!uid_seen[l->processor_uid]++);
			lapics++;
			break;
		}
		case ACPI_MADT_TYPE_IOAPIC: {
			const struct acpi_madt_ioapic *io = (const void *)p;

			ck_assert_uint_eq(io->length, sizeof(*io));
			ck_assert_uint_eq(io->address, LAYOUT_IOAPIC);
			ck_assert_uint_eq(io->gsi_base, 0);
			ck_assert_uint_eq(io->ioapic_id, ACPI_IOAPIC_ID);
			ioapics++;
			break;
		}
		case ACPI_MADT_TYPE_ISO: {
			const struct acpi_madt_iso *iso = (const void *)p;

			ck_assert_uint_eq(iso->length, sizeof(*iso));
			ck_assert_uint_eq(iso->bus, 0);
			/* Identity routing: only the SCI needs an override, for its trigger. */
			ck_assert_uint_eq(iso->source, LAYOUT_IRQ_SCI);
			ck_assert_uint_eq(iso->gsi, LAYOUT_IRQ_SCI);
			ck_assert_uint_eq(iso->flags,
					  ACPI_MPS_TRIGGER_LEVEL | ACPI_MPS_POLARITY_HIGH);
			isos++;
			break;
		}
		case ACPI_MADT_TYPE_LAPIC_NMI: {
			const struct acpi_madt_lapic_nmi *nmi = (const void *)p;

			ck_assert_uint_eq(nmi->length, sizeof(*nmi));
			ck_assert_uint_eq(nmi->processor_uid, ACPI_MADT_ALL_PROCESSORS);
			ck_assert_uint_eq(nmi->lint, 1);
			nmis++;
			break;
		}
		default:
			ck_abort_msg("unexpected MADT entry type %u", p[0]);
		}
		p += p[1];
	}
	ck_assert_uint_eq(lapics, c->cpus);
	for (unsigned i = 0; i < c->cpus; i++)
		ck_assert_msg(apic_seen[i], "APIC id %u missing", i);
	ck_assert_uint_eq(ioapics, 1);
	ck_assert_uint_eq(isos, 1);
	ck_assert_uint_eq(nmis, 1);
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(test_mcfg)
{
	const struct acpi_mcfg_alloc *a;
	const struct acpi_header *h;
	struct acpi_params p;
	struct guest_mem m;
	struct found f;
	uint64_t rsdp;

	setup_vm(&cfgs[0], &m, &p, &rsdp);
	walk(&m, rsdp, &f);
	h = (const void *)table(&m, f.mcfg, "MCFG");
	ck_assert_uint_eq(h->length, sizeof(struct acpi_mcfg) + sizeof(*a));
	a = (const void *)((const uint8_t *)h + sizeof(struct acpi_mcfg));
	ck_assert_uint_eq(a->base, LAYOUT_PCIE_ECAM);
	ck_assert_uint_eq(a->segment, 0);
	ck_assert_uint_eq(a->start_bus, 0);
	ck_assert_uint_eq(a->end_bus, 63);
	ck_assert_uint_eq((a->end_bus + 1ULL) << 20, LAYOUT_PCIE_ECAM_SIZE);
	guest_mem_destroy(&m);
}
END_TEST

/* ---- AML inspection of the DSDT ---- */

struct aml {
	const uint8_t *p, *end;
};

static const uint8_t *find_bytes(const uint8_t *hay, size_t len, const void *needle, size_t n,
				 unsigned *count)
{
	const uint8_t *hit = NULL;

	*count = 0;
	for (size_t i = 0; len >= n && i <= len - n; i++) {
		if (memcmp(hay + i, needle, n) != 0)
			continue;
		if (!hit)
			hit = hay + i;
		(*count)++;
	}
	return hit;
}

static uint8_t aml_byte(struct aml *a)
{
	ck_assert(a->p < a->end);
	return *a->p++;
}

static uint64_t aml_int(struct aml *a)
{
	uint8_t op = aml_byte(a);
	unsigned n;
	uint64_t v = 0;

	switch (op) {
	case 0x00:
		return 0;
	case 0x01:
		return 1;
	case 0xff:
		return ~0ULL;
	case 0x0a:
		n = 1;
		break;
	case 0x0b:
		n = 2;
		break;
	case 0x0c:
		n = 4;
		break;
	case 0x0e:
		n = 8;
		break;
	default:
		ck_abort_msg("AML opcode 0x%02x is not an integer", op);
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)aml_byte(a) << (8 * i);
	return v;
}

/* PackageOp PkgLength NumElements: returns the element count, a->p at the first element. */
static unsigned aml_package(struct aml *a)
{
	const uint8_t *start;
	uint8_t lead;
	size_t len;

	ck_assert_uint_eq(aml_byte(a), 0x12);
	start = a->p;
	lead = aml_byte(a);
	len = lead & 0x3f;
	if (lead >> 6) {
		len = lead & 0x0f;
		for (unsigned i = 0; i < (lead >> 6); i++)
			len |= (size_t)aml_byte(a) << (4 + 8 * i);
	}
	ck_assert_int_le((ptrdiff_t)len, a->end - start);
	return aml_byte(a);
}

/* Positions the parser after "Name (NAME," i.e. at the object. */
static struct aml aml_name(const uint8_t *dsdt, uint32_t len, const char *name)
{
	uint8_t pat[5] = {0x08};
	const uint8_t *hit;
	unsigned count;

	memcpy(pat + 1, name, 4);
	hit = find_bytes(dsdt, len, pat, sizeof(pat), &count);
	ck_assert_msg(count == 1, "Name (%s) found %u times", name, count);
	return (struct aml){.p = hit + sizeof(pat), .end = dsdt + len};
}

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

START_TEST(test_dsdt)
{
	const struct cfg *c = &cfgs[_i];
	static const uint64_t placeholders[] = {ACPI_DSDT_PH_FEAT, ACPI_DSDT_PH_MMIO64_MIN,
						ACPI_DSDT_PH_MMIO64_MAX, ACPI_DSDT_PH_MMIO64_LEN};
	/* QWordMemory (Large item 0xa, length 43), memory range type. */
	static const uint8_t qword_mem[] = {0x8a, 0x2b, 0x00, 0x00};
	/* Memory32Fixed (ReadWrite, ECAM base, ECAM size). */
	static const uint8_t ecam[] = {0x86, 0x09, 0x00, 0x01, 0x00, 0x00,
				       0x00, 0xf4, 0x00, 0x00, 0x00, 0x04};
	/* IO (Decode16, 0x600, 0x600, 1, 24): the PM block. */
	static const uint8_t pm_io[] = {0x47, 0x01, 0x00, 0x06, 0x00, 0x06, 0x01, 0x18};
	/* The pvpanic device: _HID "QEMU0001" (a string) and IO (Decode16, 0x505, 0x505, 1, 1). */
	static const uint8_t pvpanic_hid[] = {0x08, '_', 'H', 'I', 'D', 0x0d, 'Q', 'E',
					      'M',  'U', '0', '0', '0', '1',  0x00};
	static const uint8_t pvpanic_io[] = {0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01};
	const struct acpi_header *h;
	const uint8_t *d, *q;
	uint8_t prt_seen[32][4] = {{0}};
	struct acpi_params p;
	struct guest_mem m;
	struct found f;
	struct aml a;
	uint64_t rsdp, feat;
	unsigned count, n;

	setup_vm(c, &m, &p, &rsdp);
	walk(&m, rsdp, &f);
	d = table(&m, f.dsdt, "DSDT");
	h = (const void *)d;
	ck_assert_uint_eq(h->revision, 2); /* 64-bit integers */

	for (unsigned i = 0; i < ARRAY_SIZE(placeholders); i++) {
		find_bytes(d, h->length, &placeholders[i], 8, &count);
		ck_assert_msg(count == 0, "placeholder %u left in the DSDT", i);
	}

	/* The host bridge's 64-bit window is the one we asked for. */
	q = find_bytes(d, h->length, qword_mem, sizeof(qword_mem), &count);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(le(q + 14, 8), p.mmio64_base);
	ck_assert_uint_eq(le(q + 22, 8), p.mmio64_base + p.mmio64_size - 1);
	ck_assert_uint_eq(le(q + 30, 8), 0);
	ck_assert_uint_eq(le(q + 38, 8), p.mmio64_size);

	/* The motherboard device reserves the ECAM and the PM block. */
	find_bytes(d, h->length, ecam, sizeof(ecam), &count);
	ck_assert_uint_eq(count, 1);
	find_bytes(d, h->length, pm_io, sizeof(pm_io), &count);
	ck_assert_uint_eq(count, 1);

	/* Linux's pvpanic-mmio driver binds to QEMU0001 and takes its first I/O resource. */
	q = find_bytes(d, h->length, pvpanic_hid, sizeof(pvpanic_hid), &count);
	ck_assert_uint_eq(count, 1);
	find_bytes(q, (size_t)(d + h->length - q), pvpanic_io, sizeof(pvpanic_io), &count);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(LAYOUT_PORT_PVPANIC, 0x505);

	a = aml_name(d, h->length, "FEAT");
	feat = aml_int(&a);
	ck_assert_uint_eq(feat, (c->rtc ? ACPI_DSDT_FEAT_RTC : 0u) |
					(c->i8042 ? ACPI_DSDT_FEAT_I8042 : 0u));

	/* \_S5 carries the sleep type the PM device powers off on. */
	a = aml_name(d, h->length, "_S5_");
	ck_assert_uint_eq(aml_package(&a), 4);
	ck_assert_uint_eq(aml_int(&a), ACPI_PM_SLP_TYP_S5);

	/* _PRT: every slot and pin exactly once, swizzled over GSI 16..19. */
	a = aml_name(d, h->length, "_PRT");
	n = aml_package(&a);
	ck_assert_uint_eq(n, 128);
	for (unsigned i = 0; i < n; i++) {
		uint64_t addr, pin, src, gsi;
		unsigned slot;

		ck_assert_uint_eq(aml_package(&a), 4);
		addr = aml_int(&a);
		pin = aml_int(&a);
		src = aml_int(&a);
		gsi = aml_int(&a);
		ck_assert_uint_eq(addr & 0xffff, 0xffff);
		slot = (unsigned)(addr >> 16);
		ck_assert_uint_lt(slot, 32);
		ck_assert_uint_lt(pin, 4);
		ck_assert_uint_eq(src, 0);
		ck_assert_uint_eq(gsi, LAYOUT_IRQ_PCI_FIRST + (slot + pin) % 4);
		ck_assert(!prt_seen[slot][pin]++);
	}
	guest_mem_destroy(&m);
}
END_TEST

/* ---- configurations that must be refused ---- */

static int build_with(uint64_t ram, struct acpi_params p)
{
	struct guest_mem m;
	uint64_t rsdp = 0;
	int ret;

	ck_assert_int_eq(guest_mem_create(&m, ram), 0);
	ck_assert_int_eq(guest_mem_fill(&m, WIN_START, 0xaa, WIN_END - WIN_START), 0);
	ret = acpi_build(&m, &p, &rsdp, NULL);
	if (ret < 0) {
		/* A refused build leaves guest memory alone. */
		const uint8_t *w = gptr(&m, WIN_START, WIN_END - WIN_START);

		for (uint64_t i = 0; i < WIN_END - WIN_START; i++)
			ck_assert_uint_eq(w[i], 0xaa);
	}
	guest_mem_destroy(&m);
	return ret;
}

START_TEST(test_refused)
{
	const struct acpi_params ok = {.nr_cpus = 1, .mmio64_base = GiB(4), .mmio64_size = GiB(64)};
	struct acpi_params p;

	ck_assert_int_eq(build_with(MiB(64), ok), 0);

	p = ok, p.nr_cpus = 0;
	ck_assert_int_eq(build_with(MiB(64), p), -EINVAL);
	p = ok, p.nr_cpus = ACPI_MAX_CPUS + 1;
	ck_assert_int_eq(build_with(MiB(64), p), -EINVAL);
	p = ok, p.mmio64_size = 0;
	ck_assert_int_eq(build_with(MiB(64), p), -EINVAL);
	/* Below 4 GiB, overlapping the high RAM, unaligned, wrapping, beyond 52 bits. */
	p = ok, p.mmio64_base = LAYOUT_PCI_MMIO32_START;
	ck_assert_int_eq(build_with(MiB(64), p), -EINVAL);
	p = ok, p.mmio64_base = GiB(4);
	ck_assert_int_eq(build_with(GiB(4), p), -EINVAL);
	p = ok, p.mmio64_base = GiB(5);
	ck_assert_int_eq(build_with(GiB(4), p), 0);
	p = ok, p.mmio64_base = GiB(4) + 0x800;
	ck_assert_int_eq(build_with(MiB(64), p), -EINVAL);
	p = ok, p.mmio64_base = ~0ULL - 0xfff, p.mmio64_size = 0x2000;
	ck_assert_int_eq(build_with(MiB(64), p), -EINVAL);
	p = ok, p.mmio64_base = (1ULL << 52) - GiB(1), p.mmio64_size = GiB(2);
	ck_assert_int_eq(build_with(MiB(64), p), -EINVAL);
	/* The window itself ends exactly at 2^52: fine. */
	p = ok, p.mmio64_base = (1ULL << 52) - GiB(1), p.mmio64_size = GiB(1);
	ck_assert_int_eq(build_with(MiB(64), p), 0);
}
END_TEST

START_TEST(test_window_not_ram)
{
	/* RAM that ends in the middle of the table window. */
	struct guest_region small = {.gpa = 0, .size = 0xf0000};
	struct acpi_params p = {.nr_cpus = 1, .mmio64_base = GiB(4), .mmio64_size = GiB(1)};
	struct guest_mem m;
	uint64_t rsdp = 0;

	ck_assert_int_eq(guest_mem_create_regions(&m, &small, 1), 0);
	ck_assert_int_eq(acpi_build(&m, &p, &rsdp, NULL), -EFAULT);
	guest_mem_destroy(&m);
	ck_assert_int_eq(acpi_build(NULL, &p, &rsdp, NULL), -EINVAL);
}
END_TEST

START_TEST(test_patch_qwords)
{
	const uint64_t a = 0x1122334455667788ULL, b = 0x99aabbccddeeff00ULL;
	uint8_t buf[64] = {0}, copy[64];
	struct acpi_patch p[2] = {{a, b}, {b, 7}};

	/* A value equal to another placeholder does not confuse the second lookup. */
	memcpy(buf + 3, &a, 8);
	memcpy(buf + 20, &b, 8);
	ck_assert_int_eq(acpi_patch_qwords(buf, sizeof(buf), p, 2), 0);
	ck_assert_uint_eq(le(buf + 3, 8), b);
	ck_assert_uint_eq(le(buf + 20, 8), 7);

	/* Missing. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf + 3, &a, 8);
	memcpy(copy, buf, sizeof(buf));
	ck_assert_int_eq(acpi_patch_qwords(buf, sizeof(buf), p, 2), -ENOENT);
	ck_assert(!memcmp(buf, copy, sizeof(buf)));
	/* Twice: nothing is written. */
	memcpy(buf + 40, &a, 8);
	memcpy(buf + 20, &b, 8);
	memcpy(copy, buf, sizeof(buf));
	ck_assert_int_eq(acpi_patch_qwords(buf, sizeof(buf), p, 2), -EEXIST);
	ck_assert(!memcmp(buf, copy, sizeof(buf)));
	/* At the very end of the buffer, and a buffer shorter than a QWord. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf + sizeof(buf) - 8, &a, 8);
	ck_assert_int_eq(acpi_patch_qwords(buf, sizeof(buf), p, 1), 0);
	ck_assert_int_eq(acpi_patch_qwords(buf, 7, p, 1), -ENOENT);
}
END_TEST

/* ---- dump and iasl ---- */

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(dir);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* Runs argv in dir with stdout and stderr appended to dir/log; returns the exit status. */
static int run_in(const char *dir, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	char log[PATH_MAX];
	int status = -1;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/log", dir);
	ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
	ck_assert_int_eq(posix_spawn_file_actions_addchdir_np(&fa, dir), 0);
	ck_assert_int_eq(
		posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644),
		0);
	ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, 1, 2), 0);
	ck_assert_int_eq(posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static bool have_iasl(void)
{
	char *const argv[] = {"sh", "-c", "command -v iasl >/dev/null", NULL};
	char dir[] = "/tmp/crosvm-acpi-XXXXXX";
	int ret;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ret = run_in(dir, argv);
	rm_tree(dir);
	return ret == 0;
}

/* iasl reports problems it finds in a table as lines with these words. */
static void assert_clean(const char *what, const char *text)
{
	static const char *const bad[] = {"Error", "Warning", "Incorrect", "Invalid", "****"};

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *hit = strstr(text, bad[i]);

		ck_assert_msg(!hit, "%s: iasl reports \"%.120s\"", what, hit);
	}
}

static const char *const dumped[] = {"XSDT", "FACP", "FACS", "APIC", "MCFG", "DSDT"};
#define NR_DUMPED 6
_Static_assert(ARRAY_SIZE(dumped) == NR_DUMPED, "table list");

START_TEST(test_iasl_decompiles)
{
	const struct cfg *c = &cfgs[_i];
	char dir[] = "/tmp/crosvm-acpi-XXXXXX";
	char path[64], out[PATH_MAX];
	char names[NR_DUMPED][16];
	char *argv[3 + NR_DUMPED + 1];
	struct acpi_params p;
	struct guest_mem m;
	struct stat st;
	uint64_t rsdp;
	unsigned n = 0;
	char *text;

	if (!have_iasl()) {
		fprintf(stderr, "test_iasl_decompiles: iasl not found, skipped\n");
		return;
	}
	setup_vm(c, &m, &p, &rsdp);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tables", dir);
	ck_assert_int_eq(acpi_dump(&m, rsdp, path, NULL), 0);
	/* Dumping twice into an existing directory replaces the files. */
	ck_assert_int_eq(acpi_dump(&m, rsdp, path, NULL), 0);
	snprintf(out, sizeof(out), "%s/RSDP.dat", path);
	ck_assert_int_eq(stat(out, &st), 0);
	ck_assert_int_eq(st.st_size, sizeof(struct acpi_rsdp));

	/*
	 * iasl cannot load a binary RSDP ("Loading an RSDP is not supported" in its table
	 * loader), so the RSDP is only checked by walk(); every other table goes through it.
	 */
	argv[n++] = "iasl";
	argv[n++] = "-vs";
	argv[n++] = "-d";
	for (unsigned i = 0; i < NR_DUMPED; i++) {
		snprintf(names[i], sizeof(names[i]), "%s.dat", dumped[i]);
		argv[n++] = names[i];
	}
	argv[n] = NULL;
	ck_assert_int_eq(run_in(path, argv), 0);
	snprintf(out, sizeof(out), "%s/log", path);
	text = slurp(out);
	assert_clean("iasl -d", text);
	free(text);

	for (unsigned i = 0; i < NR_DUMPED; i++) {
		char dsl[32], prefix[32];
		char *const re[] = {"iasl", "-vs", "-we", "-p", prefix, dsl, NULL};

		snprintf(out, sizeof(out), "%s/%s.dsl", path, dumped[i]);
		text = slurp(out);
		assert_clean(dumped[i], text);
		ck_assert_msg(strstr(text, dumped[i]) != NULL, "%s.dsl lacks its signature",
			      dumped[i]);
		free(text);
		/* What iasl decompiled must compile again without a warning. */
		snprintf(dsl, sizeof(dsl), "%s.dsl", dumped[i]);
		snprintf(prefix, sizeof(prefix), "re_%s", dumped[i]);
		ck_assert_msg(run_in(path, re) == 0, "%s.dsl does not recompile", dumped[i]);
	}
	rm_tree(path);
	rm_tree(dir);
	guest_mem_destroy(&m);
}
END_TEST

static uint8_t *window(struct guest_mem *m)
{
	return (uint8_t *)gptr(m, WIN_START, WIN_END - WIN_START);
}

START_TEST(test_dump_hostile)
{
	char dir[] = "/tmp/crosvm-acpi-XXXXXX";
	char path[64];
	struct acpi_params p;
	struct acpi_header *x;
	struct guest_mem m;
	struct found f;
	uint64_t rsdp;
	uint8_t *w;

	setup_vm(&cfgs[1], &m, &p, &rsdp);
	walk(&m, rsdp, &f);
	w = window(&m);
	x = (void *)(w + (f.xsdt - WIN_START));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t", dir);

	/* An RSDP address outside RAM, and no RSDP at all. */
	ck_assert_int_eq(acpi_dump(&m, GiB(3) + 16, path, NULL), -EFAULT);
	ck_assert_int_eq(acpi_dump(&m, WIN_START + 16, path, NULL), -EINVAL);
	/* A table length far beyond anything sane. */
	x->length = 0xfffffff0;
	ck_assert_int_eq(acpi_dump(&m, rsdp, path, NULL), -EINVAL);
	/* A signature that would be a path. */
	x->length = sizeof(*x) + 3 * 8;
	memcpy(x->signature, "../X", 4);
	ck_assert_int_eq(acpi_dump(&m, rsdp, path, NULL), -EINVAL);
	memcpy(x->signature, "XSDT", 4);
	/* An XSDT entry pointing outside guest memory. */
	memset((uint8_t *)x + sizeof(*x), 0xff, 8);
	ck_assert_int_eq(acpi_dump(&m, rsdp, path, NULL), -EFAULT);
	/* A directory that cannot be created. */
	ck_assert_int_eq(acpi_dump(&m, rsdp, "/nonexistent-dir/sub", NULL), -ENOENT);
	rm_tree(path);
	rm_tree(dir);
	guest_mem_destroy(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("acpi");
	TCase *tc = tcase_create("tables");
	TCase *ti = tcase_create("iasl");
	const int n = (int)ARRAY_SIZE(cfgs);

	tcase_add_loop_test(tc, test_walk_like_linux, 0, n);
	tcase_add_loop_test(tc, test_fadt, 0, n);
	tcase_add_loop_test(tc, test_madt, 0, n);
	tcase_add_test(tc, test_mcfg);
	tcase_add_loop_test(tc, test_dsdt, 0, n);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_window_not_ram);
	tcase_add_test(tc, test_patch_qwords);
	tcase_add_test(tc, test_dump_hostile);
	suite_add_tcase(s, tc);
	/* Two configurations that differ in every optional part are enough for iasl. */
	tcase_add_loop_test(ti, test_iasl_decompiles, 0, 2);
	suite_add_tcase(s, ti);
	return testutil_run(s);
}
