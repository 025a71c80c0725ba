/*
 * Where the guests put things, shared by the assembly entry code and C. Values only, so the
 * assembler can include it too.
 */
#ifndef GUEST_MEMLAYOUT_H
#define GUEST_MEMLAYOUT_H

#define GUEST_LOAD_ADDR	     0x100000 /* link and load address of every guest image */
#define GUEST_ENTRY64_OFFSET 0x200    /* the 64-bit (vmlinux/bzImage) entry, e_entry */
#define GUEST_MAX_CPUS	     32
#define GUEST_BSP_STACK_SIZE 0x10000
#define GUEST_AP_STACK_SIZE  0x4000
#define GUEST_TRAMP_BASE     0x3000 /* AP real-mode trampoline: SIPI vector 0x03 */
#define GUEST_TRAMP_MAX	     0x400

/* Segment selectors of our GDT, the ones the Linux boot protocol uses. */
#define GUEST_CS32 0x08
#define GUEST_CS64 0x10
#define GUEST_DS   0x18

/* How the guest was entered (first argument of guest_start). */
#define GUEST_BOOT_PVH	   1
#define GUEST_BOOT_LINUX64 2

/* Offsets inside the trampoline parameter block (tramp_params in entry.S). */
#define TRAMP_P_GDTR  0	 /* u16 limit, u32 base: what lgdtl reads */
#define TRAMP_P_CR3   8	 /* u32 */
#define TRAMP_P_LAPIC 16 /* u64 LAPIC MMIO base */
#define TRAMP_P_TABLE 24 /* u64 address of struct ap_slot[256], indexed by APIC id */
#define TRAMP_P_SIZE  32

#endif
