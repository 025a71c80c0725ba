/*
 * A test-and-set lock for printing from several CPUs. It records its holder so an exception
 * handler on the CPU that holds it can take it over instead of deadlocking.
 */
#ifndef GUEST_SPINLOCK_H
#define GUEST_SPINLOCK_H

#include "io.h"

#define SPIN_NO_OWNER 0xffffffffu

struct spinlock {
	volatile uint32_t locked;
	volatile uint32_t owner;
};

static inline void spin_init(struct spinlock *l)
{
	l->locked = 0;
	l->owner = SPIN_NO_OWNER;
}

static inline void spin_lock(struct spinlock *l, uint32_t owner)
{
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE)) {
		while (READ_ONCE(l->locked))
			cpu_pause();
	}
	l->owner = owner;
}

static inline void spin_unlock(struct spinlock *l)
{
	l->owner = SPIN_NO_OWNER;
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

#endif
