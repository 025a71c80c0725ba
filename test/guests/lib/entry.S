/*
 * Entry points of every test guest, and the memory they need before C can run.
 *
 * 0x100000: PVH entry (XEN_ELFNOTE_PHYS32_ENTRY): 32-bit protected mode, paging off,
 *           EBX = struct hvm_start_info.
 * 0x100200: 64-bit entry (ELF e_entry; bzImage code32_start + 0x200): long mode with the
 *           loader's identity map, RSI = struct boot_params.
 * Both build our own page tables (identity map of 4 GiB with 2 MiB pages), load our GDT and
 * stack and call guest_start(boot protocol, info address). The AP trampoline is copied to
 * GUEST_TRAMP_BASE by smp.c and brings an AP from real mode to ap_entry64.
 */
#include "memlayout.h"

#define CR0_PE	  0x00000001
#define CR0_PG	  0x80000000
#define CR4_PAE	  0x00000020
#define EFER_LME  0x00000100
#define MSR_EFER  0xc0000080
#define PTE_P_RW  0x003
#define PDE_2M	  0x083 /* present, writable, 2 MiB page */
#define NR_PD	  4     /* 4 page directories of 2 MiB pages: 4 GiB */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .text.entry, "ax"
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	mov	%ebx, %esi		/* hvm_start_info: second argument of guest_start */
	mov	$GUEST_BOOT_PVH, %ebp

	/* The loader need not zero .bss (a bzImage loader copies only the payload). */
	mov	$__bss_start, %edi
	mov	$__bss_end, %ecx
	sub	%edi, %ecx
	shr	$2, %ecx
	xor	%eax, %eax
	rep stosl

	mov	$boot_pdpt + PTE_P_RW, %eax
	mov	%eax, boot_pml4
	mov	$boot_pd + PTE_P_RW, %eax
	xor	%ecx, %ecx
1:	mov	%eax, boot_pdpt(, %ecx, 8)
	add	$0x1000, %eax
	inc	%ecx
	cmp	$NR_PD, %ecx
	jb	1b
	mov	$PDE_2M, %eax
	xor	%ecx, %ecx
2:	mov	%eax, boot_pd(, %ecx, 8)
	add	$0x200000, %eax
	inc	%ecx
	cmp	$NR_PD * 512, %ecx
	jb	2b

	lgdt	boot_gdtr
	mov	%cr4, %eax
	or	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	$boot_pml4, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$EFER_LME, %eax
	wrmsr
	mov	%cr0, %eax
	or	$(CR0_PG | CR0_PE), %eax
	mov	%eax, %cr0
	ljmp	$GUEST_CS64, $common64

	.org	GUEST_ENTRY64_OFFSET
	.code64
	.globl entry64
entry64:
	cli
	cld
	mov	%rsi, %r12		/* boot_params */

	mov	$__bss_start, %edi
	mov	$__bss_end, %ecx
	sub	%edi, %ecx
	shr	$3, %ecx
	xor	%eax, %eax
	rep stosq

	/* The loader's page tables map this code; ours replace them before we touch more. */
	mov	$boot_pdpt + PTE_P_RW, %eax
	mov	%rax, boot_pml4
	mov	$boot_pd + PTE_P_RW, %eax
	xor	%ecx, %ecx
1:	mov	%rax, boot_pdpt(, %rcx, 8)
	add	$0x1000, %eax
	inc	%ecx
	cmp	$NR_PD, %ecx
	jb	1b
	mov	$PDE_2M, %eax
	xor	%ecx, %ecx
2:	mov	%rax, boot_pd(, %rcx, 8)
	add	$0x200000, %rax
	inc	%ecx
	cmp	$NR_PD * 512, %ecx
	jb	2b

	lgdt	boot_gdtr
	mov	$boot_pml4, %eax
	mov	%rax, %cr3
	/* The 64-bit boot protocol promises no stack: use ours for the far return. */
	mov	$bsp_stack + GUEST_BSP_STACK_SIZE, %esp
	pushq	$GUEST_CS64
	pushq	$3f
	lretq
