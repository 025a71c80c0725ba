#include "pci_intx.h"
#include "io.h"
#include "ioapic.h"
#include "str.h"

#define STRAY_LIMIT 1000

#define AML_NAME_OP    0x08
#define AML_PACKAGE_OP 0x12
#define AML_ZERO_OP    0x00
#define AML_ONE_OP     0x01
#define AML_ONES_OP    0xff
#define AML_BYTE_PFX   0x0a
#define AML_WORD_PFX   0x0b
#define AML_DWORD_PFX  0x0c
#define AML_QWORD_PFX  0x0e
#define ACPI_HDR_LEN   36

static void pin_mask(const struct pci_intx_pin *p)
{
	gsi_mask(&p->r);
}

static void pin_route(const struct pci_intx *x, const struct pci_intx_pin *p)
{
	gsi_program(x->g, &p->r, false);
}

/* An AML integer constant at *pos. */
static int aml_int(const uint8_t *a, uint32_t len, uint32_t *pos, uint64_t *out)
{
	static const uint8_t widths[] = {
		[AML_BYTE_PFX] = 1, [AML_WORD_PFX] = 2, [AML_DWORD_PFX] = 4, [AML_QWORD_PFX] = 8};
	uint32_t p = *pos, w;

	if (p >= len)
		return -EINVAL;
	if (a[p] == AML_ZERO_OP || a[p] == AML_ONE_OP || a[p] == AML_ONES_OP) {
		*out = a[p] == AML_ONES_OP ? UINT64_MAX : a[p];
		*pos = p + 1;
		return 0;
	}
	if (a[p] >= sizeof(widths) || !widths[a[p]])
		return -EINVAL;
	w = widths[a[p]];
	if (w > len - p - 1)
		return -EINVAL;
	*out = 0;
	for (uint32_t i = 0; i < w; i++)
		*out |= (uint64_t)a[p + 1 + i] << (8 * i);
	*pos = p + 1 + w;
	return 0;
}

/* A PkgLength at *pos: sets *end to where the package ends (the length counts itself). */
static int aml_pkg_end(const uint8_t *a, uint32_t len, uint32_t *pos, uint32_t *end)
{
	uint32_t p = *pos, n, plen;

	if (p >= len)
		return -EINVAL;
	n = a[p] >> 6;
	if (n > len - p - 1)
		return -EINVAL;
	plen = n ? a[p] & 0x0f : a[p] & 0x3f;
	for (uint32_t i = 0; i < n; i++)
		plen |= (uint32_t)a[p + 1 + i] << (4 + 8 * i);
	if (plen < n + 1 || plen > len - p)
		return -EINVAL;
	*end = p + plen;
	*pos = p + n + 1;
	return 0;
}

/* Looks for {address, pin, Zero, gsi} entries of the package at a[pos]. */
static int prt_lookup(const uint8_t *a, uint32_t len, uint32_t pos, uint8_t dev, uint8_t pin,
		      uint32_t *gsi)
{
	uint32_t end, count;

	if (aml_pkg_end(a, len, &pos, &end) || pos >= end)
		return -ENOENT;
	count = a[pos++];
	for (uint32_t i = 0; i < count && pos < end; i++) {
		uint64_t addr, p, g;
		uint32_t eend;

		if (a[pos] != AML_PACKAGE_OP)
			return -ENOENT;
		pos++;
		if (aml_pkg_end(a, end, &pos, &eend) || pos >= eend)
			return -ENOENT;
		pos++; /* element count: 4 */
		if (aml_int(a, eend, &pos, &addr) || aml_int(a, eend, &pos, &p))
			return -ENOENT;
		/* A named link device as source means the GSI is behind AML we do not run. */
		if (pos >= eend || a[pos] != AML_ZERO_OP)
			return -ENOENT;
		pos++;
		if (aml_int(a, eend, &pos, &g))
			return -ENOENT;
		if ((addr >> 16) == dev && (addr & 0xffff) == 0xffff && p == pin - 1u) {
			if (g > UINT32_MAX)
				return -ENOENT;
			*gsi = (uint32_t)g;
			return 0;
		}
		pos = eend;
	}
	return -ENOENT;
}

