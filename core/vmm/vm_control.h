/* The control-socket commands acting on a running VM (see docs/control.md). */
#ifndef CROSVM_CORE_VMM_VM_CONTROL_H
#define CROSVM_CORE_VMM_VM_CONTROL_H

struct control_request;

/* control_server_params.handle, with ctx = the struct vm. */
void vm_control_handle(void *ctx, struct control_request *r);

#endif
