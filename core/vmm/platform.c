/*
 * The legacy platform devices every x86 guest expects: COM1-COM4, the i8042 (reset only),
 * CMOS/RTC, the ACPI PM block, pvpanic and the harmless debug ports. Created from the
 * config and placed on the I/O bus.
 */
#include "core/vmm/platform.h"
#include "core/layout.h"
#include "core/pci.h"
#include "core/vmm/vm.h"
#include "legacy/acpi_pm.h"
#include "legacy/cmos.h"
#include "legacy/debug_ports.h"
#include "legacy/i8042.h"
#include "legacy/pvpanic.h"
#include "legacy/serial.h"
#include "legacy/serial_pump.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const struct {
	uint16_t port;
	uint32_t irq;
} com[CONFIG_MAX_SERIAL] = {
	{LAYOUT_PORT_COM1, LAYOUT_IRQ_COM1},
	{LAYOUT_PORT_COM2, LAYOUT_IRQ_COM2},
	{LAYOUT_PORT_COM3, LAYOUT_IRQ_COM1},
	{LAYOUT_PORT_COM4, LAYOUT_IRQ_COM2},
};

/* Adds dev to the VM (which then owns it) and maps port range i to its region i. */
static int add_ports(struct vm *vm, struct device *dev, const struct port_range *ranges,
		     unsigned nr)
{
	int ret;

	if (!dev)
		return -EINVAL;
	ret = vm_add_device(vm, dev);
	if (ret < 0) {
		device_destroy(dev);
		return ret;
	}
	for (unsigned i = 0; ret == 0 && i < nr; i++)
		ret = vm_register_region(vm, &vm->pio, dev, i, ranges[i].base, ranges[i].len);
	return ret;
}

/* One I/O range, region 0. */
static int add_pio(struct vm *vm, struct device *dev, uint16_t base, uint16_t len)
{
	return add_ports(vm, dev, &(struct port_range){base, len}, 1);
}

