#include "vcpu/gdb/hwbp.h"

#include <string.h>

#define DR6_BS	      BIT(14)
#define DR7_GE	      BIT(9)
#define DR7_FIXED1    BIT(10) /* reserved, reads as 1 */
#define DR7_G(i)      BIT(2 * (i) + 1)
#define DR7_RW(i, t)  ((uint64_t)(t) << (16 + 4 * (i)))
#define DR7_LEN(i, l) ((uint64_t)(l) << (18 + 4 * (i)))
#define DB_VECTOR     1

struct chunk {
	uint64_t addr;
	uint8_t len;
};

/* The aligned 1/2/4/8-byte pieces covering the range: -ENOSPC when more than there are slots. */
static int split(enum hwbp_type type, uint64_t addr, uint64_t len, struct chunk *c, unsigned *nr)
{
	unsigned n = 0;

	if (type == HWBP_EXEC) {
		c[0] = (struct chunk){.addr = addr, .len = 1};
		*nr = 1;
		return 0;
	}
	if (len == 0 || range_wraps(addr, len))
		return -EINVAL;
	while (len) {
		uint8_t size = 8;

		while (size > 1 && (!IS_ALIGNED(addr, size) || size > len))
			size /= 2;
		if (n == HWBP_SLOTS)
			return -ENOSPC;
		c[n++] = (struct chunk){.addr = addr, .len = size};
		addr += size;
		len -= size;
	}
	*nr = n;
	return 0;
}

static int find(const struct hwbp_set *s, enum hwbp_type type, const struct chunk *c)
{
	for (int i = 0; i < HWBP_SLOTS; i++)
		if (s->slot[i].len == c->len && s->slot[i].addr == c->addr &&
		    s->slot[i].type == (uint8_t)type)
			return i;
	return -1;
}

int hwbp_insert(struct hwbp_set *s, enum hwbp_type type, uint64_t addr, uint64_t len)
{
	struct hwbp_set next = *s;
	struct chunk c[HWBP_SLOTS];
	unsigned nr;
	int ret = split(type, addr, len, c, &nr);

	if (ret < 0)
		return ret;
	/* On a copy, so a request that does not fit changes nothing. */
	for (unsigned k = 0; k < nr; k++) {
		int i = find(&next, type, &c[k]);

		if (i < 0) {
			for (i = 0; i < HWBP_SLOTS && next.slot[i].len; i++)
				;
			if (i == HWBP_SLOTS)
				return -ENOSPC;
			next.slot[i] = (struct hwbp_slot){
				.addr = c[k].addr, .len = c[k].len, .type = (uint8_t)type};
		}
		next.slot[i].refs++;
	}
	*s = next;
	return 0;
}

int hwbp_remove(struct hwbp_set *s, enum hwbp_type type, uint64_t addr, uint64_t len)
{
	struct hwbp_set next = *s;
	struct chunk c[HWBP_SLOTS];
	unsigned nr;
	int ret = split(type, addr, len, c, &nr);

	if (ret < 0)
		return ret == -ENOSPC ? -ENOENT : ret;
	for (unsigned k = 0; k < nr; k++) {
		int i = find(&next, type, &c[k]);

		if (i < 0)
			return -ENOENT;
		if (--next.slot[i].refs == 0)
			memset(&next.slot[i], 0, sizeof(next.slot[i]));
	}
	*s = next;
	return 0;
}

void hwbp_clear(struct hwbp_set *s)
{
	memset(s, 0, sizeof(*s));
}

bool hwbp_any(const struct hwbp_set *s)
{
	for (int i = 0; i < HWBP_SLOTS; i++)
		if (s->slot[i].len)
			return true;
	return false;
}

/* DR7's LEN field: 1 byte 00, 2 bytes 01, 8 bytes 10, 4 bytes 11. */
static uint64_t len_code(uint8_t len)
{
	switch (len) {
	case 2:
		return 1;
	case 8:
		return 2;
	case 4:
		return 3;
	default:
		return 0;
	}
}

void hwbp_guest_debug(const struct hwbp_set *s, bool step, uint32_t kvm_flags,
		      struct kvm_guest_debug *out)
{
	memset(out, 0, sizeof(*out));
	if (step) {
		out->control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP;
		if (kvm_flags & KVM_GUESTDBG_BLOCKIRQ)
			out->control |= KVM_GUESTDBG_BLOCKIRQ;
	}
	if (!hwbp_any(s))
		return;
	out->control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
	/* Global enables, as a debugger outside the guest's task switches wants them. */
	out->arch.debugreg[7] = DR7_FIXED1 | DR7_GE;
	for (int i = 0; i < HWBP_SLOTS; i++) {
		const struct hwbp_slot *b = &s->slot[i];

		if (!b->len)
			continue;
		out->arch.debugreg[i] = b->addr;
		out->arch.debugreg[7] |=
			DR7_G(i) | DR7_RW(i, b->type) | DR7_LEN(i, len_code(b->len));
	}
}

void hwbp_decode(const struct hwbp_set *s, const struct kvm_debug_exit_arch *a,
		 struct hwbp_hit *hit)
{
	*hit = (struct hwbp_hit){.kind = HWBP_HIT_NONE};
	if (a->exception != DB_VECTOR)
		return;
	/* DR6 B0-B3 may be set for slots that are not enabled: only ours count. Data first. */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < HWBP_SLOTS; i++) {
			const struct hwbp_slot *b = &s->slot[i];

			if (!b->len || !(a->dr6 & BIT(i)))
				continue;
			if (pass == 0 && b->type != HWBP_EXEC) {
				hit->kind =
					b->type == HWBP_WRITE ? HWBP_HIT_WATCH : HWBP_HIT_AWATCH;
				hit->addr = b->addr;
				return;
			}
			if (pass == 1 && b->type == HWBP_EXEC) {
				hit->kind = HWBP_HIT_BREAK;
				hit->addr = b->addr;
				return;
			}
		}
	}
	if (a->dr6 & DR6_BS)
		hit->kind = HWBP_HIT_STEP;
}
