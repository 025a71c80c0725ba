/* The virtio devices of a VM, created from its config (rng, disks, balloon). */
#ifndef CROSVM_CORE_VMM_VIRTIO_DEVICES_H
#define CROSVM_CORE_VMM_VIRTIO_DEVICES_H

#include "core/util.h"

struct vm;

int virtio_devices_create(struct vm *vm) MUST_CHECK;

#endif
