/*
 * Starting the application processors listed in the MADT: INIT, SIPI, SIPI to each in turn
 * through the real-mode trampoline at GUEST_TRAMP_BASE; each AP enters long mode on our GDT
 * and page tables, runs g->ap_main and halts.
 */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include "guest.h"

/*
 * Starts every CPU but the BSP, one at a time, waiting up to timeout_ms for each. Returns
 * the number of CPUs online (BSP included) in *online; 0, or -ETIMEDOUT if any AP did not
 * come up, -E2BIG if the trampoline does not fit.
 */
int smp_start_aps(struct guest *g, uint32_t timeout_ms, uint32_t *online);

#endif
