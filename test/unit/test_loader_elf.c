/*
 * ELF and PVH kernels: synthetic images built here (64-bit vmlinux-like, 64- and 32-bit PVH),
 * every header field corrupted in turn, every truncation, and the real Debian vmlinux from
 * scripts/fetch-linux when it is there.
 */
#include "core/layout.h"
#include "core/boot/loader.h"
#include "test/unit/loader_check.h"
#include "test/unit/testutil.h"

#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Layout of the synthetic image (file offsets and guest addresses). */
#define IMG_SIZE    0x3000
#define SEG0_OFF    0x1000
#define SEG0_PADDR  0x200000
#define SEG0_FILESZ 0x1000
#define SEG0_MEMSZ  0x3000 /* 0x2000 of bss */
#define SEG1_OFF    0x2000
#define SEG1_PADDR  0x400000
#define SEG1_SIZE   0x800
#define NOTE_OFF    0x2800
#define ENTRY64	    0x200100
#define ENTRY_PVH   0x200080
#define PHOFF	    0x40
#define NPHDR	    3
#define RAM	    MiB(64)

struct elf_opts {
	bool is32;
	unsigned pvh_desc;   /* 0: no PVH note; 4 or 8: size of its value */
	unsigned note_align; /* 4 or 8 */
};

static uint8_t pattern(uint64_t i, unsigned seg)
{
	return (uint8_t)(i * 7 + seg * 13 + 1);
}

/* Appends one note at *pos (offsets aligned within the segment, as loaders read them). */
static void put_note(uint8_t *seg, size_t *pos, unsigned align, uint32_t type, const char *name,
		     const void *desc, uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;
	Elf64_Nhdr n = {namesz, descsz, type};
	size_t p = *pos;

	memcpy(seg + p, &n, sizeof(n));
	memcpy(seg + p + sizeof(n), name, namesz);
	p = ALIGN_UP(p + sizeof(n) + namesz, align);
	memcpy(seg + p, desc, descsz);
	*pos = ALIGN_UP(p + descsz, align);
}

/* Offset of program header i in the image, for either class. */
static size_t phdr_at(const struct elf_opts *o, unsigned i)
{
	return PHOFF + i * (o->is32 ? sizeof(Elf32_Phdr) : sizeof(Elf64_Phdr));
}

static void set_phdr(uint8_t *img, const struct elf_opts *o, unsigned i, uint32_t type,
		     uint64_t off, uint64_t paddr, uint64_t filesz, uint64_t memsz, uint64_t align)
{
	if (o->is32) {
		Elf32_Phdr p = {.p_type = type,
				.p_offset = (uint32_t)off,
				.p_vaddr = (uint32_t)paddr,
				.p_paddr = (uint32_t)paddr,
				.p_filesz = (uint32_t)filesz,
				.p_memsz = (uint32_t)memsz,
				.p_align = (uint32_t)align};

		memcpy(img + phdr_at(o, i), &p, sizeof(p));
	} else {
		Elf64_Phdr p = {.p_type = type,
				.p_offset = off,
				.p_vaddr = paddr,
				.p_paddr = paddr,
				.p_filesz = filesz,
				.p_memsz = memsz,
				.p_align = align};

		memcpy(img + phdr_at(o, i), &p, sizeof(p));
	}
}

/*
 * Builds the image: two PT_LOADs (the first with bss) and a PT_NOTE with a GNU note, which
 * ends the file, so that every shorter prefix cuts something the loader needs.
 */
