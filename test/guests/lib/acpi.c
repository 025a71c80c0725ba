#include "acpi.h"
#include "io.h"
#include "str.h"

#define HDR_LEN	      36
#define TABLE_MAX_LEN 0x100000 /* larger than any table a VMM makes; bounds the sums */
#define RSDP_V1_LEN   20
#define RSDP_V2_LEN   36
#define SCAN_START    0xe0000
#define SCAN_END      0x100000

/* FADT offsets (ACPI 6.x, 5.2.9). */
#define FADT_DSDT	 40
#define FADT_SCI_INT	 46
#define FADT_PM1A_CNT	 64
#define FADT_PM1B_CNT	 68
#define FADT_PM1_CNT_LEN 89
#define FADT_CENTURY	 108
#define FADT_BOOT_ARCH	 109
#define FADT_FLAGS	 112
#define FADT_RESET_REG	 116
#define FADT_RESET_VAL	 128
#define FADT_X_DSDT	 140
#define FADT_X_PM1A_CNT	 172
#define FADT_X_PM1B_CNT	 184
#define FADT_SLEEP_CTL	 244

#define AML_NAME_OP    0x08
#define AML_PACKAGE_OP 0x12
#define AML_ZERO_OP    0x00
#define AML_ONE_OP     0x01
#define AML_BYTE_PFX   0x0a
#define AML_WORD_PFX   0x0b
#define AML_DWORD_PFX  0x0c
#define AML_ONES_OP    0xff

static uint8_t rd8(uint64_t a)
{
	return *(const volatile uint8_t *)phys_to_ptr(a);
}

static uint16_t rd16(uint64_t a)
{
	return *(const volatile uint16_t *)phys_to_ptr(a);
}

static uint32_t rd32(uint64_t a)
{
	return *(const volatile uint32_t *)phys_to_ptr(a);
}

static uint64_t rd64(uint64_t a)
{
	return *(const volatile uint64_t *)phys_to_ptr(a);
}

static void add_error(struct acpi_info *a, const char *msg)
{
	if (a->nerrors < ACPI_ERRORS_MAX)
		a->errors[a->nerrors++] = msg;
}

static uint8_t sum(uint64_t addr, uint32_t len)
{
	uint8_t s = 0;

	for (uint32_t i = 0; i < len; i++)
		s += rd8(addr + i);
	return s;
}

static bool rsdp_valid(uint64_t addr)
{
	if (!phys_range_ok(addr, RSDP_V2_LEN))
		return false;
	if (memcmp(phys_to_ptr(addr), "RSD PTR ", 8) != 0 || sum(addr, RSDP_V1_LEN) != 0)
		return false;
	if (rd8(addr + 15) >= 2) {
		uint32_t len = rd32(addr + 20);

		if (len < RSDP_V2_LEN || !phys_range_ok(addr, len) || len > 4096 || sum(addr, len))
			return false;
	}
	return true;
}

static uint64_t rsdp_scan(void)
{
	for (uint64_t p = SCAN_START; p < SCAN_END; p += 16) {
		/* Compare the first word before paying for the checksum. */
		if (rd32(p) == 0x20445352 /* "RSD " */ && rsdp_valid(p))
			return p;
	}
	return 0;
}

static struct acpi_gas read_gas(uint64_t p)
{
	return (struct acpi_gas){.space = rd8(p),
				 .bit_width = rd8(p + 1),
				 .bit_offset = rd8(p + 2),
				 .access_size = rd8(p + 3),
				 .addr = rd64(p + 4)};
}

/* A legacy 32-bit block address as a GAS in I/O space, so users see one shape. */
static struct acpi_gas io_gas(uint32_t port, uint8_t width)
{
	return (struct acpi_gas){.space = ACPI_GAS_IO, .bit_width = width, .addr = port};
}

/* Validates a table header at addr: sets *len when the length is sane and mapped. */
static bool table_header_ok(uint64_t addr, uint32_t *len)
{
	uint32_t l;

	if (!addr || !phys_range_ok(addr, HDR_LEN))
		return false;
	l = rd32(addr + 4);
	if (l < HDR_LEN || l > TABLE_MAX_LEN || !phys_range_ok(addr, l))
		return false;
	*len = l;
	return true;
}

