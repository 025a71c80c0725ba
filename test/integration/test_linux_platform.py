#!/usr/bin/env python3
"""The platform as Debian's kernel sees it: what it showed under crosvm and not under QEMU
(issue 8), each fixed in the VMM and pinned here on a real Linux guest:
  - CPUID: the host's brand string as the model name, the TSC-deadline timer, caches;
  - MTRRs set as firmware leaves them (no "x86/PAT: MTRRs disabled"; PAT with WC);
  - no ACPI errors from the global lock and RTC fixed events;
  - suspend of a busy guest for 30 s and resume: no soft lockup, its program runs on;
  - a guest kernel panic reaches pvpanic (ACPI QEMU0001): exit status 34.
Two boots: 2 vCPUs sandboxed (everything), 1 vCPU with --disable-sandbox (CPU and panic).
The freestanding guests check the same values to the bit (test_boot.py).
"""

import os
import re
import time
import unittest

import vmm
from test_linux import LinuxTestCase

PAUSE_S = 30  # longer than the guest's soft-lockup threshold (2 * watchdog_thresh = 20 s)
# What ACPICA logged while the PM block dropped GBL_EN and RTC_EN.
ACPI_FIXED_EVENT_ERRORS = ("Could not enable GlobalLock event",
                           "No response from Global Lock hardware",
                           "Could not enable RealTimeClock event",
                           "Could not enable fixed event")


class LinuxPlatform(LinuxTestCase):
    def dmesg(self, vm, pattern):
        """The guest's kernel log lines matching an extended regex (filtered in the guest:
        a whole log over an emulated serial console is slow)."""
        status, out = vm.sh(f"dmesg | grep -E '{pattern}'")
        self.assertIn(status, (0, 1), out)
        return out.splitlines()

    def assertCpu(self, vm, ncpus):
        host = vmm.host_cpu()
        names = re.findall(r"^model name\s*:\s*(.*)$", vm.check("grep '^model name' /proc/cpuinfo"),
                           re.M)
        self.assertEqual(names, [host["model name"]] * ncpus)
        flags = vm.check("grep -m1 '^flags' /proc/cpuinfo").split()
        tsc_deadline = vmm.kvm_has(vmm.KVM_CAP_TSC_DEADLINE_TIMER)
        if tsc_deadline:
            self.assertIn("tsc_deadline_timer", flags)
        for flag in ("mtrr", "pat"):
            self.assertIn(flag, flags)
        log = self.dmesg(vm, "APIC timer|TSC deadline|MTRR|x86/PAT")
        self.assertEqual([l for l in log if "APIC timer disabled" in l], [])
        if tsc_deadline:
            self.assertTrue(any("TSC deadline timer available" in l for l in log), log)
        # Caches: the kernel found descriptors for every CPU (none without the L1 leaves).
        levels = vm.check("cat /sys/devices/system/cpu/cpu*/cache/index*/level").split()
        self.assertIn("1", levels)
        self.assertEqual(len(levels) % ncpus, 0, levels)
        # MTRRs enabled with write-back as the default type on every CPU (the msr module's
        # /dev/cpu/N/msr at offset 0x2ff), PAT initialised with write-combining, and the
        # 32-bit PCI hole uncacheable.
        for cpu in range(ncpus):
            value = vm.check(f"dd if=/dev/cpu/{cpu}/msr bs=8 count=1 skip={0x2ff} "
                             "iflag=skip_bytes 2>/dev/null | od -An -tx8").strip()
            self.assertEqual(int(value, 16), 0xc06, f"IA32_MTRR_DEF_TYPE of cpu{cpu}")
        self.assertEqual([l for l in log if "MTRRs disabled" in l], [])
        pat = [l for l in log if "x86/PAT: Configuration" in l]
        self.assertEqual(len(pat), 1, log)
        self.assertIn(" WC ", pat[0])
        mtrr = vm.check("cat /proc/mtrr")
        self.assertRegex(mtrr, r"base=0x0d0000000 \( 3328MB\), size=  256MB, count=1: uncachable")
        self.assertRegex(mtrr, r"base=0x0e0000000 \( 3584MB\), size=  512MB, count=1: uncachable")
        self.assertEqual(len(mtrr.strip().splitlines()), 2, mtrr)

    def assertNoAcpiFixedEventErrors(self, vm):
        log = self.dmesg(vm, "ACPI|Global Lock|RealTimeClock")
        for text in ACPI_FIXED_EVENT_ERRORS:
            self.assertEqual([l for l in log if text in l], [])
        self.assertEqual([l for l in log if "ACPI Error" in l], [])

    def assertPanicEndsTheVm(self, vm):
        # pvpanic-mmio bound to the DSDT's QEMU0001 device...
        self.assertIn("QEMU0001:00", vm.check("ls /sys/bus/platform/drivers/pvpanic-mmio/"))
        # ...so a kernel panic is a guest panic for crosvm, whatever the guest does next
        # (the kernel command line has panic=-1: it would reboot).
        vm.send("echo c > /proc/sysrq-trigger\n")
        self.assertExit(vm, vmm.STATUS_PANIC, 120)
        self.assertIn("pvpanic: the guest panicked", vm.stderr())

    @staticmethod
    def count(vm):
        # The loop rewrites the file all the time: read until a whole number comes.
        return int(vm.check('c=; until [ -n "$c" ]; do c=$(cat /tmp/count); done; echo $c'))

    def test_sandboxed_two_cpus(self):
        sock = self.td.join("vm.sock")
        vm = self.boot("-c", "2", "-s", sock)
        self.assertCpu(vm, 2)
        self.assertNoAcpiFixedEventErrors(vm)

        # A busy guest (a shell loop counting into a file), suspended for longer than its
        # soft-lockup threshold: resuming tells each vCPU's kvmclock it was paused.
        vm.check("(i=0; while :; do i=$((i + 1)); echo $i > /tmp/count; done) & "
                 "echo $! > /tmp/busy")
        vm.check("until [ -s /tmp/count ]; do sleep 0.1; done")
        status, out, err = vmm.control(sock, "suspend")
        self.assertEqual(status, 0, err)
        time.sleep(PAUSE_S)
        status, out, err = vmm.control(sock, "resume")
        self.assertEqual(status, 0, err)
        # Two watchdog periods (4 s each) for the watchdog to look at the pause.
        before = self.count(vm)
        vm.check("sleep 8")
        after = self.count(vm)
        self.assertGreater(after, before, "the guest's program stopped")
        self.assertEqual(self.dmesg(vm, "soft lockup|BUG:"), [])
        vm.check("kill $(cat /tmp/busy)")

        self.assertPanicEndsTheVm(vm)

    def test_unsandboxed_one_cpu(self):
        vm = self.boot("-c", "1", sandbox=False)
        self.assertCpu(vm, 1)
        self.assertNoAcpiFixedEventErrors(vm)
        self.assertPanicEndsTheVm(vm)


if __name__ == "__main__":
    unittest.main()
