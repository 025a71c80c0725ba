/*
 * The gdb stub's target over the real vCPUs: registers and debug state through the KVM layer
 * (core/kvm.c), guest virtual memory through the current vCPU's page tables (vcpu/paging.c)
 * into guest RAM, stops and resumes through the vCPU set's debugger hold (vcpu/vcpus.c), and
 * kill through the VM's request handle.
 */
#ifndef CROSVM_VCPU_GDB_TARGET_H
#define CROSVM_VCPU_GDB_TARGET_H

#include "core/vm_event.h"
#include "vcpu/gdb/stub.h"

struct guest_mem;
struct vcpus;

struct gdb_target {
	struct vcpus *vcpus;
	const struct guest_mem *mem;
	const struct vm_events *ev;
};

extern const struct gdb_target_ops gdb_target_ops;

#endif