static void add_table(struct acpi_info *a, uint64_t addr)
{
	struct acpi_table *t;
	uint32_t len;

	if (!table_header_ok(addr, &len)) {
		add_error(a, "a root table entry points to an invalid table");
		return;
	}
	if (a->ntables == ACPI_MAX_TABLES) {
		add_error(a, "more ACPI tables than the guest keeps");
		return;
	}
	t = &a->tables[a->ntables++];
	memcpy(t->sig, phys_to_ptr(addr), 4);
	t->sig[4] = '\0';
	t->addr = addr;
	t->len = len;
	t->csum_ok = sum(addr, len) == 0;
	if (!t->csum_ok)
		add_error(a, "an ACPI table has a bad checksum");
}

static void parse_fadt(struct acpi_info *a, const struct acpi_table *t)
{
	uint64_t f = t->addr;
	uint32_t len = t->len;
	uint64_t dsdt = 0;
	uint32_t dlen;

	a->fadt = f;
	a->fadt_len = len;
	if (len < FADT_FLAGS + 4) {
		add_error(a, "FADT too short");
		return;
	}
	a->sci_int = rd16(f + FADT_SCI_INT);
	a->century = rd8(f + FADT_CENTURY);
	a->iapc_boot_arch = rd16(f + FADT_BOOT_ARCH);
	a->fadt_flags = rd32(f + FADT_FLAGS);
	if (rd32(f + FADT_PM1A_CNT))
		a->pm1a_cnt = io_gas(rd32(f + FADT_PM1A_CNT), 16);
	if (rd32(f + FADT_PM1B_CNT))
		a->pm1b_cnt = io_gas(rd32(f + FADT_PM1B_CNT), 16);
	if (len >= FADT_RESET_VAL + 1) {
		a->reset_reg = read_gas(f + FADT_RESET_REG);
		a->reset_value = rd8(f + FADT_RESET_VAL);
	}
	dsdt = rd32(f + FADT_DSDT);
	if (len >= FADT_X_DSDT + 8 && rd64(f + FADT_X_DSDT))
		dsdt = rd64(f + FADT_X_DSDT);
	if (len >= FADT_X_PM1A_CNT + 12 && rd64(f + FADT_X_PM1A_CNT + 4))
		a->pm1a_cnt = read_gas(f + FADT_X_PM1A_CNT);
	if (len >= FADT_X_PM1B_CNT + 12 && rd64(f + FADT_X_PM1B_CNT + 4))
		a->pm1b_cnt = read_gas(f + FADT_X_PM1B_CNT);
	if (len >= FADT_SLEEP_CTL + 12)
		a->sleep_ctl = read_gas(f + FADT_SLEEP_CTL);

	if (!dsdt)
		return;
	if (!table_header_ok(dsdt, &dlen) || memcmp(phys_to_ptr(dsdt), "DSDT", 4) != 0) {
		add_error(a, "FADT points to an invalid DSDT");
		return;
	}
	a->dsdt = dsdt;
	a->dsdt_len = dlen;
	if (sum(dsdt, dlen) != 0)
		add_error(a, "DSDT has a bad checksum");
	if (acpi_parse_s5(phys_to_ptr(dsdt + HDR_LEN), dlen - HDR_LEN, &a->s5_typa, &a->s5_typb) ==
	    0)
		a->s5_found = true;
}

static void add_cpu(struct acpi_info *a, uint32_t apic_id, uint32_t uid, uint32_t flags,
		    bool x2apic)
{
	if (!(flags & 3))
		return; /* neither enabled nor online capable: not a CPU to use */
	if (a->ncpus == GUEST_MAX_CPUS) {
		a->ncpus_dropped++;
		return;
	}
	a->cpus[a->ncpus++] = (struct acpi_cpu){apic_id, uid, flags, x2apic};
}

