"""crosvm run on the test guests: boot formats, memory, SMP, serial, exits, bad input.

Every VM test runs twice: sandboxed (the default) and with --disable-sandbox.
"""

import os
import pty
import select
import signal
import subprocess
import termios
import time
import unittest

import guestlib
import vmm
from vmm import run_crosvm, guest

BASE_CMDLINE = "panic=-1 console=ttyS0"


def expected_ram(mem_mib):
    """Bytes of RAM in crosvm's x86_64 e820 map for -m mem_mib."""
    size = mem_mib << 20
    low = min(size, 0xd0000000)
    return 0x9fc00 + (low - 0x100000) + (size - low)


class BootTests:
    sandbox = True

    def run_vm(self, kernel, *opts, **kw):
        return run_crosvm(kernel, *opts, sandbox=self.sandbox, **kw)

    def assertClean(self, r, status=0):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.results.failed, [], r)
        vmm.no_sanitizer_report(self, r.err)

    def check_bootinfo(self, kind, proto):
        with vmm.TempDir() as td:
            initrd = os.urandom(20000)
            path = td.join("initrd")
            with open(path, "wb") as f:
                f.write(initrd)
            r = self.run_vm(guest("bootinfo", kind), "-m", 512, "-i", path,
                            "-p", "foo=bar", "-p", 'quoted="a b"')
        self.assertClean(r)
        info = r.results.info
        self.assertTrue(r.results.done, r)
        self.assertEqual(info["boot"], proto)
        self.assertEqual(info["cmdline"], BASE_CMDLINE + ' foo=bar quoted="a b"')
        addr, size, crc = info["initrd"].split(",")
        self.assertEqual(int(size), len(initrd))
        self.assertEqual(int(crc, 16), guestlib.crc32(initrd))
        self.assertEqual(int(info["mem_total"]), expected_ram(512))
        self.assertEqual(info["e820_sorted"], "yes")
        self.assertEqual(info["rsdp"], "0xe0000")
        for name in ("e820_disjoint", "e820_low_ram", "image_in_ram", "initrd_in_ram",
                     "initrd_no_overlap", "acpi_rsdp"):
            self.assertIn(name, r.results.passed)
        if proto == "linux64":
            self.assertEqual(info["loader_type"], "0xff")
            self.assertIn("9", info["setup_data"].split(","))  # SETUP_RNG_SEED
            self.assertEqual(info["rng_seed_len"], "32")
        return r

    def test_pvh_elf(self):
        self.check_bootinfo("elf", "pvh")

    def test_vmlinux_64bit_entry(self):
        self.check_bootinfo("vmlinux", "linux64")

    def test_bzimage(self):
        r = self.check_bootinfo("bzImage", "linux64")
        self.assertEqual(r.results.info["boot_version"], "0x020f")

    def test_boot_protocol_option(self):
        r = self.run_vm(guest("bootinfo", "elf"), "--boot-protocol", "linux")
        self.assertClean(r)
        self.assertEqual(r.results.info["boot"], "linux64")
        r = self.run_vm(guest("bootinfo", "vmlinux"), "--boot-protocol", "pvh")
        self.assertEqual(r.status, vmm.STATUS_INVALID, r)
        self.assertIn("PVH", r.err)

    def test_memory_above_4g(self):
        r = self.run_vm(guest("bootinfo", "vmlinux"), "-m", 4608)
        self.assertClean(r)
        self.assertEqual(int(r.results.info["mem_total"]), expected_ram(4608))
        regions = [(a, s) for a, s, t in r.results.e820() if t == 1]
        self.assertIn((0x100000000, (4608 << 20) - 0xd0000000), regions)
        self.assertIn((0x100000, 0xd0000000 - 0x100000), regions)

    def test_memory_is_overcommitted(self):
        # Guest RAM is allocated lazily, as crosvm and QEMU do: twice the host's RAM and swap
        # is not an error as long as the guest does not touch it all.
        with open("/proc/meminfo") as f:
            kib = {k: int(v.split()[0]) for k, v in (l.split(":", 1) for l in f)}
        mib = 2 * (kib["MemTotal"] + kib["SwapTotal"]) // 1024
        r = self.run_vm(guest("bootinfo", "vmlinux"), "-m", mib)
        self.assertClean(r)
        self.assertEqual(int(r.results.info["mem_total"]), expected_ram(mib))

    def test_default_memory_is_256_mib(self):
        r = self.run_vm(guest("bootinfo", "vmlinux"))
        self.assertClean(r)
        self.assertEqual(int(r.results.info["mem_total"]), expected_ram(256))

    def test_device_tree_blob(self):
        with vmm.TempDir() as td:
            with open(td.join("initrd"), "wb") as f:
                f.write(b"x" * 4096)
            dtb = td.join("out.dtb")
            r = self.run_vm(guest("bootinfo", "vmlinux"), "-i", td.join("initrd"),
                            "--dump-device-tree-blob", dtb)
            self.assertClean(r)
            self.assertEqual(r.results.info.get("dtb_magic"), "0xd00dfeed")
            self.assertIn("2", r.results.info["setup_data"].split(","))  # SETUP_DTB
            dts = subprocess.run(["dtc", "-I", "dtb", "-O", "dts", dtb], capture_output=True,
                                 text=True, check=True).stdout
        addr = int(r.results.info["initrd"].split(",")[0], 16)
        self.assertIn("chosen", dts)
        self.assertIn("linux,initrd-start", dts)
        self.assertIn("0x%x" % addr, dts.replace("0x00000000 ", "0x"))

    def test_smp(self):
        for n in (2, 3, 4):
            r = self.run_vm(guest("smp"), "-c", n)
            self.assertClean(r)
            self.assertIn("smp cpus=%d" % n, r.results.passed)
            aps = [p for p in r.results.passed if p.startswith("ap")]
            self.assertEqual(len(aps), n - 1, r)
            # Every vCPU starts with the same MTRRs, as firmware leaves them.
            for i in range(1, n):
                self.assertEqual(r.results.info["ap%d.mtrr_def_type" % i], "0xc06", r)

    def test_cpu_as_the_guest_sees_it(self):
        # -c 3: a package of 3 cores, 4 APIC ids; the caches must say the same.
        r = self.run_vm(guest("bootinfo", "vmlinux"), "-c", 3)
        self.assertClean(r)
        info = r.results.info
        host = vmm.host_cpu()
        amd = host["vendor_id"] == "AuthenticAMD"
        # The host's brand string (KVM hands it over empty), as Linux shows it.
        self.assertEqual(info["cpu.brand"], host["model name"], r)
        # The in-kernel LAPIC's TSC-deadline mode is advertised when KVM has it.
        self.assertEqual(info["cpu.tsc_deadline"],
                         "1" if vmm.kvm_has(vmm.KVM_CAP_TSC_DEADLINE_TIMER) else "0")
        # MTRR and PAT both advertised (and mirrored where AMD mirrors them)...
        self.assertEqual((info["cpu.mtrr"], info["cpu.pat"]), ("1", "1"))
        if amd:
            self.assertEqual((info["cpu.ext_mtrr"], info["cpu.ext_pat"]), ("1", "1"))
        # ...and set as firmware leaves them: enabled, fixed ranges on, default write-back,
        # the first MiB write-back, [0xd0000000, 4 GiB) uncacheable in two ranges.
        self.assertEqual(info["mtrr.def_type"], "0xc06")
        self.assertEqual(info["mtrr.fixed"], ",".join(["0x606060606060606"] * 11))
        var = sorted(v for k, v in info.items() if k.startswith("mtrr.var."))
        self.assertEqual(len(var), 2, var)
        (b0, m0), (b1, m1) = [[int(x, 16) for x in v.split(",")] for v in var]
        self.assertEqual((b0, m0 & 0xffffffff), (0xd0000000, 0xf0000800))
        self.assertEqual((b1, m1 & 0xffffffff), (0xe0000000, 0xe0000800))
        # Cache descriptors: L1/L2 per core (one thread), L3 shared by the package.
        caches = [v.split(",") for k, v in info.items() if k.startswith("cache.")]
        self.assertTrue(any(c[0] == "L1D" for c in caches), caches)
        for name, size, sharing in caches:
            self.assertGreater(int(size), 0, caches)
            self.assertEqual(int(sharing), 4 if int(name[1]) >= 3 else 1, caches)
        if amd:
            # L1 cache and TLB leaf from the host, which KVM leaves empty.
            l1 = [int(x, 16) for x in info["cpu.l1"].split(",")]
            self.assertTrue(all(l1) and (l1[0] >> 24) > 0, info["cpu.l1"])

    def test_interrupts_and_rtc(self):
        r = self.run_vm(guest("irq"))
        self.assertClean(r)
        for name in ("lapic_timer", "serial_irq", "serial_iir", "rtc"):
            self.assertIn(name, r.results.passed)

    def test_serial_input_echo(self):
        s = vmm.spawn_crosvm(guest("demo"), sandbox=self.sandbox)
        try:
            s.expect("demo> ", timeout=20)
            s.send("echo hello from the host\n")
            s.expect("hello from the host", timeout=20)
            # A burst longer than the UART FIFO: every byte must arrive, in order.
            burst = "".join(chr(ord("a") + i % 26) for i in range(100))
            s.send("echo " + burst + "\n")
            s.expect(burst, timeout=30)
            s.send("poweroff\n")
            status, out = s.wait(timeout=20)
        finally:
            s.close()
        self.assertEqual(status, 0, out)

    def test_unclaimed_ports_and_mmio_are_harmless(self):
        # The probe guest reads every port, writes all ones to every port no device owns and
        # pokes MMIO holes: the VM must keep running and unclaimed reads give all ones.
        r = self.run_vm(guest("probe"))
        self.assertClean(r)
        self.assertTrue(r.results.done, r)
        for name in ("probe_ports_read", "probe_unclaimed_reads_ones", "probe_ports_write",
                     "probe_mmio"):
            self.assertIn(name, r.results.passed)

    def test_poweroff_status(self):
        r = self.run_vm(guest("demo"), "-p", "demo.run=poweroff")
        self.assertClean(r)

    def test_reset_status(self):
        r = self.run_vm(guest("demo"), "-p", "demo.run=reset")
        self.assertEqual(r.status, vmm.STATUS_RESET, r)
        r = run_crosvm(guest("demo"), "-p", "demo.run=reset", sandbox=self.sandbox,
                       extended=False)
        self.assertEqual(r.status, 0, r)

    def test_no_i8042_still_resets_through_acpi(self):
        # The FADT reset register (0xcf9) works without the i8042.
        r = self.run_vm(guest("demo"), "--no-i8042", "-p", "demo.run=reset")
        self.assertEqual(r.status, vmm.STATUS_RESET, r)

    def test_panic_status(self):
        r = self.run_vm(guest("demo"), "-p", "demo.run=panic")
        self.assertEqual(r.status, vmm.STATUS_PANIC, r)

    def test_no_instruction_after_the_request_that_ends_the_vm(self):
        # The guest writes the ACPI S5 value, the FADT reset register or pvpanic and then
        # prints at once, over and over. The main thread gets the lowest priority, as on a
        # busy host, so it is slow to stop the vCPUs: the vCPU must stop by itself after the
        # request, and not one byte of the print may come out.
        for kind, status in (("poweroff", vmm.STATUS_STOP), ("reset", vmm.STATUS_RESET),
                             ("panic", vmm.STATUS_PANIC)):
            s = vmm.spawn_crosvm(guest("demo"), "-c", 2, sandbox=self.sandbox)
            try:
                s.expect("demo> ", timeout=30)
                os.setpriority(os.PRIO_PROCESS, s.proc.pid, 19)  # the main thread only
                s.send("runon %s\n" % kind)
                rc, out = s.wait(timeout=30)
            finally:
                s.close()
            self.assertEqual(rc, status, out)
            self.assertNotIn("ranon", out)
            self.assertNotIn("FAIL runon", out)

    def test_triple_fault_is_reported(self):
        r = self.run_vm(guest("demo"), "-p", "demo.run=triplefault")
        self.assertEqual(r.status, vmm.STATUS_STOP, r)
        self.assertIn("triple fault", r.err)
        self.assertIn("rip=", r.err)

    def test_emulation_failure_is_a_crash(self):
        # An instruction fetch from a hole that is not RAM: no KVM can emulate that.
        r = self.run_vm(guest("fault"), "-p", "fault.kind=mmio_exec")
        self.assertEqual(r.status, vmm.STATUS_CRASH, r)
        self.assertIn("could not emulate", r.err)
        self.assertIn("rip=", r.err)
        vmm.no_sanitizer_report(self, r.err)

    def test_serial_to_file(self):
        with vmm.TempDir() as td:
            out = td.join("console.log")
            r = self.run_vm(guest("demo"), "--serial",
                            "type=file,path=%s,num=1,console" % out, "-p", "demo.oneshot")
            self.assertClean(r)
            with open(out) as f:
                text = f.read()
        self.assertIn("crosvm demo guest: hello", text)
        self.assertNotIn("crosvm demo guest", r.out)

    def test_console_on_com2(self):
        r = self.run_vm(guest("bootinfo", "vmlinux"), "--serial",
                        "type=stdout,num=2,console,earlycon", "--serial", "type=sink,num=1")
        # The guest prints on COM1, which is now a sink: only the command line matters.
        self.assertEqual(r.status, 0, r)
        self.assertEqual(r.out.strip(), "")

    def test_dump_acpi(self):
        with vmm.TempDir() as td:
            r = self.run_vm(guest("acpi"), "-c", 2, "--dump-acpi", td.path)
            self.assertClean(r)
            tables = sorted(os.listdir(td.path))
            for sig in ("APIC", "DSDT", "FACP", "MCFG", "XSDT"):
                self.assertIn(sig + ".dat", tables)
            for t in tables:
                if t == "RSDP.dat":
                    continue  # iasl cannot load an RSDP on its own
                p = subprocess.run(["iasl", "-d", td.join(t)], capture_output=True,
                                   text=True, cwd=td.path)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class Terminal(unittest.TestCase):
    """The console's terminal is raw while the VM runs and restored on every exit path."""

    def spawn_on_pty(self, *opts):
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        self.before = termios.tcgetattr(slave)
        self.assertTrue(self.before[3] & termios.ICANON)
        proc = subprocess.Popen(vmm.command(guest("demo"), *opts), stdin=slave, stdout=slave,
                                stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc, master, slave

    def read_until(self, master, text, timeout=30):
        buf = b""
        deadline = time.monotonic() + timeout
        while text not in buf:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "did not see %r in %r" % (text, buf))
            if select.select([master], [], [], left)[0]:
                buf += os.read(master, 4096)
        return buf

    def check_restored(self, slave, before):
        after = termios.tcgetattr(slave)
        self.assertEqual(after[3] & (termios.ICANON | termios.ECHO | termios.ISIG),
                         before[3] & (termios.ICANON | termios.ECHO | termios.ISIG))

    def test_raw_while_running_restored_on_poweroff(self):
        proc, master, slave = self.spawn_on_pty()
        before = self.before
        self.read_until(master, b"demo> ")
        self.assertFalse(termios.tcgetattr(slave)[3] & termios.ICANON)
        # Ctrl-C goes to the guest as a byte, it does not stop the VMM.
        os.write(master, b"\x03echo alive\n")
        self.read_until(master, b"alive")
        self.assertIsNone(proc.poll())
        os.write(master, b"poweroff\n")
        self.assertEqual(proc.wait(timeout=30), 0)
        self.check_restored(slave, before)

    def test_restored_after_sigterm(self):
        proc, master, slave = self.spawn_on_pty()
        before = self.before
        self.read_until(master, b"demo> ")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=30), 0)
        self.check_restored(slave, before)

    def test_restored_after_guest_reset(self):
        proc, master, slave = self.spawn_on_pty()
        before = self.before
        self.read_until(master, b"demo> ")
        os.write(master, b"reset\n")
        self.assertEqual(proc.wait(timeout=30), vmm.STATUS_RESET)
        self.check_restored(slave, before)


