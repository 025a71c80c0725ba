#!/usr/bin/env python3
"""Debian's Linux kernel under crosvm: the main end-to-end proof (scripts/lib/linuxguest.py).

Each test is one boot that checks many things through the guest's agent shell
(linuxvm.LinuxVM), then ends the VM one particular way and checks crosvm's exit status:
  - bzImage, sandboxed, 2 vCPUs: memory, rng, disks, balloon, suspend/resume, disk resize,
    the ACPI power button through busybox acpid (0);
  - vmlinux, --disable-sandbox, 4 vCPUs: the same devices unjailed, `crosvm stop` (0);
  - bzImage, 1 vCPU, default memory: the guest's `reboot -f` (32), and the same image under
    QEMU -M q35 as the reference, whose kernel log decides which warnings are the emulated
    CPU's and not ours.
"""

import json
import os
import re
import subprocess
import time
import unittest

import linuxvm
import vmm

def e820_ram_bytes(vm):
    """Bytes of System RAM in the firmware memory map the guest was given."""
    out = vm.check("for d in /sys/firmware/memmap/*; do "
                   "[ \"$(cat $d/type)\" = 'System RAM' ] && echo $(cat $d/start) $(cat $d/end); "
                   "done; true")
    total = 0
    for start, end in (l.split() for l in out.strip().splitlines()):
        total += int(end, 16) - int(start, 16) + 1
    return total


def expected_ram(mem_mib):
    """Bytes of RAM in crosvm's e820 map for -m mem_mib (below 640 KiB, then from 1 MiB)."""
    size = mem_mib << 20
    low = min(size, 0xd0000000)
    return 0x9fc00 + (low - 0x100000) + (size - low)


def meminfo_kib(vm, key):
    out = vm.check(f"grep '^{key}:' /proc/meminfo")
    return int(out.split()[1])


def normalize(line):
    """A kernel log line without its timestamp, addresses and numbers, for comparison."""
    line = re.sub(r"^\[\s*[\d.]+\]\s*", "", line)
    line = re.sub(r"0x[0-9a-fA-F]+|[0-9a-fA-F]{8,}", "X", line)
    return re.sub(r"\d+", "N", line).strip()


_QEMU_BAD = None


def qemu_bad_lines(testcase):
    """Normalized bad dmesg lines of the same guest under QEMU -M q35 (booted once)."""
    global _QEMU_BAD
    if _QEMU_BAD is None:
        with linuxvm.LinuxVM(vmm_cmd=linuxvm.qemu_q35(mem_mib=512)) as vm:
            vm.wait_ready()
            testcase.assertEqual(vm.check("nproc").strip(), "1")
            bad = linuxvm.guest_bad_dmesg(vm)
            vm.send("poweroff -f\n")
            testcase.assertEqual(vm.wait_exit(180), 0, vm.stderr())
        _QEMU_BAD = {normalize(l) for l in bad}
    return _QEMU_BAD


