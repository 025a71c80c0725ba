/* The `crosvm run` driver: builds the VM from its config, runs it, tears it down. */
#ifndef CROSVM_CORE_VMM_RUN_H
#define CROSVM_CORE_VMM_RUN_H

#include "core/vmm/config.h"
#include "core/log.h"
#include "core/vm_event.h"

/*
 * Runs the VM to its end. Returns 0 and the reason it ended, or -errno when it could not be
 * started (the error has been logged; the caller exits with the invalid-arguments status).
 */
int run_vm(const struct vm_config *cfg, struct logger *lg, enum vm_exit_reason *reason);

#endif
