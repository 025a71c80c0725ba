/*
 * What each control-socket command does to the running VM. The server (control/server.c)
 * has parsed and validated the request; this file only acts on it and replies, directly or,
 * for commands a device answers (balloon, disk resize), when the device does.
 */
#include "core/vm_control.h"
#include "control/server.h"
#include "core/vm.h"
#include "legacy/acpi_pm.h"
#include "vcpu/vcpu.h"

#include <stdio.h>
#include <string.h>

static void device_replied(void *ctx, const char *reply)
{
	control_reply(ctx, reply);
}

/* Forwards the command to a device that answers it itself (possibly much later). */
static void to_device(struct vm *vm, struct device *dev, const char *what, const char *req,
		      struct control_request *r)
{
	char msg[128];
	int ret;

	if (!dev) {
		snprintf(msg, sizeof(msg), "this VM has no %s", what);
		control_reply_error(r, msg);
		return;
	}
	ret = device_command(dev, req, device_replied, r);
	if (ret < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", dev->name, strerror(-ret));
		log_warn(vm->log, "control: %s", msg);
		control_reply_error(r, msg);
	}
}

static void reply_status(struct control_request *r, int ret, const char *what)
{
	char msg[128];

	if (ret == 0) {
		control_reply_ok(r);
		return;
	}
	snprintf(msg, sizeof(msg), "%s failed: %s", what, strerror(-ret));
	control_reply_error(r, msg);
}

void vm_control_handle(void *ctx, struct control_request *r)
{
	struct vm *vm = ctx;
	const char *cmd = control_request_command(r);
	char req[160];
	uint64_t a = 0, b = 0;

	if (strcmp(cmd, "stop") == 0) {
		/* As crosvm: reply first, then leave the loop; the guest is not notified. */
		control_reply_ok(r);
		log_info(vm->log, "control: stop requested");
		vm_request_exit(vm, VM_EXIT_STOP);
	} else if (strcmp(cmd, "suspend") == 0) {
		reply_status(r, vcpus_pause(vm->vcpus), "suspend");
	} else if (strcmp(cmd, "resume") == 0) {
		vcpus_resume(vm->vcpus);
		control_reply_ok(r);
	} else if (strcmp(cmd, "powerbtn") == 0) {
		reply_status(r, vm->acpi_pm ? acpi_pm_powerbtn(vm->acpi_pm) : -ENODEV, "powerbtn");
	} else if (strcmp(cmd, "sleepbtn") == 0) {
		reply_status(r, vm->acpi_pm ? acpi_pm_sleepbtn(vm->acpi_pm) : -ENODEV, "sleepbtn");
	} else if (strcmp(cmd, "gpe") == 0) {
		if (control_request_u64(r, "gpe", &a) < 0 || a >= ACPI_PM_NR_GPES) {
			control_reply_error(r, "gpe: the event number must be 0-63");
			return;
		}
		reply_status(r, vm->acpi_pm ? acpi_pm_gpe(vm->acpi_pm, (unsigned)a) : -ENODEV,
			     "gpe");
	} else if (strcmp(cmd, "balloon") == 0) {
		if (control_request_u64(r, "num_bytes", &a) < 0) {
			control_reply_error(r, "balloon: num_bytes is required");
			return;
		}
		snprintf(req, sizeof(req), "{\"command\":\"balloon\",\"num_bytes\":%llu}",
			 (unsigned long long)a);
		to_device(vm, vm->balloon, "balloon device", req, r);
	} else if (strcmp(cmd, "balloon_stats") == 0) {
		to_device(vm, vm->balloon, "balloon device", "{\"command\":\"balloon_stats\"}", r);
	} else if (strcmp(cmd, "disk_resize") == 0) {
		if (control_request_u64(r, "index", &a) < 0 ||
		    control_request_u64(r, "size", &b) < 0) {
			control_reply_error(r, "disk_resize: index and size are required");
			return;
		}
		if (a >= vm->nr_disks) {
			snprintf(req, sizeof(req), "disk_resize: there is no disk %llu (%u disks)",
				 (unsigned long long)a, vm->nr_disks);
			control_reply_error(r, req);
			return;
		}
		snprintf(req, sizeof(req), "{\"command\":\"disk_resize\",\"size\":%llu}",
			 (unsigned long long)b);
		to_device(vm, vm->disks[a], "disk", req, r);
	} else if (strcmp(cmd, "version") == 0) {
		control_reply(r, "{\"ok\":true,\"version\":\"" CROSVM_VERSION "\"}");
	} else {
		control_reply_error(r, "unknown command");
	}
}
