#!/usr/bin/env python3
"""Debian's kernel under `crosvm run --gdb`, debugged by Debian's gdb in batch mode.

One boot (vmlinux, 2 vCPUs, the sandbox, a control socket, nokaslr), one gdb session driven
by a command file, as a user would:
  - attached before the first instruction: rip is the ELF's entry (the 64-bit one, with
    --boot-protocol linux: Debian's vmlinux also has a PVH note, whose 32-bit entry crosvm
    would take by default), `x/4i $pc` is the kernel file's code there (gdb disassembles the
    same bytes from the file), both vCPUs are threads;
  - stepi, one instruction at a time along that code, to the first `sub %a,%b`; a value gdb
    writes to %b before it comes out of the guest's subtraction (then the right value goes back);
  - continue: the guest boots to its userspace marker; Ctrl-C (SIGINT to gdb) stops it and
    `info threads` lists every vCPU; gdb reads panic_timeout (the -1 of crosvm's panic=-1) at
    its kernel virtual address from /proc/kallsyms, writes 1234, continues, and the guest's
    /proc/sys/kernel/panic says 1234; Ctrl-C again and detach: the guest runs on;
  - a second gdb session kills the VM (exit status 0).
On a machine with hardware KVM the same session also sets `hbreak` at start_kernel, continues to
it and hits a watchpoint on jiffies; in the nested test host no breakpoint fires for any VMM
(docs/platform.md), so that test reports itself skipped there.
"""

import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import unittest

import gdbremote
import guestlib
import linuxvm
import vmm

sys.path.insert(0, os.path.join(linuxvm.SRC_DIR, "scripts", "lib"))
import testvm  # noqa: E402

GDB = "gdb"
WRITTEN = 0x1234567890abcdef
SESSION_TIMEOUT = 600

INSN_RE = re.compile(r"^(?:=>)?\s*0x([0-9a-f]+)(?: <[^>]*>)?:\s*(.*)$")
VALUE_RE = re.compile(r"^\$\d+ = (0x[0-9a-f]+|-?\d+)", re.M)


def in_nested_host():
    with open("/proc/cmdline") as f:
        return "testvm.nonce=" in f.read()


def breakpoints_fire():
    """(True, "") on hardware KVM; (False, why) where no breakpoint is delivered."""
    if in_nested_host():
        return False, ("breakpoints cannot fire in the nested test host: QEMU TCG's emulated "
                       "SVM delivers none, hardware or software, for any VMM (docs/platform.md)")
    ok, why = testvm.kvm_here()
    return ok, why


def load_segments(path):
    """[(offset, vaddr, paddr, filesz)] of an ELF64's PT_LOAD segments, and its entry."""
    with open(path, "rb") as f:
        head = f.read(64)
        entry, phoff = struct.unpack_from("<QQ", head, 24)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
    segs = []
    for i in range(phnum):
        p_type, _, off, vaddr, paddr, filesz = struct.unpack_from("<IIQQQQ", ph, i * phentsize)
        if p_type == 1:
            segs.append((off, vaddr, paddr, filesz))
    return entry, segs


def file_bytes(path, off, n):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(n)


def insn(line):
    """(address, instruction text without its address and trailing comment) of x/i output."""
    m = INSN_RE.match(line)
    if not m:
        return None
    return int(m.group(1), 16), " ".join(re.sub(r"\s+#.*$", "", m.group(2)).split())


def insns(text):
    return [i for i in (insn(l) for l in text.splitlines()) if i]


def values(text):
    return [int(v, 0) for v in VALUE_RE.findall(text)]


def sections(transcript):
    """The gdb transcript cut at its "@@name" lines: {name: text}."""
    out, name = {}, None
    for line in transcript.splitlines():
        if line.startswith("@@"):
            name = line[2:].strip()
            out[name] = ""
        elif name:
            out[name] += line + "\n"
    return out


def kallsyms(vm, *names):
    vm.check("echo 0 > /proc/sys/kernel/kptr_restrict")
    pattern = "|".join(names)
    found = {}
    for line in vm.check(f"grep -E ' ({pattern})$' /proc/kallsyms").splitlines():
        addr, _, name = line.split()
        found[name] = int(addr, 16)
    missing = set(names) - set(found)
    if missing:
        raise AssertionError(f"not in /proc/kallsyms: {missing}")
    return found


