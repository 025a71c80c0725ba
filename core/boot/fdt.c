#include "core/boot/fdt.h"
#include "core/boot/e820.h"

#include <libfdt.h>
#include <stdio.h>

static int errno_of(int fdt_err)
{
	return fdt_err == -FDT_ERR_NOSPACE ? -ENOSPC : -EINVAL;
}

static int chosen(void *fdt, const struct fdt_params *p)
{
	int err = fdt_begin_node(fdt, "chosen");

	if (!err && p->cmdline)
		err = fdt_property_string(fdt, "bootargs", p->cmdline);
	if (!err && p->initrd_size) {
		err = fdt_property_u64(fdt, "linux,initrd-start", p->initrd_gpa);
		if (!err)
			err = fdt_property_u64(fdt, "linux,initrd-end",
					       p->initrd_gpa + p->initrd_size);
	}
	if (!err)
		err = fdt_end_node(fdt);
	return err;
}

static int memory(void *fdt, const struct guest_mem *mem)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	unsigned nr;
	int ret = e820_build(mem, map, E820_MAX_ENTRIES, &nr);

	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < nr && !ret; i++) {
		fdt64_t reg[2] = {cpu_to_fdt64(map[i].addr), cpu_to_fdt64(map[i].size)};
		char name[32];

		if (map[i].type != E820_RAM)
			continue;
		snprintf(name, sizeof(name), "memory@%llx", (unsigned long long)map[i].addr);
		ret = fdt_begin_node(fdt, name);
		if (!ret)
			ret = fdt_property_string(fdt, "device_type", "memory");
		if (!ret)
			ret = fdt_property(fdt, "reg", reg, sizeof(reg));
		if (!ret)
			ret = fdt_end_node(fdt);
		if (ret)
			ret = errno_of(ret);
	}
	return ret;
}

int fdt_build(const struct fdt_params *p, void *buf, size_t size, size_t *len)
{
	int err;

	if (!p->mem || size > INT32_MAX ||
	    (p->initrd_size && range_wraps(p->initrd_gpa, p->initrd_size)))
		return -EINVAL;
	err = fdt_create(buf, (int)size);
	if (!err)
		err = fdt_finish_reservemap(buf);
	if (!err)
		err = fdt_begin_node(buf, "");
	if (!err)
		err = fdt_property_u32(buf, "#address-cells", 2);
	if (!err)
		err = fdt_property_u32(buf, "#size-cells", 2);
	if (!err)
		err = fdt_property_string(buf, "compatible", FDT_COMPATIBLE);
	if (!err)
		err = chosen(buf, p);
	if (err)
		return errno_of(err);
	err = memory(buf, p->mem);
	if (err)
		return err;
	err = fdt_end_node(buf);
	if (!err)
		err = fdt_finish(buf);
	if (err)
		return errno_of(err);
	*len = fdt_totalsize(buf);
	return 0;
}
