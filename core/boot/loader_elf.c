/*
 * ELF kernels: a 64-bit vmlinux entered in long mode, or any ELF (64 or 32 bit) carrying a
 * Xen PVH entry note. Everything in the file is checked before the first byte is copied, so
 * a refused image leaves guest memory untouched.
 */
#include "core/boot/loader.h"
#include "core/layout.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

/* A note segment is a handful of small records; anything larger is not a kernel we know. */
#define NOTE_SEGMENT_MAX MiB(1)

/* Class-independent view of the headers. */
struct elf_hdr {
	bool is64;
	uint64_t entry, phoff;
	unsigned phentsize, phnum;
};

struct elf_seg {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz, align;
};

bool loader_is_elf(const uint8_t *head, size_t len)
{
	return len >= SELFMAG && memcmp(head, ELFMAG, SELFMAG) == 0;
}

static int parse_ehdr(int fd, uint64_t file_size, struct elf_hdr *h, const struct logger *lg)
{
	union {
		Elf64_Ehdr e64;
		Elf32_Ehdr e32;
	} u;
	const unsigned char *id = u.e64.e_ident;
	unsigned type, machine, version;
	size_t need;
	int ret;

	if (file_size < EI_NIDENT) {
		log_err(lg, "kernel: ELF file truncated (%llu bytes)",
			(unsigned long long)file_size);
		return -ENOEXEC;
	}
	ret = pread_full(fd, &u, MIN(file_size, sizeof(u)), 0);
	if (ret < 0) {
		log_err(lg, "kernel: cannot read the ELF header: %s", strerror(-ret));
		return ret;
	}
	if (id[EI_CLASS] != ELFCLASS64 && id[EI_CLASS] != ELFCLASS32) {
		log_err(lg, "kernel: ELF class %u is neither 32 nor 64 bit", id[EI_CLASS]);
		return -ENOEXEC;
	}
	if (id[EI_DATA] != ELFDATA2LSB) {
		log_err(lg, "kernel: ELF is not little endian (EI_DATA %u)", id[EI_DATA]);
		return -ENOEXEC;
	}
	if (id[EI_VERSION] != EV_CURRENT) {
		log_err(lg, "kernel: ELF identification version %u is not 1", id[EI_VERSION]);
		return -ENOEXEC;
	}
	h->is64 = id[EI_CLASS] == ELFCLASS64;
	need = h->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	if (file_size < need) {
		log_err(lg, "kernel: ELF header truncated (%llu of %zu bytes)",
			(unsigned long long)file_size, need);
		return -ENOEXEC;
	}
	if (h->is64) {
		type = u.e64.e_type;
		machine = u.e64.e_machine;
		version = u.e64.e_version;
		h->entry = u.e64.e_entry;
		h->phoff = u.e64.e_phoff;
		h->phentsize = u.e64.e_phentsize;
		h->phnum = u.e64.e_phnum;
	} else {
		type = u.e32.e_type;
		machine = u.e32.e_machine;
		version = u.e32.e_version;
		h->entry = u.e32.e_entry;
		h->phoff = u.e32.e_phoff;
		h->phentsize = u.e32.e_phentsize;
		h->phnum = u.e32.e_phnum;
	}
	if (version != EV_CURRENT) {
		log_err(lg, "kernel: ELF version %u is not 1", version);
		return -ENOEXEC;
	}
	if (machine != (h->is64 ? EM_X86_64 : EM_386)) {
		log_err(lg, "kernel: ELF machine %u is not %s", machine,
			h->is64 ? "x86_64 (62)" : "i386 (3)");
		return -ENOEXEC;
	}
	if (type != ET_EXEC) {
		log_err(lg, "kernel: ELF type %u is not an executable (ET_EXEC)", type);
		return -ENOEXEC;
	}
	if (h->phentsize != (h->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr))) {
		log_err(lg, "kernel: ELF program header size %u is wrong", h->phentsize);
		return -ENOEXEC;
	}
	/* PN_XNUM would move the count into section 0, which no kernel needs. */
	if (h->phnum == 0 || h->phnum == PN_XNUM) {
		log_err(lg, "kernel: ELF has %u program headers", h->phnum);
		return -ENOEXEC;
	}
	if (h->phoff > file_size || (uint64_t)h->phnum * h->phentsize > file_size - h->phoff) {
		log_err(lg,
			"kernel: ELF program headers [0x%llx, +%u*%u) lie outside the file "
			"(%llu bytes)",
			(unsigned long long)h->phoff, h->phnum, h->phentsize,
			(unsigned long long)file_size);
		return -ENOEXEC;
	}
	return 0;
}

