/*
 * fault: CPU exceptions, delivered through the guest's IDT.
 *
 * Command line keys:
 *   (none)              raise #UD, #GP, #PF and #DE in turn, each caught by a handler that
 *                       checks vector, error code and CR2 and resumes: "PASS fault_<kind>"
 *   fault.kind=<kind>   raise only that one, and leave it unhandled: the library's exception
 *                       path prints "FAIL exception: vector=..." and powers off
 *   fault.expect        with fault.kind: catch it as in the first form
 * Kinds: ud, gp, pf, de, bp, and mmio_exec: a jump to an address in the 32-bit PCI window where
 * nothing is mapped. That raises no exception: the instruction fetch from a hole that is not
 * RAM is something KVM cannot emulate, so the VMM sees an emulation failure (a crash).
 */
#include "lib/cmdline.h"
#include "lib/console.h"
#include "lib/guest.h"
#include "lib/io.h"
#include "lib/str.h"

#define PF_ADDR	     (GUEST_MAPPED_LIMIT + 0x2000) /* first unmapped page after the identity map */
#define NONCANONICAL 0x8000000000000000ULL
#define MMIO_HOLE    0xf3fff000ULL /* last page of the 32-bit PCI window: never a BAR here */
#define NO_VECTOR    256u

struct trap {
	uint64_t resume; /* where the handler continues */
	unsigned want;	 /* expected vector */
	volatile bool hit;
	uint64_t vector, error, cr2;
};

struct kind {
	const char *name;
	unsigned vector;
	bool has_error;
	uint64_t cr2; /* expected CR2 for #PF, else 0 */
	void (*raise)(struct trap *c);
};

/* Each raise stores its resume address, then faults; the handler jumps to the resume label. */
static void raise_ud(struct trap *c)
{
	__asm__ volatile("lea 1f(%%rip), %%rax; mov %%rax, %0; ud2; 1:"
			 : "=m"(c->resume)
			 :
			 : "rax", "memory");
}

static void raise_gp(struct trap *c)
{
	__asm__ volatile(
		"lea 1f(%%rip), %%rax; mov %%rax, %0; movabs %1, %%rax; mov (%%rax), %%rax; 1:"
		: "=m"(c->resume)
		: "i"(NONCANONICAL)
		: "rax", "memory");
}

static void raise_pf(struct trap *c)
{
	__asm__ volatile(
		"lea 1f(%%rip), %%rax; mov %%rax, %0; movabs %1, %%rax; mov (%%rax), %%rax; 1:"
		: "=m"(c->resume)
		: "i"(PF_ADDR)
		: "rax", "memory");
}

static void raise_de(struct trap *c)
{
	__asm__ volatile("lea 1f(%%rip), %%rax; mov %%rax, %0; xor %%edx, %%edx; xor %%ecx, %%ecx;"
			 " mov $1, %%eax; div %%ecx; 1:"
			 : "=m"(c->resume)
			 :
			 : "rax", "rcx", "rdx", "memory");
}

static void raise_bp(struct trap *c)
{
	__asm__ volatile("lea 1f(%%rip), %%rax; mov %%rax, %0; int3; 1:"
			 : "=m"(c->resume)
			 :
			 : "rax", "memory");
}

static void raise_mmio_exec(struct trap *c)
{
	__asm__ volatile("lea 1f(%%rip), %%rax; mov %%rax, %0; movabs %1, %%rax; jmp *%%rax; 1:"
			 : "=m"(c->resume)
			 : "i"(MMIO_HOLE)
			 : "rax", "memory");
}

static const struct kind kinds[] = {
	{"ud", 6, false, 0, raise_ud},	     {"gp", 13, true, 0, raise_gp},
	{"pf", 14, true, PF_ADDR, raise_pf}, {"de", 0, false, 0, raise_de},
	{"bp", 3, false, 0, raise_bp},	     {"mmio_exec", NO_VECTOR, false, 0, raise_mmio_exec},
};

static int on_fault(struct guest *g, struct irq_frame *f, void *arg)
{
	struct trap *c = arg;

	(void)g;
	if (f->vector != c->want || c->hit)
		return -EINVAL; /* not ours: the library reports it */
	c->hit = true;
	c->vector = f->vector;
	c->error = f->error;
	c->cr2 = read_cr2();
	f->rip = c->resume;
	return 0;
}

static void catch_one(struct guest *g, const struct kind *k)
{
	struct trap c = {.want = k->vector};

	idt_set_handler(g, k->vector, on_fault, &c);
	k->raise(&c);
	idt_set_handler(g, k->vector, NULL, NULL);
	if (!c.hit) {
		report_fail(g, "fault", "%s raised no exception", k->name);
		return;
	}
	if (k->cr2 && c.cr2 != k->cr2) {
		report_fail(g, "fault_cr2", "%s: CR2 0x%lx, expected 0x%lx", k->name, c.cr2,
			    k->cr2);
		return;
	}
	/* Our accesses are supervisor reads of a not-present page or non-canonical: error 0. */
	if (k->has_error && c.error != 0) {
		report_fail(g, "fault_error_code", "%s: error code 0x%lx, expected 0", k->name,
			    c.error);
		return;
	}
	report_pass(g, "fault_%s vector=%lu", k->name, c.vector);
}

int guest_main(struct guest *g)
{
	char name[16];

	if (cmdline_get(g->boot.cmdline, "fault.kind", name, sizeof(name)) != 0) {
		for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
			if (kinds[i].vector != 3 && kinds[i].vector != NO_VECTOR)
				catch_one(g, &kinds[i]);
		}
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		struct trap unused = {0};

		if (strcmp(kinds[i].name, name) != 0)
			continue;
		if (cmdline_has(g->boot.cmdline, "fault.expect")) {
			catch_one(g, &kinds[i]);
			return 0;
		}
		report_info(g, "fault=%s unhandled", kinds[i].name);
		kinds[i].raise(&unused);
		report_fail(g, "fault", "%s raised no exception", kinds[i].name);
		return 0;
	}
	report_fail(g, "fault", "unknown fault.kind '%s'", name);
	return 0;
}
