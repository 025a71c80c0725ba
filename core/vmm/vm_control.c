/*
 * What each control-socket command does to the running VM. The server (control/server.c)
 * has parsed and validated the request into a typed control_msg; this file only acts on it
 * and replies, directly or, for commands a device answers (ACPI events, balloon, disk
 * resize), when the device does. Devices get a typed struct dev_cmd; no text goes past here.
 */
#include "core/vmm/vm_control.h"
#include "control/proto.h"
#include "control/server.h"
#include "core/vmm/vm.h"
#include "legacy/acpi_pm.h"
#include "vcpu/vcpu.h"

#include <stdio.h>
#include <string.h>

static void reply_status(struct control_request *r, int ret)
{
	char msg[128];

	if (ret == 0) {
		control_reply_ok(r);
		return;
	}
	snprintf(msg, sizeof(msg), "%s failed: %s",
		 control_proto_cmd_name(control_request_msg(r)->cmd), strerror(-ret));
	control_reply_error(r, msg);
}

static void device_replied(void *ctx, const struct dev_reply *reply)
{
	struct control_request *r = ctx;

	if (reply->err && reply->msg[0])
		control_reply_error(r, reply->msg);
	else if (reply->err)
		reply_status(r, reply->err);
	else if (control_request_msg(r)->cmd == CONTROL_CMD_BALLOON_STATS)
		control_reply_stats(r, &reply->stats);
	else
		control_reply_ok(r);
}

/* Forwards the command to a device that answers it itself (possibly much later). */
static void to_device(struct vm *vm, struct device *dev, const char *what, uint32_t op,
		      uint64_t arg, struct control_request *r)
{
	struct dev_cmd cmd = {.op = op, .arg = arg};
	char msg[128];
	int ret;

	if (!dev) {
		snprintf(msg, sizeof(msg), "this VM has no %s", what);
		control_reply_error(r, msg);
		return;
	}
	ret = device_command(dev, &cmd, device_replied, r);
	if (ret < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", dev->name, strerror(-ret));
		log_warn(vm->log, "control: %s", msg);
		control_reply_error(r, msg);
	}
}

/* The ACPI events: the PM block always exists, but a VM without one says so as before. */
static void to_acpi_pm(struct vm *vm, uint32_t op, uint64_t arg, struct control_request *r)
{
	if (!vm->acpi_pm) {
		reply_status(r, -ENODEV);
		return;
	}
	to_device(vm, vm->acpi_pm, "ACPI PM block", op, arg, r);
}

void vm_control_handle(void *ctx, struct control_request *r)
{
	struct vm *vm = ctx;
	const struct control_msg *m = control_request_msg(r);
	char msg[96];

	switch (m->cmd) {
	case CONTROL_CMD_STOP:
		/* As crosvm: reply first, then leave the loop; the guest is not notified. */
		control_reply_ok(r);
		log_info(vm->log, "control: stop requested");
		vm_request_exit(vm, VM_EXIT_STOP);
		break;
	case CONTROL_CMD_SUSPEND:
		reply_status(r, vcpus_pause(vm->vcpus));
		break;
	case CONTROL_CMD_RESUME:
		vcpus_resume(vm->vcpus);
		control_reply_ok(r);
		break;
	case CONTROL_CMD_POWERBTN:
		to_acpi_pm(vm, DEV_CMD_POWER_BUTTON, 0, r);
		break;
	case CONTROL_CMD_SLEEPBTN:
		to_acpi_pm(vm, DEV_CMD_SLEEP_BUTTON, 0, r);
		break;
	case CONTROL_CMD_GPE:
		if (m->args[0] >= ACPI_PM_NR_GPES) {
			control_reply_error(r, "gpe: the event number must be 0-63");
			break;
		}
		to_acpi_pm(vm, DEV_CMD_GPE, m->args[0], r);
		break;
	case CONTROL_CMD_BALLOON:
		to_device(vm, vm->balloon, "balloon device", DEV_CMD_BALLOON_TARGET, m->args[0], r);
		break;
	case CONTROL_CMD_BALLOON_STATS:
		to_device(vm, vm->balloon, "balloon device", DEV_CMD_BALLOON_STATS, 0, r);
		break;
	case CONTROL_CMD_DISK_RESIZE:
		if (m->args[0] >= vm->nr_disks) {
			snprintf(msg, sizeof(msg), "disk_resize: there is no disk %llu (%u disks)",
				 (unsigned long long)m->args[0], vm->nr_disks);
			control_reply_error(r, msg);
			break;
		}
		to_device(vm, vm->disks[m->args[0]], "disk", DEV_CMD_DISK_RESIZE, m->args[1], r);
		break;
	case CONTROL_CMD_VERSION:
		control_reply_version(r, CROSVM_VERSION);
		break;
	default:
		control_reply_error(r, "unknown command");
		break;
	}
}