static int read_phdrs(int fd, const struct elf_hdr *h, struct elf_seg **out,
		      const struct logger *lg)
{
	size_t len = (size_t)h->phnum * h->phentsize;
	struct elf_seg *segs;
	uint8_t *raw;
	int ret;

	raw = malloc(len);
	segs = calloc(h->phnum, sizeof(*segs));
	if (!raw || !segs) {
		ret = -ENOMEM;
		goto err;
	}
	ret = pread_full(fd, raw, len, (off_t)h->phoff);
	if (ret < 0) {
		log_err(lg, "kernel: cannot read the ELF program headers: %s", strerror(-ret));
		goto err;
	}
	for (unsigned i = 0; i < h->phnum; i++) {
		if (h->is64) {
			Elf64_Phdr p;

			memcpy(&p, raw + (size_t)i * sizeof(p), sizeof(p));
			segs[i] = (struct elf_seg){.type = p.p_type,
						   .offset = p.p_offset,
						   .paddr = p.p_paddr,
						   .filesz = p.p_filesz,
						   .memsz = p.p_memsz,
						   .align = p.p_align};
		} else {
			Elf32_Phdr p;

			memcpy(&p, raw + (size_t)i * sizeof(p), sizeof(p));
			segs[i] = (struct elf_seg){.type = p.p_type,
						   .offset = p.p_offset,
						   .paddr = p.p_paddr,
						   .filesz = p.p_filesz,
						   .memsz = p.p_memsz,
						   .align = p.p_align};
		}
	}
	free(raw);
	*out = segs;
	return 0;
err:
	free(raw);
	free(segs);
	return ret;
}

static int in_file(const struct elf_seg *s, uint64_t file_size)
{
	return s->offset <= file_size && s->filesz <= file_size - s->offset;
}

/* Reads one descriptor of a PHYS32_ENTRY note: Linux emits 8 bytes, others 4. */
static int pvh_entry_value(const uint8_t *desc, uint32_t descsz, uint64_t *entry,
			   const struct logger *lg)
{
	uint32_t v32;

	if (descsz == 8) {
		memcpy(entry, desc, 8);
	} else if (descsz == 4) {
		memcpy(&v32, desc, 4);
		*entry = v32;
	} else {
		log_err(lg, "kernel: PVH entry note has a %u-byte value (need 4 or 8)", descsz);
		return -ENOEXEC;
	}
	if (*entry >= LAYOUT_4G) {
		log_err(lg, "kernel: PVH entry 0x%llx is not a 32-bit address",
			(unsigned long long)*entry);
		return -ENOEXEC;
	}
	return 0;
}