3:	mov	%r12, %rsi
	mov	$GUEST_BOOT_LINUX64, %ebp

common64:
	mov	$GUEST_DS, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	mov	$bsp_stack + GUEST_BSP_STACK_SIZE, %esp
	mov	%ebp, %edi
	mov	%esi, %esi		/* zero-extend: both protocols pass a 32-bit address */
	call	guest_start
4:	cli
	hlt
	jmp	4b

/* An AP arrives here from the trampoline on the GDT and page tables above. */
	.globl ap_entry64
ap_entry64:
	mov	$GUEST_DS, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	/* Find our slot by APIC id, so APs that start late cannot take another's stack. */
	mov	GUEST_TRAMP_BASE + (tramp_params - tramp_start) + TRAMP_P_LAPIC, %rbx
	mov	0x20(%rbx), %eax
	shr	$24, %eax
	shl	$4, %rax
	add	GUEST_TRAMP_BASE + (tramp_params - tramp_start) + TRAMP_P_TABLE, %rax
	mov	8(%rax), %rsp
	mov	(%rax), %rdi
	test	%rdi, %rdi
	jz	5f
	test	%rsp, %rsp
	jz	5f
	call	guest_ap_start
5:	cli
	hlt
	jmp	5b

/*
 * The AP trampoline: position dependent on GUEST_TRAMP_BASE, copied there by smp.c, entered
 * in real mode at CS:IP = 0x0300:0000 by the SIPI.
 */
	.code16
	.globl tramp_start, tramp_end, tramp_params
tramp_start:
	cli
	cld
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	(tramp_params - tramp_start + TRAMP_P_GDTR)
	mov	%cr0, %eax
	or	$CR0_PE, %eax
	mov	%eax, %cr0
	ljmpl	$GUEST_CS32, $(GUEST_TRAMP_BASE + tramp32 - tramp_start)
	.code32
tramp32:
	mov	$GUEST_DS, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%cr4, %eax
	or	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	GUEST_TRAMP_BASE + (tramp_params - tramp_start) + TRAMP_P_CR3, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$EFER_LME, %eax
	wrmsr
	mov	%cr0, %eax
	or	$CR0_PG, %eax
	mov	%eax, %cr0
	ljmp	$GUEST_CS64, $ap_entry64
	.balign	8
tramp_params:
	.fill	TRAMP_P_SIZE, 1, 0
tramp_end:

	.section .data
	.balign	16
	.globl boot_gdt
boot_gdt:
	.quad	0
	.quad	0x00cf9b000000ffff	/* 0x08: 32-bit code, flat */
	.quad	0x00af9b000000ffff	/* 0x10: 64-bit code */
	.quad	0x00cf93000000ffff	/* 0x18: data, flat */
boot_gdt_end:
	.balign	8
	.globl boot_gdtr
boot_gdtr:
	.word	boot_gdt_end - boot_gdt - 1
	.quad	boot_gdt

	.section .note.Xen, "a", @note
	.balign	4
	.long	4			/* namesz: "Xen\0" */
	.long	8			/* descsz */
	.long	XEN_ELFNOTE_PHYS32_ENTRY
	.asciz	"Xen"
	.balign	4
	.quad	pvh_entry

	.section .bss
	.balign	4096
	.globl boot_pml4
boot_pml4:
	.skip	4096
boot_pdpt:
	.skip	4096
boot_pd:
	.skip	4096 * NR_PD

/* Stacks are not zeroed: nothing reads a stack before writing it. */
	.section .noinit, "aw", @nobits
	.balign	4096
bsp_stack:
	.skip	GUEST_BSP_STACK_SIZE
	.globl ap_stacks
ap_stacks:
	.skip	GUEST_AP_STACK_SIZE * GUEST_MAX_CPUS

	.section .note.GNU-stack, "", @progbits