static int open_serial_out(struct vm *vm, unsigned i, const struct serial_config *sc, int *fd)
{
	*fd = -1;
	switch (sc->type) {
	case SERIAL_CFG_STDOUT:
		*fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
		break;
	case SERIAL_CFG_FILE:
		*fd = open(sc->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		break;
	default:
		return 0;
	}
	if (*fd < 0) {
		int e = errno;

		log_err(vm->log, "serial %u: cannot open %s: %s", i + 1,
			sc->type == SERIAL_CFG_FILE ? sc->path : "stdout", strerror(e));
		return -e;
	}
	return 0;
}

static int create_serials(struct vm *vm)
{
	for (unsigned i = 0; i < CONFIG_MAX_SERIAL; i++) {
		const struct serial_config *sc = &vm->cfg->serial[i];
		struct serial_params p = {.num = i + 1, .in_fd = -1, .irq_fd = -1, .log = vm->log};
		struct device *dev = NULL, *pump = NULL;
		int ret;

		p.type = sc->type == SERIAL_CFG_STDOUT	 ? SERIAL_STDOUT
			 : sc->type == SERIAL_CFG_FILE	 ? SERIAL_FILE
			 : sc->type == SERIAL_CFG_SYSLOG ? SERIAL_SYSLOG
							 : SERIAL_SINK;
		ret = open_serial_out(vm, i, sc, &p.out_fd);
		if (ret < 0)
			return ret;
		if (sc->stdin_) {
			p.in_fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
			if (p.in_fd < 0) {
				ret = -errno;
				close_fd(&p.out_fd);
				log_err(vm->log, "serial %u: cannot use stdin: %s", i + 1,
					strerror(-ret));
				return ret;
			}
		}
		/* Sandboxed, the host files go to a jailed pump (legacy/serial_pump.h). */
		if (!vm->cfg->disable_sandbox) {
			ret = serial_pump_wrap(&p, &pump);
			if (ret == 0 && pump) {
				ret = vm_add_device(vm, pump);
				if (ret < 0)
					device_destroy(pump);
			}
			if (ret < 0) {
				close_fd(&p.out_fd);
				close_fd(&p.in_fd);
				log_err(vm->log, "serial %u: cannot create its host side: %s",
					i + 1, strerror(-ret));
				return ret;
			}
		}
		ret = irq_eventfd_create(&vm->kvm, com[i].irq, &p.irq_fd);
		if (ret == 0)
			ret = serial_create(&p, &dev);
		if (ret < 0) {
			close_fd(&p.out_fd);
			close_fd(&p.in_fd);
			close_fd(&p.irq_fd);
			log_err(vm->log, "serial %u: cannot create the device: %s", i + 1,
				strerror(-ret));
			return ret;
		}
		ret = add_pio(vm, dev, com[i].port, 8);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The ACPI PM block with its SCI: a level irqfd on GSI LAYOUT_IRQ_SCI, as any device's. */
static int create_acpi_pm(struct vm *vm)
{
	struct acpi_pm_params pm = {.ev = &vm->events, .log = vm->log};
	struct device *dev;
	int ret;

	ret = irq_level_eventfd_create(&vm->kvm, LAYOUT_IRQ_SCI, &pm.sci_fd, &pm.sci_resample_fd);
	if (ret < 0) {
		log_err(vm->log, "acpi_pm: cannot wire the SCI: %s", strerror(-ret));
		return ret;
	}
	ret = acpi_pm_create(&pm, &dev);
	if (ret < 0) {
		close_fd(&pm.sci_fd);
		close_fd(&pm.sci_resample_fd);
		return ret;
	}
	vm->acpi_pm = dev;
	return add_pio(vm, dev, LAYOUT_PORT_ACPI_PM, ACPI_PM_IO_LEN);
}

/* Data port 0x60 is region 0, command/status port 0x64 region 1. */
static int create_i8042(struct vm *vm)
{
	static const struct port_range ports[] = {{LAYOUT_PORT_I8042, 1},
						  {LAYOUT_PORT_I8042 + 4, 1}};
	struct device *dev;
	int ret = i8042_create(&vm->events, vm->log, &dev);

	return ret < 0 ? ret : add_ports(vm, dev, ports, ARRAY_SIZE(ports));
}

static int create_debug_ports(struct vm *vm)
{
	const struct port_range *ranges;
	struct device *dev;
	unsigned nr;
	int ret = debug_ports_create(vm->log, &dev, &ranges, &nr);

	return ret < 0 ? ret : add_ports(vm, dev, ranges, nr);
}

int platform_create_pvpanic_pci(struct vm *vm)
{
	struct pci_irq_fds irq = {.intx_fd = -1, .intx_resample_fd = -1};
	struct pci_dev_desc desc;
	struct device *dev;
	unsigned slot;
	int ret;

	ret = pvpanic_pci_create(&vm->events, vm->log, &dev, &desc);
	if (ret < 0)
		return ret;
	ret = vm_add_device(vm, dev);
	if (ret < 0) {
		device_destroy(dev);
		return ret;
	}
	ret = pci_next_slot(vm->pci, &slot);
	if (ret == 0)
		ret = pci_add_device(vm->pci, slot, dev, &desc, &irq);
	if (ret < 0)
		log_err(vm->log, "pvpanic-pci: cannot add the PCI device: %s", strerror(-ret));
	return ret;
}

int platform_create(struct vm *vm)
{
	struct device *dev;
	int ret;

	ret = pci_root_create(&(struct pci_root_params){.pio = &vm->pio,
							.mmio = &vm->mmio,
							.kvm = &vm->kvm,
							.irq = &vm->irq,
							.mem = &vm->mem,
							.ev = &vm->events,
							.log = vm->log},
			      &vm->pci);
	if (ret < 0)
		return ret;
	ret = create_serials(vm);
	if (ret < 0)
		return ret;
	if (!vm->cfg->no_i8042) {
		ret = create_i8042(vm);
		if (ret < 0)
			return ret;
	}
	if (!vm->cfg->no_rtc) {
		struct cmos_params cp = {.mem_below_4g = guest_mem_below_4g(&vm->mem),
					 .mem_above_4g = guest_mem_above_4g(&vm->mem),
					 .log = vm->log};

		ret = cmos_create(&cp, &dev);
		if (ret == 0)
			ret = add_pio(vm, dev, LAYOUT_PORT_CMOS, 2);
		if (ret < 0)
			return ret;
	}
	ret = pvpanic_create(&vm->events, vm->log, &dev);
	if (ret == 0)
		ret = add_pio(vm, dev, LAYOUT_PORT_PVPANIC, 1);
	if (ret < 0)
		return ret;
	ret = create_acpi_pm(vm);
	if (ret < 0)
		return ret;
	return create_debug_ports(vm);
}
