/*
 * Real-mode setup code of the test guests' bzImage, for loaders that start a bzImage the
 * BIOS way (QEMU's -kernel): entered at CS = DS-segment + 0x20, IP = 0 with DS = ES = SS =
 * the segment of the loaded setup (which holds the setup header the loader filled in).
 *
 * It does what a 64-bit boot loader does, laid out as crosvm lays it out, then enters the
 * guest's 64-bit entry exactly as such a loader would:
 *   - a fresh zero page at 0x7000 with the setup header copied in and the BIOS e820 map;
 *   - identity page tables for 4 GiB at 0x9000 (PML4), 0xa000 (PDPT), 0xb000 (4 PDs);
 *   - a GDT with 0x10 = 64-bit code, 0x18 = data; long mode; RSI = 0x7000, RSP = 0x8000;
 *     jump to 0x100200.
 * A 64-bit loader never runs this code. mkbzimage puts it at file offset SETUP_CODE_OFFSET
 * (setup_header's jump lands there), i.e. at CS:0x80, and it is linked at 0.
 */
#define SETUP_CODE_PARAS  0x8	  /* 0x80 bytes from the entry CS: our code's own segment */
#define ZERO_PAGE	  0x7000
#define BOOT_STACK	  0x8000
#define PML4		  0x9000
#define PDPT		  0xa000
#define PD		  0xb000
#define HDR_START	  0x1f1
#define HDR_END		  0x26c
#define E820_ENTRIES	  0x1e8
#define E820_TABLE	  0x2d0
#define E820_MAX	  128
#define SMAP		  0x534d4150
#define ENTRY64		  0x100200

	.code16
	.text
	.globl _start
_start:
	cli
	cld
	/* Reload CS so that our labels (linked at 0) are offsets in it. */
	mov	%cs, %ax
	add	$SETUP_CODE_PARAS, %ax
	push	%ax
	push	$1f
	lret
1:
	/* Zero page: clear it, copy the header from the loaded setup (DS:0). */
	mov	$(ZERO_PAGE >> 4), %ax
	mov	%ax, %es
	xor	%di, %di
	xor	%ax, %ax
	mov	$2048, %cx
	rep stosw
	mov	$HDR_START, %si
	mov	$HDR_START, %di
	mov	$(HDR_END - HDR_START), %cx
	rep movsb

	/*
	 * The BIOS memory map, straight into e820_table. Some BIOSes (qboot) store through
	 * DS:EDI rather than ES:DI, so make both point at the new zero page, 32-bit clean.
	 */
	mov	%es, %ax
	mov	%ax, %ds
	xor	%ebx, %ebx
	xor	%bp, %bp
	mov	$E820_TABLE, %edi
2:	mov	$0xe820, %eax
	mov	$SMAP, %edx
	mov	$20, %ecx
	int	$0x15
	jc	3f
	cmp	$SMAP, %eax
	jne	3f
	inc	%bp
	add	$20, %edi
	test	%ebx, %ebx
	jz	3f
	cmp	$E820_MAX, %bp
	jb	2b
3:	mov	%bp, %ax
	mov	%al, %es:E820_ENTRIES

	/* GDT and far pointer hold linear addresses: patch in where we were loaded. */
	xor	%eax, %eax
	mov	%cs, %ax
	shl	$4, %eax
	mov	%cs, %dx
	mov	%dx, %ds
	lea	gdt(%eax), %edx
	mov	%edx, gdtr + 2
	lea	pm32(%eax), %edx
	mov	%edx, pm32_ptr
	lgdtl	gdtr
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	*pm32_ptr

	.code32
pm32:
	mov	$0x18, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	$BOOT_STACK, %esp
	mov	$PML4, %edi
	xor	%eax, %eax
	mov	$(2 * 4096 / 4), %ecx
	rep stosl
	movl	$(PDPT + 3), PML4
	mov	$(PD + 3), %eax
	xor	%ecx, %ecx
4:	mov	%eax, PDPT(, %ecx, 8)
	add	$0x1000, %eax
	inc	%ecx
	cmp	$4, %ecx
	jb	4b
	mov	$0x83, %eax
	xor	%ecx, %ecx
5:	mov	%eax, PD(, %ecx, 8)
	movl	$0, PD + 4(, %ecx, 8)
	add	$0x200000, %eax
	inc	%ecx
	cmp	$2048, %ecx
	jb	5b
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	$PML4, %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000000, %eax
	mov	%eax, %cr0
	mov	$ZERO_PAGE, %esi
	ljmp	$0x10, $ENTRY64

	.balign	8
gdt:
	.quad	0
	.quad	0x00cf9b000000ffff	/* 0x08: 32-bit code */
	.quad	0x00af9b000000ffff	/* 0x10: 64-bit code */
	.quad	0x00cf93000000ffff	/* 0x18: data */
gdt_end:
gdtr:
	.word	gdt_end - gdt - 1
	.long	0
pm32_ptr:
	.long	0
	.word	0x08

	.section .note.GNU-stack, "", @progbits