/* Walks the notes of one PT_NOTE segment; sets *found on the first PHYS32_ENTRY note. */
static int scan_notes(int fd, uint64_t file_size, const struct elf_seg *s, unsigned idx,
		      bool *found, uint64_t *entry, const struct logger *lg)
{
	uint64_t align, pos = 0;
	uint8_t *buf = NULL;
	int ret;

	if (s->align <= 4) {
		align = 4;
	} else if (s->align == 8) {
		align = 8;
	} else {
		log_err(lg, "kernel: ELF note segment %u has alignment %llu (need 4 or 8)", idx,
			(unsigned long long)s->align);
		return -ENOEXEC;
	}
	if (!in_file(s, file_size)) {
		log_err(lg, "kernel: ELF note segment %u [0x%llx, +0x%llx) lies outside the file",
			idx, (unsigned long long)s->offset, (unsigned long long)s->filesz);
		return -ENOEXEC;
	}
	if (s->filesz > NOTE_SEGMENT_MAX) {
		log_err(lg, "kernel: ELF note segment %u is too large (%llu bytes)", idx,
			(unsigned long long)s->filesz);
		return -ENOEXEC;
	}
	if (!s->filesz)
		return 0;
	buf = malloc(s->filesz);
	if (!buf)
		return -ENOMEM;
	ret = pread_full(fd, buf, s->filesz, (off_t)s->offset);
	if (ret < 0) {
		log_err(lg, "kernel: cannot read ELF note segment %u: %s", idx, strerror(-ret));
		goto out;
	}
	/* Offsets are aligned within the segment: name at +12, desc and next note aligned up. */
	while (pos < s->filesz) {
		Elf64_Nhdr n; /* the same three 32-bit words in both classes */
		uint64_t name, desc, next;

		if (s->filesz - pos < sizeof(n)) {
			ret = -ENOEXEC;
			goto bad;
		}
		memcpy(&n, buf + pos, sizeof(n));
		name = pos + sizeof(n);
		if (n.n_namesz > s->filesz - name) {
			ret = -ENOEXEC;
			goto bad;
		}
		desc = ALIGN_UP(name + n.n_namesz, align);
		if (desc > s->filesz || n.n_descsz > s->filesz - desc) {
			ret = -ENOEXEC;
			goto bad;
		}
		if (!*found && n.n_type == XEN_ELFNOTE_PHYS32_ENTRY && n.n_namesz == 4 &&
		    memcmp(buf + name, "Xen", 4) == 0) {
			ret = pvh_entry_value(buf + desc, n.n_descsz, entry, lg);
			if (ret < 0)
				goto out;
			*found = true;
		}
		/* The last note may omit its trailing padding. */
		next = ALIGN_UP(desc + n.n_descsz, align);
		pos = MIN(next, s->filesz);
	}
	ret = 0;
	goto out;
bad:
	log_err(lg, "kernel: ELF note segment %u has a malformed note at offset 0x%llx", idx,
		(unsigned long long)pos);
out:
	free(buf);
	return ret;
}

/* Checks one PT_LOAD against the file and guest RAM; widens [*start, *end). */
static int check_load(const struct guest_mem *m, uint64_t file_size, const struct elf_seg *s,
		      unsigned idx, uint64_t *start, uint64_t *end, const struct logger *lg)
{
	if (s->filesz > s->memsz) {
		log_err(lg,
			"kernel: ELF segment %u file size 0x%llx exceeds its memory size "
			"0x%llx",
			idx, (unsigned long long)s->filesz, (unsigned long long)s->memsz);
		return -ENOEXEC;
	}
	if (!in_file(s, file_size)) {
		log_err(lg,
			"kernel: ELF segment %u [0x%llx, +0x%llx) lies outside the file "
			"(%llu bytes)",
			idx, (unsigned long long)s->offset, (unsigned long long)s->filesz,
			(unsigned long long)file_size);
		return -ENOEXEC;
	}
	if (!s->memsz)
		return 0;
	if (range_wraps(s->paddr, s->memsz)) {
		log_err(lg, "kernel: ELF segment %u [0x%llx, +0x%llx) wraps around", idx,
			(unsigned long long)s->paddr, (unsigned long long)s->memsz);
		return -ENOEXEC;
	}
	/* The zero page, command line, page tables and ACPI tables live below 1 MiB. */
	if (s->paddr < LAYOUT_HIGH_MEM_START) {
		log_err(lg,
			"kernel: ELF segment %u at 0x%llx lies below 1 MiB, where the boot "
			"data lives",
			idx, (unsigned long long)s->paddr);
		return -ENOEXEC;
	}
	if (!guest_mem_valid(m, s->paddr, s->memsz)) {
		log_err(lg,
			"kernel: ELF segment %u [0x%llx,0x%llx) lies outside guest memory "
			"(%llu MiB)",
			idx, (unsigned long long)s->paddr,
			(unsigned long long)(s->paddr + s->memsz),
			(unsigned long long)(m->size >> 20));
		return -ENOEXEC;
	}
	*start = MIN(*start, s->paddr);
	*end = MAX(*end, s->paddr + s->memsz);
	return 0;
}