class LinuxGdb(unittest.TestCase):
    """The session runs once (setUpClass); each test checks one part of what it saw."""

    @classmethod
    def setUpClass(cls):
        cls.td = vmm.TempDir()
        try:
            cls.run_session()
        except BaseException:
            cls.td.__exit__()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.td.__exit__()

    @classmethod
    def plan(cls):
        """What the kernel file says: entry, code bytes, the instructions to step."""
        g = linuxvm.guest()
        cls.vmlinux = g.vmlinux
        cls.entry, segs = load_segments(g.vmlinux)
        off, vaddr, paddr, _ = next(s for s in segs if s[2] <= cls.entry < s[2] + s[3])
        cls.code = file_bytes(g.vmlinux, off + cls.entry - paddr, 16)
        cls.entry_vaddr = cls.entry - paddr + vaddr
        out = subprocess.run([GDB, "-nx", "-batch", "-ex", f"x/16i {cls.entry_vaddr:#x}",
                              g.vmlinux], capture_output=True, text=True, timeout=120).stdout
        cls.file_insns = insns(out)
        if len(cls.file_insns) != 16:
            raise AssertionError(f"gdb did not disassemble the kernel file: {out}")
        # Step to the first register-register subtraction; its operands carry the write test.
        for k, (_, text) in enumerate(cls.file_insns):
            m = re.fullmatch(r"sub %(\w+),%(\w+)", text)
            if m and k > 0:
                cls.steps, cls.sub_src, cls.sub_dst = k, m.group(1), m.group(2)
                break
        else:
            raise AssertionError("no `sub %reg,%reg` in the kernel's first 16 instructions: "
                                 f"update this test for this kernel: {cls.file_insns}")
        cls.step_pcs = [a - cls.entry_vaddr + cls.entry for a, _ in cls.file_insns[1:cls.steps + 1]]

    @classmethod
    def hardware_addresses(cls):
        """start_kernel and jiffies from a boot before (nokaslr: they stay put)."""
        with linuxvm.LinuxVM("-c", "2", kernel="vmlinux", params="nokaslr") as vm:
            vm.wait_ready()
            syms = kallsyms(vm, "start_kernel", "jiffies_64")
            vm.send("poweroff -f\n")
            vm.wait_exit(180)
        return syms

    @classmethod
    def script(cls, hw):
        src, dst = cls.sub_src, cls.sub_dst
        lines = ["set pagination off", "set confirm off", "set width 0", "set height 0",
                 f"target remote :{cls.port}",
                 "echo @@regs\\n", "info registers rip",
                 "echo @@threads_at_entry\\n", "info threads",
                 "echo @@insns\\n", "x/4i $pc",
                 "echo @@bytes\\n", "x/16xb $pc",
                 "echo @@steps\\n"]
        for _ in range(cls.steps):
            lines += ["stepi", "p/x $pc"]
        lines += ["echo @@regwrite\\n", f"p/x ${src}", f"set $orig = ${dst}", "p/x $orig",
                  f"set ${dst} = {WRITTEN:#x}", "stepi", "p/x $pc", f"p/x ${dst}",
                  f"set ${dst} = $orig - ${src}", f"p/x ${dst}"]
        if hw:
            lines += ["echo @@hbreak\\n", f"hbreak *{hw['start_kernel']:#x}", "continue",
                      "p/x $pc", "delete",
                      "echo @@watch\\n", f"watch *(unsigned long *){hw['jiffies_64']:#x}",
                      "continue", "p/x $pc", "delete"]
        lines += ["echo @@continue\\n", "continue",
                  "echo @@interrupted\\n", "info threads",
                  f"source {cls.addrs}",
                  "echo @@memory\\n", "p *(int *)$panic_timeout",
                  "set var *(int *)$panic_timeout = 1234", "p *(int *)$panic_timeout",
                  "echo @@continue2\\n", "continue",
                  "echo @@interrupted2\\n", "info threads", "detach",
                  "echo @@detached\\n"]
        return "\n".join(lines) + "\n"

    @classmethod
    def run_session(cls):
        cls.plan()
        cls.hw_ok, cls.hw_why = breakpoints_fire()
        hw = cls.hardware_addresses() if cls.hw_ok else None
        cls.hw = hw
        cls.port = gdbremote.free_port()
        cls.addrs = cls.td.join("addrs.gdb")
        sock = cls.td.join("vm.sock")
        script = cls.td.join("session.gdb")
        with open(script, "w") as f:
            f.write(cls.script(hw))
        vm = linuxvm.LinuxVM("-c", "2", "-s", sock, "--gdb", cls.port, "--boot-protocol",
                             "linux", kernel="vmlinux", params="nokaslr")
        try:
            gdb = guestlib.Session([GDB, "-nx", "-batch", "-x", script, cls.vmlinux])
            try:
                cls.drive(vm, gdb)
            finally:
                cls.gdb_rc, _ = gdb.wait(30)
                cls.transcript = gdb.output.decode(errors="replace")
                gdb.close()
            # A second debugger, to kill it.
            kill = cls.td.join("kill.gdb")
            with open(kill, "w") as f:
                f.write(f"set confirm off\ntarget remote :{cls.port}\necho @@threads\\n\n"
                        "info threads\necho @@kill\\n\nkill\n")
            res = subprocess.run([GDB, "-nx", "-batch", "-x", kill], capture_output=True,
                                 text=True, timeout=SESSION_TIMEOUT)
            cls.kill_rc, cls.kill_out = res.returncode, res.stdout + res.stderr
            cls.vm_status = vm.wait_exit(180)
            cls.vm_log = vm.stderr()
        finally:
            vm.close()

    @classmethod
    def drive(cls, vm, gdb):
        gdb.expect("@@continue", timeout=SESSION_TIMEOUT)
        vm.wait_ready()
        cls.booted = True
        syms = kallsyms(vm, "panic_timeout")
        cls.panic_before = vm.check("cat /proc/sys/kernel/panic").strip()
        with open(cls.addrs, "w") as f:
            f.write(f"set $panic_timeout = {syms['panic_timeout']:#x}\n")
        gdb.proc.send_signal(signal.SIGINT)  # Ctrl-C
        gdb.expect("@@continue2", timeout=SESSION_TIMEOUT)
        cls.panic_after = vm.check("cat /proc/sys/kernel/panic").strip()
        gdb.proc.send_signal(signal.SIGINT)
        gdb.expect("@@detached", timeout=SESSION_TIMEOUT)
        gdb.wait(60)
        # Detached: the guest runs on.
        cls.alive = vm.check("echo alive").strip()

    def part(self, name):
        s = sections(self.transcript)
        self.assertIn(name, s, self.transcript[-4000:])
        return s[name]

    def test_attach_before_the_first_instruction(self):
        regs = self.part("regs")
        self.assertRegex(regs, rf"rip\s+{self.entry:#x}\s")
        threads = self.part("threads_at_entry")
        self.assertRegex(threads, r"Thread 1 \(vCPU 0\)")
        self.assertRegex(threads, r"Thread 2 \(vCPU 1\)")
        # The code at rip is the kernel file's: the same bytes, the same instructions.
        got = bytes(int(b, 16) for b in re.findall(r"\b0x([0-9a-f]{2})\b",
                                                   self.part("bytes").split(":", 1)[1]))
        self.assertEqual(got, self.code)
        live = insns(self.part("insns"))
        self.assertEqual([a for a, _ in live][0], self.entry)
        self.assertEqual([t for _, t in live], [t for _, t in self.file_insns[:4]])

    def test_stepi_moves_along_the_code(self):
        self.assertEqual(values(self.part("steps")), self.step_pcs)

    def test_a_written_register_takes_effect(self):
        mask = 2**64 - 1
        src, orig, pc, dst, restored = (v & mask for v in values(self.part("regwrite")))
        # The guest's own `sub` ran on the value gdb wrote...
        self.assertEqual(pc, self.file_insns[self.steps + 1][0] - self.entry_vaddr + self.entry)
        self.assertEqual(dst, (WRITTEN - src) & mask)
        # ...and the value it should have had went back, for the boot to go on.
        self.assertNotEqual(orig, WRITTEN)
        self.assertEqual(restored, (orig - src) & mask)

    def test_interrupt_threads_memory_and_detach(self):
        self.assertTrue(self.booted)  # continue: the guest reached its userspace marker
        intr = self.part("interrupted")
        self.assertIn("received signal SIGINT", self.transcript)
        self.assertRegex(intr, r"Thread 1 \(vCPU 0\)")
        self.assertRegex(intr, r"Thread 2 \(vCPU 1\)")
        # Kernel memory at its virtual address, through the guest's page tables.
        self.assertEqual(self.panic_before, "-1")
        self.assertEqual(values(self.part("memory")), [-1, 1234])
        self.assertEqual(self.panic_after, "1234")
        self.assertRegex(self.part("interrupted2"), r"Thread 2 \(vCPU 1\)")
        self.assertIn("detached", self.part("interrupted2"))
        self.assertEqual(self.gdb_rc, 0, self.transcript[-4000:])
        self.assertEqual(self.alive, "alive")

    def test_kill_ends_the_vm(self):
        self.assertEqual(self.kill_rc, 0, self.kill_out)
        self.assertRegex(self.kill_out, r"Thread 2 \(vCPU 1\)")
        self.assertIn("killed", self.kill_out)
        self.assertEqual(self.vm_status, vmm.STATUS_STOP, self.vm_log[-4000:])
        self.assertIn("gdb: the debugger killed the VM", self.vm_log)
        vmm.no_sanitizer_report(self, self.vm_log)

    def test_hardware_breakpoint_and_watchpoint(self):
        if not self.hw_ok:
            self.skipTest(self.hw_why)
        hb = self.part("hbreak")
        self.assertIn("Hardware assisted breakpoint 1", hb)
        self.assertIn("hit Breakpoint 1", hb)
        self.assertEqual(values(hb)[-1], self.hw["start_kernel"])
        w = self.part("watch")
        self.assertIn("Hardware watchpoint 2", w)
        self.assertIn("Old value", w)
        self.assertIn("New value", w)


if __name__ == "__main__":
    unittest.main(verbosity=2)
