/*
 * debuggee: the guest the gdb stub's exact checks debug (test/integration/test_gdb.py). It
 * maps one page at a high virtual address through 4 KiB page tables of its own, fills that page
 * and a low buffer with a pattern, sets FS_BASE, says where everything is, then spins in
 * debuggee_wait with known values in rbx and r12-r15 until the debugger writes the release
 * flag. Then it prints those registers as they came out of the loop, FS_BASE and both buffers,
 * for the host to compare with what it wrote.
 *
 *   INFO debuggee.buf=0x..      a 64-byte buffer (identity mapped)
 *   INFO debuggee.vbuf=0x..     a page mapped only at this virtual address
 *   INFO debuggee.vbuf_phys=0x..
 *   INFO debuggee.flag=0x..     the release flag (32 bits; non-zero releases)
 *   INFO debuggee.fs_base=0x..
 *   READY debuggee
 *   INFO debuggee.rbx=0x.. (r12, r13, r14, r15 likewise)
 *   INFO debuggee.fs_base_after=0x..
 *   INFO debuggee.buf_after=<32 bytes in hex>
 *   INFO debuggee.vbuf_after=<32 bytes in hex, read through the high mapping>
 */
#include "lib/console.h"
#include "lib/io.h"
#include "lib/str.h"

#define MSR_FS_BASE   0xc0000100u
#define VBUF	      0xffffc90000000000ul
#define PTE_P_RW      0x3ul
#define FS_BASE_VALUE 0x0000123456789000ul

volatile uint32_t debuggee_flag;
static uint8_t buf[64];
static uint8_t vpage[4096] __attribute__((aligned(4096)));
static uint64_t tables[3][512] __attribute__((aligned(4096)));

/*
 * rbx, r12-r15 get known values, then the loop waits for debuggee_flag; what the registers
 * hold when it ends goes to out[0..4]. Labels mark the loop for the host.
 */
void debuggee_wait(uint64_t *out);
__asm__(".text\n"
	".globl debuggee_wait\n"
	"debuggee_wait:\n"
	"	push %rbx\n"
	"	push %r12\n"
	"	push %r13\n"
	"	push %r14\n"
	"	push %r15\n"
	"	movabs $0x0123456789abcdef, %rbx\n"
	"	movabs $0x1212121212121212, %r12\n"
	"	movabs $0x1313131313131313, %r13\n"
	"	movabs $0x1414141414141414, %r14\n"
	"	movabs $0x1515151515151515, %r15\n"
	".globl debuggee_spin\n"
	"debuggee_spin:\n"
	"	pause\n"
	"	cmpl $0, debuggee_flag(%rip)\n"
	"	je debuggee_spin\n"
	".globl debuggee_released\n"
	"debuggee_released:\n"
	"	mov %rbx, 0(%rdi)\n"
	"	mov %r12, 8(%rdi)\n"
	"	mov %r13, 16(%rdi)\n"
	"	mov %r14, 24(%rdi)\n"
	"	mov %r15, 32(%rdi)\n"
	"	pop %r15\n"
	"	pop %r14\n"
	"	pop %r13\n"
	"	pop %r12\n"
	"	pop %rbx\n"
	"	ret\n"
	".globl debuggee_wait_end\n"
	"debuggee_wait_end:\n");

/* VBUF -> vpage through a PDPT, a directory and a table of our own, under our PML4. */
static void map_vbuf(void)
{
	uint64_t *pml4 = phys_to_ptr(read_cr3() & ~0xfffull);

	tables[0][(VBUF >> 30) & 0x1ff] = (uint64_t)(uintptr_t)tables[1] | PTE_P_RW;
	tables[1][(VBUF >> 21) & 0x1ff] = (uint64_t)(uintptr_t)tables[2] | PTE_P_RW;
	tables[2][(VBUF >> 12) & 0x1ff] = (uint64_t)(uintptr_t)vpage | PTE_P_RW;
	pml4[(VBUF >> 39) & 0x1ff] = (uint64_t)(uintptr_t)tables[0] | PTE_P_RW;
	__asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");
}

static void hex32(const volatile uint8_t *p, char *out)
{
	static const char dig[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = dig[p[i] >> 4];
		out[2 * i + 1] = dig[p[i] & 15];
	}
	out[64] = '\0';
}

int guest_main(struct guest *g)
{
	static const char *const names[] = {"rbx", "r12", "r13", "r14", "r15"};
	volatile uint8_t *vbuf = (volatile uint8_t *)(uintptr_t)VBUF;
	uint64_t regs[5];
	char hex[65];

	map_vbuf();
	for (unsigned i = 0; i < sizeof(buf); i++) {
		buf[i] = (uint8_t)(0xa0 + i);
		vbuf[i] = (uint8_t)(0x50 + i);
	}
	wrmsr(MSR_FS_BASE, FS_BASE_VALUE);
	report_info(g, "debuggee.buf=0x%lx", (uint64_t)(uintptr_t)buf);
	report_info(g, "debuggee.vbuf=0x%lx", VBUF);
	report_info(g, "debuggee.vbuf_phys=0x%lx", (uint64_t)(uintptr_t)vpage);
	report_info(g, "debuggee.flag=0x%lx", (uint64_t)(uintptr_t)&debuggee_flag);
	report_info(g, "debuggee.fs_base=0x%lx", rdmsr(MSR_FS_BASE));
	con_printf(g, "READY debuggee\n");
	debuggee_wait(regs);
	for (unsigned i = 0; i < 5; i++)
		report_info(g, "debuggee.%s=0x%lx", names[i], regs[i]);
	report_info(g, "debuggee.fs_base_after=0x%lx", rdmsr(MSR_FS_BASE));
	hex32(buf, hex);
	report_info(g, "debuggee.buf_after=%s", hex);
	hex32(vbuf, hex);
	report_info(g, "debuggee.vbuf_after=%s", hex);
	return 0;
}
