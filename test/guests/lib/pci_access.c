#include "pci_access.h"
#include "cmdline.h"
#include "console.h"
#include "str.h"

static bool find_ecam(const struct guest *g, struct pci_cfg *ecam)
{
	for (uint32_t i = 0; i < g->acpi.nmcfg; i++) {
		if (g->acpi.mcfg[i].segment != 0 || g->acpi.mcfg[i].bus_start != 0)
			continue;
		*ecam = (struct pci_cfg){.how = PCI_ACCESS_ECAM,
					 .ecam = g->acpi.mcfg[i].base,
					 .bus_start = g->acpi.mcfg[i].bus_start,
					 .bus_end = g->acpi.mcfg[i].bus_end};
		return phys_range_ok(ecam->ecam, MiB(1));
	}
	return false;
}

/* Vendor/device words of every function of bus 0 must match: 256 reads each way. */
static int compare(struct guest *g, const struct pci_cfg *a, const struct pci_cfg *b)
{
	for (uint8_t dev = 0; dev < 32; dev++) {
		for (uint8_t fn = 0; fn < 8; fn++) {
			uint32_t x = pci_read32(a, 0, dev, fn, PCI_VENDOR_ID);
			uint32_t y = pci_read32(b, 0, dev, fn, PCI_VENDOR_ID);

			if (x != y) {
				report_fail(g, "pci_ecam_ports_agree",
					    "00:%02x.%x reads 0x%08x by ECAM, 0x%08x by ports", dev,
					    fn, x, y);
				return -EIO;
			}
		}
	}
	report_pass(g, "pci_ecam_ports_agree");
	return 0;
}

int pci_access_open(struct guest *g, struct pci_cfg *out)
{
	struct pci_cfg ports = {.how = PCI_ACCESS_PORTS}, ecam;
	bool have_ports = pci_ports_present(), have_ecam = find_ecam(g, &ecam);
	char want[8] = "";

	cmdline_get(g->boot.cmdline, "pci.access", want, sizeof(want));
	if (have_ecam && have_ports)
		compare(g, &ecam, &ports);
	if (!strcmp(want, "ports") || (!want[0] && !have_ecam)) {
		if (!have_ports) {
			report_fail(g, "pci_access", "no PCI configuration ports");
			return -ENODEV;
		}
		*out = ports;
	} else if (!strcmp(want, "ecam") || !want[0]) {
		if (!have_ecam) {
			report_fail(g, "pci_access", "no ECAM window for bus 0 in the MCFG");
			return -ENODEV;
		}
		*out = ecam;
	} else {
		report_fail(g, "pci_access", "pci.access=%s is neither ecam nor ports", want);
		return -EINVAL;
	}
	report_info(g, "pci.access=%s", out->how == PCI_ACCESS_ECAM ? "ecam" : "ports");
	return 0;
}

void pci_enable_device(const struct pci_cfg *c, uint8_t dev, uint8_t fn, bool intx_off)
{
	uint32_t cmd = pci_read32(c, 0, dev, fn, PCI_COMMAND) & 0xffff;

	cmd |= PCI_CMD_MEM | PCI_CMD_MASTER;
	cmd = intx_off ? cmd | PCI_CMD_INTX_DISABLE : cmd & ~(uint32_t)PCI_CMD_INTX_DISABLE;
	/* The status half is write-1-to-clear: writing zeros there leaves it alone. */
	pci_write32(c, 0, dev, fn, PCI_COMMAND, cmd);
}