static bool entry_loaded(const struct elf_seg *segs, unsigned n, uint64_t entry)
{
	for (unsigned i = 0; i < n; i++)
		if (segs[i].type == PT_LOAD && segs[i].memsz &&
		    range_contains(segs[i].paddr, segs[i].memsz, entry, 1))
			return true;
	return false;
}

static int copy_segments(const struct guest_mem *m, int fd, const struct elf_seg *segs, unsigned n,
			 const struct logger *lg)
{
	for (unsigned i = 0; i < n; i++) {
		const struct elf_seg *s = &segs[i];
		uint8_t *p;
		int ret;

		if (s->type != PT_LOAD || !s->memsz)
			continue;
		ret = guest_mem_ptr(m, s->paddr, s->memsz, (void **)&p);
		if (ret < 0)
			return ret;
		ret = pread_full(fd, p, s->filesz, (off_t)s->offset);
		if (ret < 0) {
			log_err(lg, "kernel: cannot read ELF segment %u: %s", i, strerror(-ret));
			return ret;
		}
		memset(p + s->filesz, 0, s->memsz - s->filesz);
	}
	return 0;
}

int loader_elf_load(const struct guest_mem *m, int fd, uint64_t file_size, enum boot_protocol proto,
		    struct kernel_info *ki, const struct logger *lg)
{
	uint64_t start = UINT64_MAX, end = 0, pvh_entry = 0;
	struct elf_seg *segs = NULL;
	struct elf_hdr h;
	bool pvh = false;
	int ret;

	ret = parse_ehdr(fd, file_size, &h, lg);
	if (ret < 0)
		return ret;
	ret = read_phdrs(fd, &h, &segs, lg);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < h.phnum && proto != BOOT_PROTO_LINUX; i++) {
		if (segs[i].type != PT_NOTE)
			continue;
		ret = scan_notes(fd, file_size, &segs[i], i, &pvh, &pvh_entry, lg);
		if (ret < 0)
			goto out;
	}
	if (proto == BOOT_PROTO_PVH && !pvh) {
		log_err(lg, "kernel: PVH boot needs a XEN_ELFNOTE_PHYS32_ENTRY note, this ELF has "
			    "none");
		ret = -ENOEXEC;
		goto out;
	}
	if (!h.is64 && !pvh) {
		log_err(lg,
			"kernel: a 32-bit ELF kernel can only boot through PVH "
			"(XEN_ELFNOTE_PHYS32_ENTRY note)%s",
			proto == BOOT_PROTO_LINUX ? ", not the Linux 64-bit entry" : "");
		ret = -ENOEXEC;
		goto out;
	}
	for (unsigned i = 0; i < h.phnum; i++) {
		if (segs[i].type != PT_LOAD)
			continue;
		ret = check_load(m, file_size, &segs[i], i, &start, &end, lg);
		if (ret < 0)
			goto out;
	}
	if (end == 0) {
		log_err(lg, "kernel: ELF has no loadable segment");
		ret = -ENOEXEC;
		goto out;
	}
	*ki = (struct kernel_info){
		.kind = pvh ? KERNEL_PVH : KERNEL_ELF64,
		.entry = pvh ? pvh_entry : h.entry,
		.start = start,
		.end = end,
		.initrd_addr_max = LOADER_INITRD_ADDR_MAX_DEFAULT,
		.cmdline_size = LOADER_CMDLINE_SIZE_DEFAULT,
	};
	if (!entry_loaded(segs, h.phnum, ki->entry)) {
		log_err(lg, "kernel: ELF %sentry 0x%llx is not inside a loaded segment",
			pvh ? "PVH " : "", (unsigned long long)ki->entry);
		ret = -ENOEXEC;
		goto out;
	}
	ret = copy_segments(m, fd, segs, h.phnum, lg);
out:
	free(segs);
	return ret;
}
