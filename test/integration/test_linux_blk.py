#!/usr/bin/env python3
"""virtio-blk's request queues under Debian's Linux kernel, in one boot (sandboxed, 4 vCPUs):

  - vda has --block num-queues=3: Linux's blk-mq has 3 hardware queues, each with its own
    MSI-X vector; vdb has the default (crosvm's 16), of which Linux uses one per vCPU (4);
  - writers pinned to each vCPU (taskset) write their own region of vda with O_DIRECT at
    once, and every queue's interrupt fired meanwhile (/proc/interrupts): the device
    completed requests on each of them;
  - what the guest wrote reads back with the same checksums in the guest (O_DIRECT, in
    parallel) and in the image on the host, to the byte;
  - a write made durable with fsync (a FLUSH) is in the image after crosvm is killed with
    SIGKILL right after the guest saw the fsync complete.
"""

import hashlib
import os
import signal
import unittest

from test_linux import LinuxTestCase

MIB = 1 << 20
CPUS = 4
VDA_QUEUES = 3
REGION_MIB = 4  # each writer's region of vda


def host_md5(image, offset, length):
    with open(image, "rb") as f:
        f.seek(offset)
        return hashlib.md5(f.read(length)).hexdigest()


def queue_irqs(vm, dev):
    """{queue index: interrupts so far} of dev's request queues, from /proc/interrupts."""
    virtio = vm.check(f"basename $(readlink /sys/block/{dev}/device)").strip()
    counts = {}
    for line in vm.check(f"grep '{virtio}-req\\.' /proc/interrupts").splitlines():
        fields = line.split()
        name = fields[-1]
        counts[int(name.rsplit(".", 1)[1])] = sum(int(f) for f in fields[1:1 + CPUS])
    return counts


class BlockQueues(LinuxTestCase):
    def image(self, name, size_mib):
        path = self.td.join(name)
        with open(path, "wb") as f:
            f.truncate(size_mib * MIB)
        return path

    def test_queues_integrity_and_flush_survives_kill(self):
        vda = self.image("vda.img", 64)
        vdb = self.image("vdb.img", 16)
        vm = self.boot("-c", str(CPUS), "--block", f"{vda},num-queues={VDA_QUEUES}",
                       "--block", vdb)
        self.assertEqual(vm.check("nproc").strip(), str(CPUS))

        # blk-mq: one hardware queue per virtqueue the driver set up.
        self.assertEqual(vm.check("ls /sys/block/vda/mq").split(),
                         [str(i) for i in range(VDA_QUEUES)])
        self.assertEqual(vm.check("ls /sys/block/vdb/mq").split(),
                         [str(i) for i in range(CPUS)])
        irqs = vm.check("grep -c 'req\\.' /proc/interrupts").strip()
        self.assertEqual(int(irqs), VDA_QUEUES + CPUS, vm.check("cat /proc/interrupts"))

        # Writers on every vCPU at once, each its own region, O_DIRECT: every queue is used.
        before = queue_irqs(vm, "vda")
        self.assertEqual(sorted(before), list(range(VDA_QUEUES)))
        vm.check(f"dd if=/dev/urandom of=/tmp/src bs=1M count={REGION_MIB * CPUS} 2>/dev/null")
        vm.check("for c in $(seq 0 %d); do taskset -c $c dd if=/tmp/src of=/dev/vda bs=64k "
                 "skip=$((c * %d)) seek=$((c * %d)) count=%d oflag=direct conv=notrunc "
                 "2>/dev/null & done; wait" % (CPUS - 1, REGION_MIB * 16, REGION_MIB * 16,
                                               REGION_MIB * 16))
        after = queue_irqs(vm, "vda")
        for q in range(VDA_QUEUES):
            self.assertGreater(after[q], before[q], f"queue {q} of vda was never used: "
                               f"{before} -> {after}")

        # Read back in parallel with O_DIRECT: the same bytes, in the guest and on the host.
        total = REGION_MIB * CPUS
        want = vm.check("md5sum /tmp/src").split()[0]
        vm.check("for c in $(seq 0 %d); do taskset -c $c dd if=/dev/vda of=/tmp/back.$c "
                 "bs=64k skip=$((c * %d)) count=%d iflag=direct 2>/dev/null & done; wait"
                 % (CPUS - 1, REGION_MIB * 16, REGION_MIB * 16))
        got = vm.check("cat " + " ".join(f"/tmp/back.{c}" for c in range(CPUS)) +
                       " | md5sum").split()[0]
        self.assertEqual(got, want)
        self.assertEqual(host_md5(vda, 0, total * MIB), want)

        # A write made durable by fsync is in the image even if crosvm dies at once after.
        vm.check("dd if=/dev/urandom of=/tmp/last bs=64k count=4 2>/dev/null")
        last = vm.check("md5sum /tmp/last").split()[0]
        vm.check("dd if=/tmp/last of=/dev/vdb bs=64k seek=16 conv=fsync,notrunc 2>/dev/null")
        os.kill(vm.pid, signal.SIGKILL)
        self.assertEqual(vm.wait_exit(60), -signal.SIGKILL)
        self.assertEqual(host_md5(vdb, 16 * 64 * 1024, 4 * 64 * 1024), last)


if __name__ == "__main__":
    unittest.main(verbosity=2)