class LinuxTestCase(unittest.TestCase):
    def setUp(self):
        self.td = vmm.TempDir()
        self.addCleanup(self.td.__exit__)

    def boot(self, *opts, **kw):
        vm = linuxvm.LinuxVM(*opts, **kw)
        self.addCleanup(vm.close)
        vm.wait_ready()
        return vm

    def assertExit(self, vm, status, timeout=180):
        """The VMM ends with status within timeout; the failure shows its console and stderr."""
        got = vm.wait_exit(timeout, before_kill=lambda: vmm.threads_state(vm.pid))
        self.assertEqual(got, status, "VMM exit status %r (None: still running after %d s)\n"
                         "console tail: %r\nstderr: %s\nthreads: %s" %
                         (got, timeout, vm.output()[-2000:], vm.stderr()[-2000:],
                          vm.threads_at_kill))

    def ext4(self, name, size_mib=32, files=None):
        """A fresh ext4 image with optional files {name: bytes}."""
        path = self.td.join(name)
        tree = None
        args = ["mke2fs", "-q", "-F", "-t", "ext4", "-E", "root_owner=0:0"]
        if files:
            tree = self.td.join(name + ".tree")
            os.mkdir(tree)
            for fname, data in files.items():
                with open(os.path.join(tree, fname), "wb") as f:
                    f.write(data)
            args += ["-d", tree]
        subprocess.run(args + [path, f"{size_mib}M"], check=True, capture_output=True)
        return path

    def host_file(self, image, name):
        """A file's bytes read from an ext4 image on the host (debugfs, no mount)."""
        res = subprocess.run(["debugfs", "-R", f"cat /{name}", image], capture_output=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout

    def assertMemory(self, vm, mem_mib):
        self.assertEqual(e820_ram_bytes(vm), expected_ram(mem_mib))
        total = meminfo_kib(vm, "MemTotal")
        # MemTotal is the RAM less what the kernel keeps for itself (its image, page tables).
        self.assertLessEqual(total, mem_mib * 1024)
        self.assertGreater(total, mem_mib * 1024 * 3 // 4)

    def assertCleanDmesg(self, vm):
        ours = linuxvm.guest_bad_dmesg(vm)
        reference = qemu_bad_lines(self)
        extra = [l for l in ours if normalize(l) not in reference]
        self.assertEqual(extra, [], "kernel log lines not seen under QEMU -M q35")

    def assertRng(self, vm):
        self.assertEqual(vm.check("cat /sys/class/misc/hw_random/rng_current").strip(),
                         "virtio_rng.0")
        self.assertEqual(vm.check("dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c").strip(),
                         "256")

    def assertDiskWrite(self, vm, dev, image, payload):
        """Mounts dev read-write, writes and syncs a file; the host sees it after exit."""
        vm.check(f"mkdir -p /mnt/{dev} && mount -t ext4 /dev/{dev} /mnt/{dev}")
        vm.check(f"echo {payload} > /mnt/{dev}/hello && sync")
        self.assertEqual(vm.check(f"cat /mnt/{dev}/hello").strip(), payload)
        return lambda: self.assertEqual(self.host_file(image, "hello").strip(),
                                        payload.encode())

    def assertReadOnlyDisk(self, vm, dev):
        """The guest sees dev read-only: a mount comes out read-only, writes fail."""
        self.assertEqual(vm.check(f"cat /sys/block/{dev}/ro").strip(), "1")
        vm.check(f"mkdir -p /mnt/{dev} && mount -t ext4 /dev/{dev} /mnt/{dev} 2>/dev/null")
        opts = vm.check(f"grep '^/dev/{dev} ' /proc/mounts").split()[3].split(",")
        self.assertIn("ro", opts)
        self.assertEqual(vm.check(f"cat /mnt/{dev}/seed").strip(), "seed")
        status, _ = vm.sh(f"echo x > /mnt/{dev}/new")
        self.assertNotEqual(status, 0, "a file was created on a read-only disk")
        status, _ = vm.sh(f"dd if=/dev/zero of=/dev/{dev} bs=4096 count=1 oflag=direct")
        self.assertNotEqual(status, 0, "a write to a read-only disk succeeded")
        vm.check(f"umount /mnt/{dev}")


class LinuxGuest(LinuxTestCase):
    def wait_balloon(self, sock, size):
        """Polls balloon_stats until the guest has moved the balloon to size; the stats."""
        deadline = time.monotonic() + 120
        while True:
            status, out, err = vmm.control(sock, "balloon_stats")
            self.assertEqual(status, 0, err)
            stats = json.loads(out)
            if stats["balloon_actual"] == size:
                return stats
            self.assertLess(time.monotonic(), deadline,
                            f"the balloon stayed at {stats['balloon_actual']}, not {size}")
            time.sleep(0.5)

    def test_bzimage_sandboxed_devices_control_and_power_button(self):
        sock = self.td.join("vm.sock")
        data = self.ext4("data.ext4")
        ro1 = self.ext4("ro1.ext4", files={"seed": b"seed\n"})
        ro2 = self.ext4("ro2.ext4", files={"seed": b"seed\n"})
        vm = self.boot("-c", "2", "-m", "512", "-s", sock, "--rwdisk", data, "-d", ro1,
                       "--block", f"path={ro2},ro")
        self.assertEqual(vm.check("nproc").strip(), "2")
        self.assertEqual(vm.check("cat /sys/devices/system/cpu/online").strip(), "0-1")
        self.assertMemory(vm, 512)
        self.assertRng(vm)
        host_sees = self.assertDiskWrite(vm, "vda", data, "written-by-the-sandboxed-guest")
        self.assertReadOnlyDisk(vm, "vdb")
        self.assertReadOnlyDisk(vm, "vdc")

        # The balloon takes memory from the guest (the device offers DEFLATE_ON_OOM, as
        # crosvm's, so Linux keeps MemTotal and the pages leave MemFree); its statistics are
        # the guest's own.
        before = meminfo_kib(vm, "MemFree")
        status, out, err = vmm.control(sock, "balloon", 128 << 20)
        self.assertEqual(status, 0, err)
        stats = self.wait_balloon(sock, 128 << 20)
        self.assertLess(meminfo_kib(vm, "MemFree"), before - 120 * 1024)
        self.assertEqual(stats["stats"]["total_memory"], meminfo_kib(vm, "MemTotal") * 1024)
        self.assertAlmostEqual(stats["stats"]["free_memory"], meminfo_kib(vm, "MemFree") * 1024,
                               delta=16 << 20)
        status, _, err = vmm.control(sock, "balloon", 0)
        self.assertEqual(status, 0, err)
        self.wait_balloon(sock, 0)
        self.assertGreater(meminfo_kib(vm, "MemFree"), before - 16 * 1024)

        # Suspend a busy guest, resume it: its clock and a running program go on.
        vm.check("(i=0; while :; do i=$((i+1)); echo $i >/tmp/t; mv /tmp/t /tmp/ticks; done) "
                 ">/dev/null 2>&1 &")
        t0 = int(vm.check("date +%s"))
        ticks0 = int(vm.check("cat /tmp/ticks"))
        self.assertEqual(vmm.control(sock, "suspend")[0], 0)
        time.sleep(3)
        self.assertEqual(vmm.control(sock, "resume")[0], 0)
        ticks1 = int(vm.check("cat /tmp/ticks"))
        self.assertGreater(ticks1, ticks0)
        self.assertGreater(int(vm.check("date +%s")), t0)
        time.sleep(1)
        self.assertGreater(int(vm.check("cat /tmp/ticks")), ticks1)
        vm.check("kill %1 2>/dev/null; true")

        # A disk resized from the host: the guest sees the new capacity.
        status, _, err = vmm.control(sock, "disk", "resize", 0, 64 << 20)
        self.assertEqual(status, 0, err)
        deadline = time.monotonic() + 30
        while int(vm.check("cat /sys/block/vda/size")) != (64 << 20) // 512:
            self.assertLess(time.monotonic(), deadline, "the guest did not see the resize")
            time.sleep(0.3)
        self.assertEqual(os.path.getsize(data), 64 << 20)

        self.assertCleanDmesg(vm)
        # The ACPI power button: busybox acpid sees it and powers the guest off.
        vm.check("umount /mnt/vda")
        vm.check("acpid -c /etc/acpi")
        time.sleep(0.5)
        self.assertEqual(vmm.control(sock, "powerbtn")[0], 0)
        self.assertExit(vm, vmm.STATUS_STOP, 120)
        host_sees()
        vmm.no_sanitizer_report(self, vm.stderr())

    def test_vmlinux_unsandboxed_four_cpus_and_stop(self):
        sock = self.td.join("vm.sock")
        data = self.ext4("data.ext4")
        vm = self.boot("-c", "4", "-m", "1024", "-s", sock, "--rwdisk", data,
                       kernel="vmlinux", sandbox=False)
        self.assertEqual(vm.check("nproc").strip(), "4")
        self.assertEqual(vm.check("cat /sys/devices/system/cpu/online").strip(), "0-3")
        self.assertMemory(vm, 1024)
        self.assertRng(vm)
        host_sees = self.assertDiskWrite(vm, "vda", data, "written-by-the-unjailed-guest")
        self.assertCleanDmesg(vm)
        vm.check("umount /mnt/vda")
        status, _, err = vmm.control(sock, "stop")
        self.assertEqual(status, 0, err)
        self.assertExit(vm, vmm.STATUS_STOP, 180)
        host_sees()
        self.assertFalse(os.path.exists(sock))
        vmm.no_sanitizer_report(self, vm.stderr())

    def test_one_cpu_default_memory_and_guest_reboot(self):
        vm = self.boot()
        self.assertEqual(vm.check("nproc").strip(), "1")
        self.assertMemory(vm, 256)
        self.assertCleanDmesg(vm)
        vm.send("reboot -f\n")
        self.assertExit(vm, vmm.STATUS_RESET, 180)
        vmm.no_sanitizer_report(self, vm.stderr())


if __name__ == "__main__":
    unittest.main(verbosity=2)