int pci_intx_prt_gsi(const struct guest *g, uint8_t dev, uint8_t pin, uint32_t *gsi)
{
	const uint8_t *a;
	uint32_t len;

	if (!g->acpi.dsdt || g->acpi.dsdt_len <= ACPI_HDR_LEN || pin < 1 || pin > 4)
		return -ENOENT;
	a = phys_to_ptr(g->acpi.dsdt + ACPI_HDR_LEN);
	len = g->acpi.dsdt_len - ACPI_HDR_LEN;
	for (uint32_t i = 1; i + 5 < len; i++) {
		if (a[i - 1] == AML_NAME_OP && !memcmp(a + i, "_PRT", 4) &&
		    a[i + 4] == AML_PACKAGE_OP)
			return prt_lookup(a, len, i + 5, dev, pin, gsi);
	}
	return -ENOENT;
}

static int on_intx(struct guest *g, struct irq_frame *f, void *arg)
{
	struct pci_intx_pin *p = arg;
	struct pci_intx *x = p->x;

	(void)g;
	(void)f;
	/* A pin of an earlier setup: its entry is masked; this was in flight. */
	if (p >= x->pins + x->npins) {
		x->strays++;
		return 0;
	}
	if (x->claim(x->arg)) {
		x->hits++;
		if (x->gsi < 0) {
			x->gsi = (int32_t)p->r.gsi;
			for (uint32_t i = 0; i < x->npins; i++) {
				if (&x->pins[i] != p)
					pin_mask(&x->pins[i]);
			}
		}
		return 0;
	}
	/* A line we do not own, or a storm: stop it rather than hang in this handler. */
	if (++x->strays > STRAY_LIMIT || x->gsi != (int32_t)p->r.gsi)
		pin_mask(p);
	return 0;
}

static int add_pin(struct pci_intx *x, uint64_t base, uint32_t pin, uint32_t gsi, uint8_t vec_base)
{
	struct pci_intx_pin *p;

	if (x->npins == PCI_GSI_COUNT)
		return -ENOSPC;
	p = &x->pins[x->npins++];
	/* PCI INTx: level triggered, active low (PCI 3.0, 2.2.6). */
	*p = (struct pci_intx_pin){
		.x = x,
		.r = {.gsi = gsi,
		      .vector = (uint8_t)(vec_base + (gsi & (PCI_INTX_VECTORS - 1))),
		      .level = true,
		      .active_low = true,
		      .ioapic = base,
		      .pin = pin}};
	return 0;
}

/* The pin for want_gsi, or (want_gsi < 0) every pin at GSI 16..23. */
static int collect_pins(struct pci_intx *x, int64_t want_gsi, uint8_t vec_base)
{
	uint32_t first = want_gsi >= 0 ? (uint32_t)want_gsi : PCI_GSI_FIRST;
	uint32_t count = want_gsi >= 0 ? 1 : PCI_GSI_COUNT;

	for (uint32_t gsi = first; gsi < first + count; gsi++) {
		uint64_t base;
		uint32_t pin;

		if (gsi_lookup(x->g, gsi, &base, &pin) == 0)
			add_pin(x, base, pin, gsi, vec_base);
	}
	return x->npins ? 0 : -ENODEV;
}

int pci_intx_setup(struct guest *g, struct pci_intx *x, uint8_t dev, uint8_t pin, uint8_t vec_base,
		   int32_t known_gsi, pci_intx_claim_fn claim, void *arg)
{
	uint32_t gsi;
	int rc;

	*x = (struct pci_intx){.g = g, .claim = claim, .arg = arg, .gsi = -1};
	if (pin < 1 || pin > 4)
		return -EINVAL;
	if (pci_intx_prt_gsi(g, dev, pin, &gsi) == 0) {
		x->from_prt = true;
		x->gsi = (int32_t)gsi;
		rc = collect_pins(x, gsi, vec_base);
	} else if (known_gsi >= 0) {
		x->gsi = known_gsi;
		rc = collect_pins(x, known_gsi, vec_base);
	} else {
		rc = collect_pins(x, -1, vec_base);
	}
	if (rc)
		return rc;
	for (uint32_t i = 0; i < x->npins; i++) {
		idt_set_handler(g, x->pins[i].r.vector, on_intx, &x->pins[i]);
		pin_route(x, &x->pins[i]);
	}
	return 0;
}

void pci_intx_teardown(struct pci_intx *x)
{
	for (uint32_t i = 0; i < x->npins; i++)
		pin_mask(&x->pins[i]);
	x->npins = 0;
}