static void parse_madt(struct acpi_info *a, const struct acpi_table *t)
{
	uint64_t p, end = t->addr + t->len;

	a->madt = t->addr;
	if (t->len < HDR_LEN + 8) {
		add_error(a, "MADT too short");
		return;
	}
	a->lapic_addr = rd32(t->addr + HDR_LEN);
	a->madt_flags = rd32(t->addr + HDR_LEN + 4);
	for (p = t->addr + HDR_LEN + 8; p + 2 <= end;) {
		uint8_t type = rd8(p), len = rd8(p + 1);

		if (len < 2 || p + len > end) {
			add_error(a, "MADT entry with a bad length");
			return;
		}
		switch (type) {
		case 0: /* processor local APIC */
			if (len >= 8)
				add_cpu(a, rd8(p + 3), rd8(p + 2), rd32(p + 4), false);
			break;
		case 1: /* I/O APIC */
			if (len >= 12 && a->nioapics < ACPI_MAX_IOAPICS)
				a->ioapics[a->nioapics++] =
					(struct acpi_ioapic){rd8(p + 2), rd32(p + 4), rd32(p + 8)};
			break;
		case 2: /* interrupt source override */
			if (len >= 10 && a->nisos < ACPI_MAX_ISOS)
				a->isos[a->nisos++] = (struct acpi_iso){rd8(p + 2), rd8(p + 3),
									rd32(p + 4), rd16(p + 8)};
			break;
		case 5: /* local APIC address override */
			if (len >= 12)
				a->lapic_addr = rd64(p + 4);
			break;
		case 9: /* processor local x2APIC */
			if (len >= 16)
				add_cpu(a, rd32(p + 4), rd32(p + 12), rd32(p + 8), true);
			break;
		default:
			break;
		}
		p += len;
	}
}

static void parse_mcfg(struct acpi_info *a, const struct acpi_table *t)
{
	for (uint64_t p = t->addr + HDR_LEN + 8; p + 16 <= t->addr + t->len; p += 16) {
		if (a->nmcfg == ACPI_MAX_MCFG)
			break;
		a->mcfg[a->nmcfg].base = rd64(p);
		a->mcfg[a->nmcfg].segment = rd16(p + 8);
		a->mcfg[a->nmcfg].bus_start = rd8(p + 10);
		a->mcfg[a->nmcfg].bus_end = rd8(p + 11);
		a->nmcfg++;
	}
}

int acpi_init(struct acpi_info *a, uint64_t rsdp_hint)
{
	uint64_t rsdp = 0, root;
	uint32_t root_len, entry;

	memset(a, 0, sizeof(*a));
	if (rsdp_hint && rsdp_valid(rsdp_hint))
		rsdp = rsdp_hint;
	else if (rsdp_hint)
		add_error(a, "the RSDP the loader gave is invalid");
	if (!rsdp) {
		rsdp = rsdp_scan();
		a->rsdp_from_scan = rsdp != 0;
	}
	if (!rsdp)
		return -ENOENT;
	a->found = true;
	a->rsdp = rsdp;
	a->revision = rd8(rsdp + 15);
	memcpy(a->oem_id, phys_to_ptr(rsdp + 9), 6);
	a->oem_id[6] = '\0';

	root = rd32(rsdp + 16);
	entry = 4;
	if (a->revision >= 2 && rd64(rsdp + 24)) {
		root = rd64(rsdp + 24);
		entry = 8;
		a->use_xsdt = true;
	}
	a->root = root;
	if (!table_header_ok(root, &root_len)) {
		add_error(a, "the RSDT/XSDT header is invalid");
		return 0;
	}
	if (memcmp(phys_to_ptr(root), a->use_xsdt ? "XSDT" : "RSDT", 4) != 0)
		add_error(a, "the root table has the wrong signature");
	if (sum(root, root_len) != 0)
		add_error(a, "the root table has a bad checksum");
	for (uint64_t p = root + HDR_LEN; p + entry <= root + root_len; p += entry)
		add_table(a, entry == 8 ? rd64(p) : rd32(p));

	for (uint32_t i = 0; i < a->ntables; i++) {
		const struct acpi_table *t = &a->tables[i];

		if (!memcmp(t->sig, "FACP", 4) && !a->fadt)
			parse_fadt(a, t);
		else if (!memcmp(t->sig, "APIC", 4) && !a->madt)
			parse_madt(a, t);
		else if (!memcmp(t->sig, "MCFG", 4) && !a->nmcfg)
			parse_mcfg(a, t);
	}
	return 0;
}

const struct acpi_table *acpi_find(const struct acpi_info *a, const char *sig)
{
	for (uint32_t i = 0; i < a->ntables; i++) {
		if (!memcmp(a->tables[i].sig, sig, 4))
			return &a->tables[i];
	}
	return NULL;
}

