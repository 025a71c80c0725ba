#include "core/boot/pvh.h"
#include "core/layout.h"

#include <string.h>

/* hvm_start_info, the module list and the memory map share the page at LAYOUT_PVH_START_INFO. */
#define PVH_PAGE_SIZE 0x1000
#define PVH_MODLIST   (LAYOUT_PVH_START_INFO + sizeof(struct hvm_start_info))
#define PVH_MEMMAP    (PVH_MODLIST + sizeof(struct hvm_modlist_entry))
#define PVH_MEMMAP_MAX                                                                             \
	((LAYOUT_PVH_START_INFO + PVH_PAGE_SIZE - PVH_MEMMAP) /                                    \
	 sizeof(struct hvm_memmap_table_entry))

int pvh_write(const struct guest_mem *m, const struct boot_config *bc, uint64_t *start_info)
{
	struct hvm_memmap_table_entry map[PVH_MEMMAP_MAX];
	struct e820_entry e820[PVH_MEMMAP_MAX];
	struct hvm_start_info si = {
		.magic = XEN_HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = LAYOUT_CMDLINE,
		.rsdp_paddr = bc->acpi_rsdp,
		.memmap_paddr = PVH_MEMMAP,
	};
	size_t len = bc->cmdline ? strlen(bc->cmdline) : 0;
	unsigned nr;
	int ret;

	if (len > LAYOUT_CMDLINE_MAX - 1)
		return -E2BIG;
	if (bc->initrd_size && range_wraps(bc->initrd_gpa, bc->initrd_size))
		return -EINVAL;
	ret = e820_build(m, e820, PVH_MEMMAP_MAX, &nr);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < nr; i++)
		map[i] = (struct hvm_memmap_table_entry){
			.addr = e820[i].addr, .size = e820[i].size, .type = e820[i].type};
	si.memmap_entries = nr;
	/* Write everything before the header, so a failure leaves no valid-looking magic. */
	ret = guest_mem_fill(m, LAYOUT_PVH_START_INFO, 0, PVH_PAGE_SIZE);
	if (!ret)
		ret = guest_mem_write(m, LAYOUT_CMDLINE, bc->cmdline ? bc->cmdline : "", len + 1);
	if (!ret && bc->initrd_size) {
		struct hvm_modlist_entry mod = {.paddr = bc->initrd_gpa, .size = bc->initrd_size};

		ret = guest_mem_write(m, PVH_MODLIST, &mod, sizeof(mod));
		si.nr_modules = 1;
		si.modlist_paddr = PVH_MODLIST;
	}
	if (!ret)
		ret = guest_mem_write(m, PVH_MEMMAP, map, nr * sizeof(map[0]));
	if (!ret)
		ret = guest_mem_write(m, LAYOUT_PVH_START_INFO, &si, sizeof(si));
	if (ret < 0)
		return ret;
	*start_info = LAYOUT_PVH_START_INFO;
	return 0;
}