class SandboxedBoot(BootTests, unittest.TestCase):
    sandbox = True


class UnsandboxedBoot(BootTests, unittest.TestCase):
    sandbox = False


class BadInput(unittest.TestCase):
    """Each refusal: a clear message, status 35 (1 without --extended-status), no crash."""

    def refuse(self, kernel, *opts, expect=None, extended=True):
        r = run_crosvm(kernel, *opts, sandbox=False, extended=extended, timeout=30)
        self.assertEqual(r.status, vmm.STATUS_INVALID if extended else 1, r)
        if expect:
            self.assertIn(expect, r.err)
        vmm.no_sanitizer_report(self, r.err)
        return r

    def test_missing_kernel(self):
        self.refuse("/nonexistent/vmlinux", expect="No such file")
        self.refuse("/nonexistent/vmlinux", expect="No such file", extended=False)

    def test_kernel_not_a_file(self):
        self.refuse("/tmp", expect="not a regular file")

    def test_unreadable_kernel(self):
        with vmm.TempDir() as td:
            path = td.join("k")
            with open(path, "wb") as f:
                f.write(b"x")
            os.chmod(path, 0)
            # Root can read anything; prove the path at least through a directory instead.
            if os.geteuid() == 0:
                os.chmod(path, 0o644)
                os.mkdir(td.join("d"))
                self.refuse(td.join("d"), expect="not a regular file")
            else:
                self.refuse(path, expect="Permission denied")

    def test_empty_kernel(self):
        with vmm.TempDir() as td:
            open(td.join("k"), "wb").close()
            self.refuse(td.join("k"), expect="empty")

    def test_garbage_kernel(self):
        with vmm.TempDir() as td:
            with open(td.join("k"), "wb") as f:
                f.write(os.urandom(8192))
            self.refuse(td.join("k"), expect="kernel")

    def test_truncated_kernels(self):
        for kind in ("elf", "vmlinux", "bzImage"):
            with open(guest("bootinfo", kind), "rb") as f:
                data = f.read()
            with vmm.TempDir() as td:
                for cut in (16, 64, 0x300, len(data) // 2):
                    with open(td.join("k"), "wb") as f:
                        f.write(data[:cut])
                    self.refuse(td.join("k"), expect="kernel")

    def test_kernel_larger_than_memory(self):
        # An ELF whose segment lies beyond 16 MiB of RAM.
        with open(guest("bootinfo", "vmlinux"), "rb") as f:
            data = f.read()
        with vmm.TempDir() as td:
            big = td.join("big")
            with open(big, "wb") as f:
                f.write(data)
            self.refuse(big, "-m", 1, expect="kernel")

    def test_bad_initrd(self):
        self.refuse(guest("bootinfo"), "-i", "/nonexistent/initrd", expect="initrd")
        with vmm.TempDir() as td:
            open(td.join("i"), "wb").close()
            self.refuse(guest("bootinfo"), "-i", td.join("i"), expect="empty")

    def test_bad_memory_sizes(self):
        self.refuse(guest("demo"), "-m", 0, expect="--mem")
        self.refuse(guest("demo"), "-m", "lots", expect="--mem")
        # 1 PiB: more than the guest's physical address space (at most 52 bits) holds.
        self.refuse(guest("demo"), "-m", 1 << 30, expect="physical address space")
        self.refuse(guest("demo"), "-m", 99999999999999, expect="--mem")

    def test_bad_cpu_counts(self):
        self.refuse(guest("demo"), "-c", 0, expect="--cpus")
        self.refuse(guest("demo"), "-c", 4000, expect="--cpus")
        self.refuse(guest("demo"), "-c", "two", expect="--cpus")

    def test_unknown_options(self):
        self.refuse(guest("demo"), "--frobnicate", expect="unknown option")
        self.refuse(guest("demo"), "--pmem", "pmem.img", expect="not supported")
        r = subprocess.run([vmm.CROSVM, "--extended-status", "--bogus", "run", "x"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 35)
        self.assertIn("unknown global option", r.stderr)
        r = subprocess.run([vmm.CROSVM, "frobnicate"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)

    def test_bad_serial_options(self):
        self.refuse(guest("demo"), "--serial", "type=bogus", expect="--serial")
        self.refuse(guest("demo"), "--serial", "type=file", expect="path")
        self.refuse(guest("demo"), "--serial", "type=stdout,num=5", expect="num")
        self.refuse(guest("demo"), "--serial", "type=stdout,num=1,console",
                    "--serial", "type=sink,num=2,console", expect="console")

    def test_bad_command_line(self):
        self.refuse(guest("demo"), "-p", "a\nb", expect="control character")
        self.refuse(guest("demo"), "-p", "x" * 3000, expect="too long")

    def test_missing_kvm_device(self):
        self.refuse(guest("demo"), "--hypervisor", "kvm[device=/nonexistent/kvm]",
                    expect="/nonexistent/kvm")

    def test_missing_kernel_argument(self):
        r = run_crosvm(None, sandbox=False)
        self.assertEqual(r.status, vmm.STATUS_INVALID, r)
        self.assertIn("KERNEL", r.err)


class CommandLine(unittest.TestCase):
    def test_help_lists_every_option(self):
        out = subprocess.run([vmm.CROSVM, "run", "--help"], capture_output=True, text=True,
                             check=True).stdout
        for opt in ("--mem", "--cpus", "--initrd", "--params", "--serial", "--block",
                    "--root", "--rwroot", "--disk", "--rwdisk", "--disable-sandbox",
                    "--no-i8042", "--no-rtc", "--no-rng", "--no-balloon", "--socket",
                    "--dump-device-tree-blob", "--seccomp-policy-dir",
                    "--seccomp-log-failures", "--pivot-root"):
            self.assertIn(opt, out)
        out = subprocess.run([vmm.CROSVM, "--help"], capture_output=True, text=True,
                             check=True).stdout
        for cmd in ("run", "stop", "suspend", "resume", "powerbtn", "balloon", "disk",
                    "--extended-status", "--log-level", "--syslog-tag", "--no-syslog"):
            self.assertIn(cmd, out)

    def test_version(self):
        out = subprocess.run([vmm.CROSVM, "version"], capture_output=True, text=True,
                             check=True).stdout
        self.assertRegex(out, r"^crosvm \d+\.\d+\.\d+")


if __name__ == "__main__":
    unittest.main()