int acpi_gas_write(const struct acpi_gas *r, uint64_t val)
{
	unsigned width = r->bit_width;

	if (!r->addr)
		return -ENOENT;
	/* access_size, when given, wins over the register width. */
	if (r->access_size >= 1 && r->access_size <= 4)
		width = 8u << (r->access_size - 1);
	if (r->space == ACPI_GAS_IO) {
		if (r->addr > 0xffff)
			return -EINVAL;
		switch (width) {
		case 8:
			outb((uint16_t)r->addr, (uint8_t)val);
			return 0;
		case 16:
			outw((uint16_t)r->addr, (uint16_t)val);
			return 0;
		case 32:
			outl((uint16_t)r->addr, (uint32_t)val);
			return 0;
		default:
			return -EINVAL;
		}
	}
	if (r->space == ACPI_GAS_MEMORY) {
		if (!phys_range_ok(r->addr, width / 8 ? width / 8 : 1))
			return -EINVAL;
		switch (width) {
		case 8:
			mmio_write8(r->addr, (uint8_t)val);
			return 0;
		case 16:
			mmio_write16(r->addr, (uint16_t)val);
			return 0;
		case 32:
			mmio_write32(r->addr, (uint32_t)val);
			return 0;
		case 64:
			mmio_write64(r->addr, val);
			return 0;
		default:
			return -EINVAL;
		}
	}
	return -EINVAL;
}

void acpi_isa_irq(const struct acpi_info *a, uint8_t irq, uint32_t *gsi, uint16_t *flags)
{
	*gsi = irq;
	*flags = 0;
	for (uint32_t i = 0; i < a->nisos; i++) {
		if (a->isos[i].bus == 0 && a->isos[i].source == irq) {
			*gsi = a->isos[i].gsi;
			*flags = a->isos[i].flags;
			return;
		}
	}
}

/* One integer element of a package: advances *pos. */
static int aml_integer(const uint8_t *aml, uint32_t len, uint32_t *pos, uint8_t *out)
{
	uint32_t p = *pos;

	if (p >= len)
		return -EINVAL;
	switch (aml[p]) {
	case AML_ZERO_OP:
		*out = 0;
		*pos = p + 1;
		return 0;
	case AML_ONE_OP:
		*out = 1;
		*pos = p + 1;
		return 0;
	case AML_ONES_OP:
		*out = 0xff;
		*pos = p + 1;
		return 0;
	case AML_BYTE_PFX:
		if (p + 2 > len)
			return -EINVAL;
		*out = aml[p + 1];
		*pos = p + 2;
		return 0;
	case AML_WORD_PFX:
		if (p + 3 > len)
			return -EINVAL;
		*out = aml[p + 1];
		*pos = p + 3;
		return 0;
	case AML_DWORD_PFX:
		if (p + 5 > len)
			return -EINVAL;
		*out = aml[p + 1];
		*pos = p + 5;
		return 0;
	default:
		return -EINVAL;
	}
}

int acpi_parse_s5(const uint8_t *aml, uint32_t len, uint8_t *typa, uint8_t *typb)
{
	for (uint32_t i = 1; i + 4 < len; i++) {
		uint32_t p, pkglen_bytes, nelem;

		if (memcmp(aml + i, "_S5_", 4) != 0)
			continue;
		/* Name(_S5_, ...) or Name(\_S5_, ...): a NameOp right before the name. */
		if (aml[i - 1] != AML_NAME_OP &&
		    !(aml[i - 1] == '\\' && i >= 2 && aml[i - 2] == AML_NAME_OP))
			continue;
		p = i + 4;
		if (p + 2 > len || aml[p] != AML_PACKAGE_OP)
			continue;
		p++;
		pkglen_bytes = (aml[p] >> 6) + 1u;
		p += pkglen_bytes;
		if (p >= len)
			continue;
		nelem = aml[p++];
		if (nelem < 1 || aml_integer(aml, len, &p, typa) != 0)
			continue;
		*typb = *typa;
		if (nelem >= 2 && aml_integer(aml, len, &p, typb) != 0)
			*typb = *typa;
		return 0;
	}
	return -ENOENT;
}