static uint8_t *build_elf_len(const struct elf_opts *o, size_t *len)
{
	uint8_t *img = calloc(1, IMG_SIZE);
	unsigned align = o->note_align ? o->note_align : 4;
	uint8_t build_id[20] = {1, 2, 3};
	uint64_t pvh64 = ENTRY_PVH;
	uint32_t pvh32 = ENTRY_PVH;
	size_t notes = 0;

	ck_assert_ptr_nonnull(img);
	if (o->is32) {
		Elf32_Ehdr e = {.e_type = ET_EXEC,
				.e_machine = EM_386,
				.e_version = EV_CURRENT,
				.e_entry = ENTRY64,
				.e_phoff = PHOFF,
				.e_ehsize = sizeof(e),
				.e_phentsize = sizeof(Elf32_Phdr),
				.e_phnum = NPHDR};

		memcpy(e.e_ident, ELFMAG, SELFMAG);
		e.e_ident[EI_CLASS] = ELFCLASS32;
		e.e_ident[EI_DATA] = ELFDATA2LSB;
		e.e_ident[EI_VERSION] = EV_CURRENT;
		memcpy(img, &e, sizeof(e));
	} else {
		Elf64_Ehdr e = {.e_type = ET_EXEC,
				.e_machine = EM_X86_64,
				.e_version = EV_CURRENT,
				.e_entry = ENTRY64,
				.e_phoff = PHOFF,
				.e_ehsize = sizeof(e),
				.e_phentsize = sizeof(Elf64_Phdr),
				.e_phnum = NPHDR};

		memcpy(e.e_ident, ELFMAG, SELFMAG);
		e.e_ident[EI_CLASS] = ELFCLASS64;
		e.e_ident[EI_DATA] = ELFDATA2LSB;
		e.e_ident[EI_VERSION] = EV_CURRENT;
		memcpy(img, &e, sizeof(e));
	}
	for (unsigned i = 0; i < SEG0_FILESZ; i++)
		img[SEG0_OFF + i] = pattern(i, 0);
	for (unsigned i = 0; i < SEG1_SIZE; i++)
		img[SEG1_OFF + i] = pattern(i, 1);
	put_note(img + NOTE_OFF, &notes, align, NT_GNU_BUILD_ID, "GNU", build_id, sizeof(build_id));
	if (o->pvh_desc == 8)
		put_note(img + NOTE_OFF, &notes, align, XEN_ELFNOTE_PHYS32_ENTRY, "Xen", &pvh64, 8);
	else if (o->pvh_desc == 4)
		put_note(img + NOTE_OFF, &notes, align, XEN_ELFNOTE_PHYS32_ENTRY, "Xen", &pvh32, 4);
	set_phdr(img, o, 0, PT_LOAD, SEG0_OFF, SEG0_PADDR, SEG0_FILESZ, SEG0_MEMSZ, 0x1000);
	set_phdr(img, o, 1, PT_LOAD, SEG1_OFF, SEG1_PADDR, SEG1_SIZE, SEG1_SIZE, 0x1000);
	set_phdr(img, o, 2, PT_NOTE, NOTE_OFF, 0, notes, notes, align);
	*len = NOTE_OFF + notes;
	return img;
}

static uint8_t *build_elf(const struct elf_opts *o)
{
	size_t len;

	return build_elf_len(o, &len);
}

/* Loads img (with one field patched) and expects a refusal. */
static void refuse_patched(const struct elf_opts *o, size_t off, const void *val, size_t len,
			   enum boot_protocol proto, const char *what)
{
	struct guest_mem m;
	uint8_t *img = build_elf(o);
	int fd;

	memcpy(img + off, val, len);
	fd = fd_with(img, IMG_SIZE);
	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	assert_refused(&m, fd, proto, what);
	guest_mem_destroy(&m);
	close(fd);
	free(img);
}

static void refuse64(size_t off, uint64_t v, size_t len, const char *what)
{
	const struct elf_opts o = {.pvh_desc = 8};

	refuse_patched(&o, off, &v, len, BOOT_PROTO_AUTO, what);
}

static bool guest_matches(const struct guest_mem *m, uint64_t gpa, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len);
	bool same;

	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(guest_mem_read(m, gpa, got, len), 0);
	same = memcmp(got, want, len) == 0;
	free(got);
	return same;
}

static bool guest_is(const struct guest_mem *m, uint64_t gpa, uint8_t byte, size_t len)
{
	uint8_t *want = malloc(len);
	bool same;

	ck_assert_ptr_nonnull(want);
	memset(want, byte, len);
	same = guest_matches(m, gpa, want, len);
	free(want);
	return same;
}

