/*
 * pci: enumerates bus 0 of the PCI host bridge through ECAM (from the MCFG table) and
 * through the 0xcf8/0xcfc ports, whichever the VMM offers, checks the two agree, and for
 * each function reports IDs, class, interrupt pin, sized BARs and the capability list
 * (with the virtio structure types of vendor capabilities).
 *
 * INFO lines, per function at bus:dev.fn (hex):
 *   pci.BB:DD.F=VVVV:DDDD class=0xCCSSPP hdr=0xHH pin=N
 *   pci.BB:DD.F.barI=mem32|mem64|io,0xADDR,0xSIZE[,pf]
 *   pci.BB:DD.F.caps=ID,ID,...      (hex capability IDs in list order)
 *   pci.BB:DD.F.virtio=T,T,...      (cfg_type of each virtio vendor capability)
 */
#include "lib/console.h"
#include "lib/fmt.h"
#include "lib/guest.h"
#include "lib/pci.h"

#define VIRTIO_VENDOR 0x1af4

static void report_bars(struct guest *g, const struct pci_cfg *c, const char *bdf, uint8_t dev,
			uint8_t fn)
{
	for (unsigned i = 0; i < 6; i++) {
		struct pci_bar b;

		pci_bar_probe(c, 0, dev, fn, i, &b);
		if (b.present)
			report_info(g, "pci.%s.bar%u=%s,0x%lx,0x%lx%s", bdf, i,
				    b.io     ? "io"
				    : b.is64 ? "mem64"
					     : "mem32",
				    b.addr, b.size, b.prefetch ? ",pf" : "");
		if (b.is64)
			i++;
	}
}

static void report_caps(struct guest *g, const struct pci_cfg *c, const char *bdf, uint8_t dev,
			uint8_t fn, bool virtio)
{
	uint8_t ids[PCI_CAP_MAX], offs[PCI_CAP_MAX];
	char list[PCI_CAP_MAX * 5 + 1] = "", vlist[PCI_CAP_MAX * 4 + 1] = "";
	size_t pos = 0, vpos = 0;
	int n = pci_caps(c, 0, dev, fn, ids, offs, PCI_CAP_MAX);

	if (n < 0) {
		report_fail(g, "pci_caps", "%s: malformed capability list", bdf);
		return;
	}
	for (int i = 0; i < n; i++) {
		pos += (size_t)fmt_snprintf(list + pos, sizeof(list) - pos, "%s0x%02x",
					    i ? "," : "", ids[i]);
		if (virtio && ids[i] == PCI_CAP_ID_VENDOR) {
			/* struct virtio_pci_cap: cfg_type is byte 3. */
			uint8_t type = (uint8_t)(pci_read32(c, 0, dev, fn, offs[i]) >> 24);

			vpos += (size_t)fmt_snprintf(vlist + vpos, sizeof(vlist) - vpos, "%s%u",
						     vpos ? "," : "", type);
		}
	}
	report_info(g, "pci.%s.caps=%s", bdf, n ? list : "none");
	if (virtio)
		report_info(g, "pci.%s.virtio=%s", bdf, vpos ? vlist : "none");
}

/* Enumerates bus 0 with c; returns the number of functions found. */
static unsigned enumerate(struct guest *g, const struct pci_cfg *c, bool report)
{
	unsigned found = 0;

	for (uint8_t dev = 0; dev < 32; dev++) {
		uint8_t nfn = 1;

		for (uint8_t fn = 0; fn < nfn; fn++) {
			uint32_t id = pci_read32(c, 0, dev, fn, PCI_VENDOR_ID);
			uint32_t cls, hdr, intr;
			char bdf[8];

			if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
				continue;
			hdr = (pci_read32(c, 0, dev, fn, 0x0c) >> 16) & 0xff;
			if (fn == 0 && (hdr & 0x80))
				nfn = 8;
			found++;
			if (!report)
				continue;
			cls = pci_read32(c, 0, dev, fn, PCI_CLASS_REV) >> 8;
			intr = pci_read32(c, 0, dev, fn, PCI_INTERRUPT);
			fmt_snprintf(bdf, sizeof(bdf), "00:%02x.%x", dev, fn);
			report_info(g, "pci.%s=%04x:%04x class=0x%06x hdr=0x%02x pin=%u", bdf,
				    id & 0xffff, id >> 16, cls, hdr, (intr >> 8) & 0xff);
			if ((hdr & 0x7f) == 0)
				report_bars(g, c, bdf, dev, fn);
			report_caps(g, c, bdf, dev, fn, (id & 0xffff) == VIRTIO_VENDOR);
		}
	}
	return found;
}

/* Both views must show the same vendor/device/class at every slot of bus 0. */
static void compare(struct guest *g, const struct pci_cfg *a, const struct pci_cfg *b)
{
	for (uint8_t dev = 0; dev < 32; dev++) {
		for (uint8_t fn = 0; fn < 8; fn++) {
			uint32_t x = pci_read32(a, 0, dev, fn, PCI_VENDOR_ID);
			uint32_t y = pci_read32(b, 0, dev, fn, PCI_VENDOR_ID);

			if (x != y) {
				report_fail(g, "pci_ecam_ports_agree",
					    "00:%02x.%x reads 0x%08x by ECAM, 0x%08x by ports", dev,
					    fn, x, y);
				return;
			}
		}
	}
	report_pass(g, "pci_ecam_ports_agree");
}

int guest_main(struct guest *g)
{
	struct pci_cfg ports = {.how = PCI_ACCESS_PORTS};
	struct pci_cfg ecam = {.how = PCI_ACCESS_ECAM};
	bool have_ports = pci_ports_present(), have_ecam = false;

	for (uint32_t i = 0; i < g->acpi.nmcfg; i++) {
		if (g->acpi.mcfg[i].segment != 0)
			continue;
		/* The MCFG base addresses bus 0 even when the window starts later. */
		ecam.ecam = g->acpi.mcfg[i].base;
		ecam.bus_start = g->acpi.mcfg[i].bus_start;
		ecam.bus_end = g->acpi.mcfg[i].bus_end;
		have_ecam = ecam.bus_start == 0;
		break;
	}
	report_info(g, "pci.ports=%s", have_ports ? "yes" : "no");
	if (have_ecam)
		report_info(g, "pci.ecam=0x%lx,%u-%u", ecam.ecam, ecam.bus_start, ecam.bus_end);
	else
		report_info(g, "pci.ecam=none");
	if (report_check(g, have_ports || have_ecam, "pci_present",
			 "neither ECAM (MCFG) nor the 0xcf8 ports"))
		return 0;
	report_info(g, "pci.functions=%u", enumerate(g, have_ecam ? &ecam : &ports, true));
	if (have_ecam && have_ports)
		compare(g, &ecam, &ports);
	return 0;
}