static void load_ok(const struct elf_opts *o, enum boot_protocol proto, struct guest_mem *m,
		    struct kernel_info *ki)
{
	uint8_t *img = build_elf(o);
	int fd = fd_with(img, IMG_SIZE);

	ck_assert_int_eq(guest_mem_create(m, RAM), 0);
	/* Stale bytes where the bss goes prove that the loader zeroes it. */
	ck_assert_int_eq(guest_mem_fill(m, SEG0_PADDR, 0xaa, SEG0_MEMSZ), 0);
	ck_assert_int_eq(kernel_load(m, fd, proto, ki, NULL), 0);
	ck_assert(guest_matches(m, SEG0_PADDR, img + SEG0_OFF, SEG0_FILESZ));
	ck_assert(guest_is(m, SEG0_PADDR + SEG0_FILESZ, 0, SEG0_MEMSZ - SEG0_FILESZ));
	ck_assert(guest_matches(m, SEG1_PADDR, img + SEG1_OFF, SEG1_SIZE));
	close(fd);
	free(img);
}

START_TEST(elf64_loads_at_paddr_and_enters_at_e_entry)
{
	const struct elf_opts o = {0};
	struct kernel_info ki;
	struct guest_mem m;

	load_ok(&o, BOOT_PROTO_AUTO, &m, &ki);
	ck_assert_int_eq(ki.kind, KERNEL_ELF64);
	ck_assert_uint_eq(ki.entry, ENTRY64);
	ck_assert_uint_eq(ki.start, SEG0_PADDR);
	ck_assert_uint_eq(ki.end, SEG1_PADDR + SEG1_SIZE);
	ck_assert(!ki.has_setup_header);
	ck_assert_uint_eq(ki.initrd_addr_max, 0x37ffffff);
	ck_assert_uint_eq(ki.cmdline_size, 2047);
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(elf64_without_note_refuses_pvh)
{
	const struct elf_opts o = {0};
	uint8_t *img = build_elf(&o);
	int fd = fd_with(img, IMG_SIZE);
	struct kernel_info ki;
	struct guest_mem m;
	char msg[1024];

	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	ck_assert_int_eq(load_capture(&m, fd, BOOT_PROTO_PVH, &ki, msg, sizeof(msg)), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(msg, "XEN_ELFNOTE_PHYS32_ENTRY"));
	ck_assert_int_eq(kernel_load(&m, fd, BOOT_PROTO_LINUX, &ki, NULL), 0);
	ck_assert_int_eq(ki.kind, KERNEL_ELF64);
	guest_mem_destroy(&m);
	close(fd);
	free(img);
}
END_TEST

/* AUTO prefers PVH when the note is there; LINUX and PVH force one or the other. */
START_TEST(pvh_note_selects_pvh)
{
	static const unsigned descs[] = {4, 8};
	static const unsigned aligns[] = {4, 8};

	for (unsigned d = 0; d < 2; d++) {
		for (unsigned a = 0; a < 2; a++) {
			const struct elf_opts o = {.pvh_desc = descs[d], .note_align = aligns[a]};
			struct kernel_info ki;
			struct guest_mem m;

			load_ok(&o, BOOT_PROTO_AUTO, &m, &ki);
			ck_assert_int_eq(ki.kind, KERNEL_PVH);
			ck_assert_uint_eq(ki.entry, ENTRY_PVH);
			ck_assert_uint_eq(ki.start, SEG0_PADDR);
			ck_assert_uint_eq(ki.end, SEG1_PADDR + SEG1_SIZE);
			guest_mem_destroy(&m);

			load_ok(&o, BOOT_PROTO_PVH, &m, &ki);
			ck_assert_int_eq(ki.kind, KERNEL_PVH);
			ck_assert_uint_eq(ki.entry, ENTRY_PVH);
			guest_mem_destroy(&m);

			load_ok(&o, BOOT_PROTO_LINUX, &m, &ki);
			ck_assert_int_eq(ki.kind, KERNEL_ELF64);
			ck_assert_uint_eq(ki.entry, ENTRY64);
			guest_mem_destroy(&m);
		}
	}
}
END_TEST

START_TEST(elf32_boots_only_through_pvh)
{
	const struct elf_opts pvh = {.is32 = true, .pvh_desc = 4};
	const struct elf_opts plain = {.is32 = true};
	struct kernel_info ki;
	struct guest_mem m;
	uint8_t *img;
	int fd;

	load_ok(&pvh, BOOT_PROTO_AUTO, &m, &ki);
	ck_assert_int_eq(ki.kind, KERNEL_PVH);
	ck_assert_uint_eq(ki.entry, ENTRY_PVH);
	ck_assert_uint_eq(ki.end, SEG1_PADDR + SEG1_SIZE);
	guest_mem_destroy(&m);

	img = build_elf(&pvh);
	fd = fd_with(img, IMG_SIZE);
	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	assert_refused(&m, fd, BOOT_PROTO_LINUX, "ELF32 with LINUX");
	guest_mem_destroy(&m);
	close(fd);
	free(img);

	img = build_elf(&plain);
	fd = fd_with(img, IMG_SIZE);
	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	assert_refused(&m, fd, BOOT_PROTO_AUTO, "ELF32 without note");
	guest_mem_destroy(&m);
	close(fd);
	free(img);
}
END_TEST

START_TEST(ident_and_header_fields_are_checked)
{
	const struct elf_opts o32 = {.is32 = true, .pvh_desc = 4};
	const struct elf_opts o64 = {0};
	uint64_t entry_gap = 0x300000, entry_low = SEG0_PADDR - 1;
	uint64_t entry_bss_end = SEG0_PADDR + SEG0_MEMSZ;
	uint8_t ff = 0xff;

	refuse64(0, 0x7e, 1, "magic");
	refuse64(EI_CLASS, 3, 1, "class");
	refuse64(EI_CLASS, 0, 1, "class none");
	refuse64(EI_DATA, ELFDATA2MSB, 1, "big endian");
	refuse64(EI_VERSION, 0, 1, "ident version");
	refuse64(offsetof(Elf64_Ehdr, e_type), ET_DYN, 2, "ET_DYN");
	refuse64(offsetof(Elf64_Ehdr, e_type), ET_REL, 2, "ET_REL");
	refuse64(offsetof(Elf64_Ehdr, e_machine), EM_386, 2, "machine i386 in ELF64");
	refuse64(offsetof(Elf64_Ehdr, e_machine), EM_AARCH64, 2, "machine aarch64");
	refuse64(offsetof(Elf64_Ehdr, e_version), 0, 4, "version");
	refuse64(offsetof(Elf64_Ehdr, e_phentsize), 55, 2, "phentsize");
	refuse64(offsetof(Elf64_Ehdr, e_phentsize), 0, 2, "phentsize 0");
	refuse64(offsetof(Elf64_Ehdr, e_phnum), 0, 2, "phnum 0");
	refuse64(offsetof(Elf64_Ehdr, e_phnum), PN_XNUM, 2, "phnum PN_XNUM");
	refuse64(offsetof(Elf64_Ehdr, e_phnum), 300, 2, "phnum beyond file");
	refuse64(offsetof(Elf64_Ehdr, e_phoff), IMG_SIZE - 10, 8, "phoff near the end");
	refuse64(offsetof(Elf64_Ehdr, e_phoff), IMG_SIZE + 1, 8, "phoff beyond file");
	refuse64(offsetof(Elf64_Ehdr, e_phoff), UINT64_MAX - 8, 8, "phoff wraps");
	refuse_patched(&o64, offsetof(Elf64_Ehdr, e_entry), &entry_gap, 8, BOOT_PROTO_LINUX,
		       "entry in no segment");
	refuse_patched(&o64, offsetof(Elf64_Ehdr, e_entry), &entry_low, 8, BOOT_PROTO_LINUX,
		       "entry before the segment");
	refuse_patched(&o64, offsetof(Elf64_Ehdr, e_entry), &entry_bss_end, 8, BOOT_PROTO_AUTO,
		       "entry just past the segment");
	refuse_patched(&o32, offsetof(Elf32_Ehdr, e_machine), "\x3e\x00", 2, BOOT_PROTO_AUTO,
		       "machine x86_64 in ELF32");
	refuse_patched(&o32, offsetof(Elf32_Ehdr, e_phentsize), "\x38\x00", 2, BOOT_PROTO_AUTO,
		       "phentsize 56 in ELF32");
	refuse_patched(&o32, offsetof(Elf32_Ehdr, e_phoff), &ff, 1, BOOT_PROTO_AUTO, "phoff ELF32");
}
END_TEST

/* Offsets of the fields of program header i in the ELF64 image. */
#define PH(i, f) (phdr_at(&(struct elf_opts){0}, i) + offsetof(Elf64_Phdr, f))

START_TEST(segments_are_checked)
{
	refuse64(PH(0, p_filesz), SEG0_MEMSZ + 1, 8, "filesz > memsz");
	refuse64(PH(0, p_offset), IMG_SIZE, 8, "offset at the end");
	refuse64(PH(0, p_offset), IMG_SIZE - SEG0_FILESZ + 1, 8, "data past the end");
	refuse64(PH(0, p_offset), UINT64_MAX - 0x10, 8, "offset + filesz wraps");
	refuse64(PH(1, p_offset), UINT64_MAX, 8, "offset max");
	refuse64(PH(0, p_paddr), LAYOUT_ZERO_PAGE, 8, "below 1 MiB");
	refuse64(PH(0, p_paddr), LAYOUT_HIGH_MEM_START - 0x1000, 8, "straddles 1 MiB");
	refuse64(PH(1, p_paddr), RAM, 8, "beyond RAM");
	refuse64(PH(1, p_paddr), RAM - 0x400, 8, "straddles the end of RAM");
	refuse64(PH(1, p_paddr), UINT64_MAX - 0x3ff, 8, "paddr + memsz wraps");
	refuse64(PH(1, p_paddr), LAYOUT_4G, 8, "above 4 GiB, no RAM there");
	refuse64(PH(0, p_memsz), RAM, 8, "memsz beyond RAM");
	refuse64(PH(0, p_memsz), UINT64_MAX, 8, "memsz max");
	refuse64(PH(0, p_filesz), UINT64_MAX, 8, "filesz max");
}
END_TEST

START_TEST(no_loadable_segment)
{
	uint32_t types[2] = {PT_NULL, PT_NULL};
	const struct elf_opts o = {0};
	struct guest_mem m;
	uint8_t *img = build_elf(&o);
	int fd;

	memcpy(img + PH(0, p_type), &types[0], 4);
	memcpy(img + PH(1, p_type), &types[1], 4);
	fd = fd_with(img, IMG_SIZE);
	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	assert_refused(&m, fd, BOOT_PROTO_AUTO, "no PT_LOAD");
	guest_mem_destroy(&m);
	close(fd);
	free(img);
}
END_TEST

/* A refused image leaves guest memory untouched: nothing is copied before all checks pass. */
START_TEST(refusal_writes_nothing)
{
	const struct elf_opts o = {0};
	uint64_t bad = RAM;
	struct guest_mem m;
	uint8_t *img = build_elf(&o);
	int fd;

	memcpy(img + PH(1, p_paddr), &bad, 8);
	fd = fd_with(img, IMG_SIZE);
	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	assert_refused(&m, fd, BOOT_PROTO_AUTO, "segment 1 outside");
	ck_assert(guest_is(&m, SEG0_PADDR, 0, SEG0_MEMSZ));
	guest_mem_destroy(&m);
	close(fd);
	free(img);
}
END_TEST

START_TEST(outside_memory_message_names_segment_and_size)
{
	const struct elf_opts o = {0};
	uint64_t bad = MiB(300);
	struct kernel_info ki;
	struct guest_mem m;
	uint8_t *img = build_elf(&o);
	char msg[1024];
	int fd;

	memcpy(img + PH(1, p_paddr), &bad, 8);
	fd = fd_with(img, IMG_SIZE);
	ck_assert_int_eq(guest_mem_create(&m, MiB(256)), 0);
	ck_assert_int_eq(load_capture(&m, fd, BOOT_PROTO_AUTO, &ki, msg, sizeof(msg)), -ENOEXEC);
	ck_assert_str_eq(msg, "[crosvm error] kernel: ELF segment 1 [0x12c00000,0x12c00800) lies "
			      "outside guest memory (256 MiB)\n");
	guest_mem_destroy(&m);
	close(fd);
	free(img);
}
END_TEST

/* Offset of the Xen note in the PT_NOTE segment (after the 36-byte GNU build-id note). */
#define XEN_NOTE (NOTE_OFF + 36)

START_TEST(pvh_note_is_checked)
{
	const struct elf_opts o = {.pvh_desc = 8};
	const struct elf_opts o4 = {.pvh_desc = 4};
	uint32_t big = 0x1000, six = 6, huge = UINT32_MAX;
	uint64_t align16 = 16, high = LAYOUT_4G + SEG0_PADDR, outside = 0x300000;
	uint64_t note_len = 36 + 24;

	refuse_patched(&o, XEN_NOTE, &big, 4, BOOT_PROTO_AUTO, "namesz past segment");
	refuse_patched(&o, XEN_NOTE + 4, &big, 4, BOOT_PROTO_AUTO, "descsz past segment");
	refuse_patched(&o, XEN_NOTE, &huge, 4, BOOT_PROTO_AUTO, "namesz wraps");
	refuse_patched(&o, XEN_NOTE + 4, &huge, 4, BOOT_PROTO_AUTO, "descsz wraps");
	refuse_patched(&o, NOTE_OFF + 4, &big, 4, BOOT_PROTO_PVH, "first note overruns");
	refuse_patched(&o, XEN_NOTE + 4, &six, 4, BOOT_PROTO_AUTO, "6-byte entry");
	refuse_patched(&o, XEN_NOTE + 16, &high, 8, BOOT_PROTO_AUTO, "entry above 4 GiB");
	refuse_patched(&o, XEN_NOTE + 16, &outside, 8, BOOT_PROTO_AUTO, "entry not loaded");
	refuse_patched(&o4, XEN_NOTE + 16, &outside, 4, BOOT_PROTO_PVH, "entry not loaded (4)");
	refuse_patched(&o, PH(2, p_align), &align16, 8, BOOT_PROTO_AUTO, "note align 16");
	note_len -= 13; /* cuts the Xen note header */
	refuse_patched(&o, PH(2, p_filesz), &note_len, 8, BOOT_PROTO_AUTO, "half a note");
	note_len = IMG_SIZE;
	refuse_patched(&o, PH(2, p_filesz), &note_len, 8, BOOT_PROTO_AUTO, "notes past the file");
	note_len = UINT64_MAX;
	refuse_patched(&o, PH(2, p_filesz), &note_len, 8, BOOT_PROTO_AUTO, "notes size max");
	note_len = MiB(2);
	refuse_patched(&o, PH(2, p_offset), &note_len, 8, BOOT_PROTO_AUTO, "notes offset");
}
END_TEST

/* A note with another owner or type is not the entry, whatever its value. */
START_TEST(other_notes_are_ignored)
{
	const struct elf_opts o = {.pvh_desc = 8};
	struct kernel_info ki;
	struct guest_mem m;
	uint8_t *img = build_elf(&o);
	int fd;

	memcpy(img + XEN_NOTE + 12, "Xem", 4);
	fd = fd_with(img, IMG_SIZE);
	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	ck_assert_int_eq(kernel_load(&m, fd, BOOT_PROTO_AUTO, &ki, NULL), 0);
	ck_assert_int_eq(ki.kind, KERNEL_ELF64);
	guest_mem_destroy(&m);
	close(fd);
	free(img);
}
END_TEST

/* Every prefix of a valid image is refused (with a message), never loaded or crashed on. */
static void every_truncation(const struct elf_opts *o)
{
	size_t full;
	uint8_t *img = build_elf_len(o, &full);

	assert_every_truncation_refused(img, full, RAM);
	free(img);
}

START_TEST(every_truncation_is_refused)
{
	const struct elf_opts o64 = {.pvh_desc = 8};
	const struct elf_opts o32 = {.is32 = true, .pvh_desc = 4};

	every_truncation(&o64);
	every_truncation(&o32);
}
END_TEST

START_TEST(empty_and_garbage_files)
{
	uint8_t garbage[4096];
	struct kernel_info ki;
	struct guest_mem m;
	char msg[1024];
	int fd = memfd_create("empty", 0);

	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	ck_assert_int_eq(load_capture(&m, fd, BOOT_PROTO_AUTO, &ki, msg, sizeof(msg)), -ENOEXEC);
	ck_assert_str_eq(msg, "[crosvm error] kernel: the file is empty\n");
	close(fd);
	for (unsigned i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)(i * 31 + 7);
	fd = fd_with(garbage, sizeof(garbage));
	ck_assert_int_eq(load_capture(&m, fd, BOOT_PROTO_AUTO, &ki, msg, sizeof(msg)), -ENOEXEC);
	ck_assert_str_eq(msg, "[crosvm error] kernel: not an ELF or bzImage kernel\n");
	close(fd);
	guest_mem_destroy(&m);
}
END_TEST

/* ---- The real Debian kernel (scripts/fetch-linux) ---- */

START_TEST(real_vmlinux)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	struct kernel_info ki;
	struct guest_mem m;
	uint8_t *want;
	int fd;

	if (!real_kernel_open("vmlinux", &fd))
		return;
	ck_assert_int_eq(pread(fd, &eh, sizeof(eh), 0), sizeof(eh));
	ck_assert_int_eq(pread(fd, &ph, sizeof(ph), (off_t)eh.e_phoff), sizeof(ph));
	ck_assert_int_eq(ph.p_type, PT_LOAD);

	/* crosvm's default guest size must take Debian's kernel. */
	ck_assert_int_eq(guest_mem_create(&m, MiB(256)), 0);
	ck_assert_int_eq(kernel_load(&m, fd, BOOT_PROTO_LINUX, &ki, NULL), 0);
	ck_assert_int_eq(ki.kind, KERNEL_ELF64);
	ck_assert_uint_eq(ki.entry, eh.e_entry);
	ck_assert_uint_eq(ki.entry, 0x1000000); /* startup_64 at LOAD_PHYSICAL_ADDR */
	ck_assert_uint_eq(ki.start, ph.p_paddr);
	ck_assert_uint_gt(ki.end, ki.start);
	ck_assert_uint_le(ki.end, MiB(256));
	want = malloc(4096);
	ck_assert_ptr_nonnull(want);
	ck_assert_int_eq(pread(fd, want, 4096, (off_t)ph.p_offset), 4096);
	ck_assert(guest_matches(&m, ph.p_paddr, want, 4096));
	free(want);

	/* Debian builds with CONFIG_PVH, so the same file also boots through PVH. */
	ck_assert_int_eq(kernel_load(&m, fd, BOOT_PROTO_AUTO, &ki, NULL), 0);
	ck_assert_int_eq(ki.kind, KERNEL_PVH);
	ck_assert_uint_lt(ki.entry, LAYOUT_4G);
	ck_assert(ki.entry >= ki.start && ki.entry < ki.end);
	ck_assert_uint_ne(ki.entry, eh.e_entry);
	guest_mem_destroy(&m);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("loader_elf");
	TCase *tc = tcase_create("elf");

	tcase_add_test(tc, elf64_loads_at_paddr_and_enters_at_e_entry);
	tcase_add_test(tc, elf64_without_note_refuses_pvh);
	tcase_add_test(tc, pvh_note_selects_pvh);
	tcase_add_test(tc, elf32_boots_only_through_pvh);
	tcase_add_test(tc, ident_and_header_fields_are_checked);
	tcase_add_test(tc, segments_are_checked);
	tcase_add_test(tc, no_loadable_segment);
	tcase_add_test(tc, refusal_writes_nothing);
	tcase_add_test(tc, outside_memory_message_names_segment_and_size);
	tcase_add_test(tc, pvh_note_is_checked);
	tcase_add_test(tc, other_notes_are_ignored);
	tcase_add_test(tc, every_truncation_is_refused);
	tcase_add_test(tc, empty_and_garbage_files);
	tcase_add_test(tc, real_vmlinux);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
