#!/usr/bin/env python3
"""crosvm run --gdb against the freestanding test guests, through a raw GDB remote protocol
client (gdbremote.py), for what must be exact: registers and memory written by the debugger and
read back from the guest's own output (test/guests/debuggee.c), single steps instruction by
instruction, every vCPU a thread; and the server's hostile-input rules: garbage, bad checksums
and oversized packets get '-' while the VM goes on, a second client is turned away, a client
that goes away lets the guest run, kill ends the VM. The control socket's suspend and the
debugger's stop are checked to hold the vCPUs independently (test/guests/ticker.c).
Breakpoints that fire are the Linux suite's business where a KVM delivers them
(test_linux_gdb.py); here, as in test_gdb_kvm's unit tests, only what they program is seen.
"""

import re
import socket
import subprocess
import time
import unittest

import gdbremote
import guestlib
import vmm
from gdbremote import le, le_hex
from vmm import guest

TICK_RE = re.compile(rb"TICK (\d+)")
ZERO_PAGE = 0x7000


def symbols(elf):
    out = subprocess.run(["nm", elf], capture_output=True, text=True, check=True).stdout
    return {name: int(addr, 16) for addr, _, name in (l.split() for l in out.splitlines()
                                                      if len(l.split()) == 3)}


class GdbTestCase(unittest.TestCase):
    def setUp(self):
        self.td = vmm.TempDir()
        self.addCleanup(self.td.__exit__)
        self.port = gdbremote.free_port()

    def spawn(self, kernel, *opts, sandbox=True):
        s = vmm.spawn_crosvm(kernel, "--gdb", self.port, *opts, sandbox=sandbox)
        self.addCleanup(vmm.kill_tree, s)
        return s

    def connect(self):
        r = gdbremote.Remote(self.port)
        self.addCleanup(r.close)
        return r

    def ticks(self, s):
        found = TICK_RE.findall(s.output)
        return int(found[-1]) if found else 0

    def wait_tick_after(self, s, n, timeout=60):
        """Waits until a TICK line later than n appears; returns its number."""
        deadline = time.monotonic() + timeout
        while self.ticks(s) <= n:
            self.assertLess(time.monotonic(), deadline, f"no TICK after {n}")
            s._read(0.2)
        return self.ticks(s)

    def assert_no_ticks(self, s, seconds=1.5):
        """The guest is held: not one TICK line comes (it prints one every 50 ms running)."""
        while s._read(0) is True:
            pass
        before = self.ticks(s)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            s._read(0.1)
        self.assertEqual(self.ticks(s), before, "the guest ran while it should be held")


class Debuggee(GdbTestCase):
    def test_registers_memory_steps_and_threads(self):
        image = guest("debuggee", "vmlinux")
        sym = symbols(guest("debuggee", "elf"))
        with open(image, "rb") as f:
            entry, _ = guestlib.elf_segments(f.read())
        sock = self.td.join("vm.sock")
        # Sandboxed, two vCPUs, a control socket: all at once.
        s = self.spawn(image, "-c", "2", "-s", sock)
        r = self.connect()

        self.assertIn("PacketSize=4000", r.ask_str("qSupported:multiprocess+;hwbreak+"))
        self.assertEqual(r.ask_str("?"), "T05thread:1;")
        self.assertEqual(r.ask_str("qfThreadInfo"), "m1,2")
        self.assertEqual(r.ask_str("qsThreadInfo"), "l")
        layout = r.register_layout()
        size = sum(sz for _, _, sz in layout.values())

        def reg(g, name):
            _, off, sz = layout[name]
            return le(g[2 * off:2 * (off + sz)])

        # Before the first instruction: the 64-bit entry, the zero page in rsi.
        g = r.ask_str("g")
        self.assertEqual(len(g), 2 * size)
        self.assertEqual(reg(g, "rip"), entry)
        self.assertEqual(reg(g, "rsi"), ZERO_PAGE)
        self.assertEqual(reg(g, "cr0") & 0x80000001, 0x80000001)  # long mode, paging
        # Memory at rip is the image's bytes there.
        with open(guest("debuggee", "elf"), "rb") as f:
            data = f.read()
        _, segs = guestlib.elf_segments(data)
        p_off, p_paddr = next((o, a) for t, o, a, fs, _ in segs
                              if t == 1 and a <= entry < a + fs)
        code = data[p_off + entry - p_paddr:p_off + entry - p_paddr + 16]
        self.assertEqual(bytes.fromhex(r.ask_str(f"m{entry:x},10")), code)
        # The AP has not been started: its reset state.
        self.assertEqual(r.ask_str("Hg2"), "OK")
        g2 = r.ask_str("g")
        self.assertEqual((reg(g2, "cs"), reg(g2, "rip")), (0xf000, 0xfff0))
        self.assertEqual(r.ask_str("Hg1"), "OK")

        # Single steps, one instruction each: cli (1 byte), cld (1), mov %rsi,%r12 (3).
        for want in (entry + 1, entry + 2, entry + 5):
            r.send("vCont;s:1")
            self.assertEqual(r.read_packet().decode(), "T05thread:1;")
            self.assertEqual(le(r.ask_str(f"p{layout['rip'][0]:x}")), want)
        self.assertEqual(le(r.ask_str(f"p{layout['r12'][0]:x}")), ZERO_PAGE)

        r.send("vCont;c")
        s.expect("READY debuggee", timeout=120)
        info = guestlib.parse_results(s.output).info
        buf, vbuf = int(info["debuggee.buf"], 0), int(info["debuggee.vbuf"], 0)
        flag = int(info["debuggee.flag"], 0)
        self.assertEqual(flag, sym["debuggee_flag"])
        # READY is out, but the guest may not be in its loop yet: stop it until it is.
        for _ in range(100):
            r.interrupt()
            self.assertRegex(r.read_packet().decode(), r"^T02thread:[12];$")
            self.assertEqual(r.ask_str("Hg1"), "OK")
            g = r.ask_str("g")
            if sym["debuggee_spin"] <= reg(g, "rip") < sym["debuggee_released"]:
                break
            r.send("vCont;c")
        else:
            self.fail(f"the guest never reached its loop (rip {reg(g, 'rip'):#x})")
        known = {"rbx": 0x0123456789abcdef, "r12": 0x1212121212121212,
                 "r13": 0x1313131313131313, "r14": 0x1414141414141414,
                 "r15": 0x1515151515151515}
        for name, value in known.items():
            self.assertEqual(reg(g, name), value, name)
        self.assertEqual(reg(g, "fs_base"), int(info["debuggee.fs_base"], 0))

        # Registers: P for rbx, r12 and fs_base, G for r13 and r14; r15 stays.
        new = {"rbx": 0xb0b0b0b0b0b0b0b0, "r12": 0xc12c12c12c12c12c,
               "r13": 0xd13d13d13d13d13d, "r14": 0xe14e14e14e14e14e}
        new_fs = 0x00007f0012345000
        for name in ("rbx", "r12"):
            n, _, sz = layout[name]
            self.assertEqual(r.ask_str(f"P{n:x}={le_hex(new[name], sz)}"), "OK")
        n, _, sz = layout["fs_base"]
        self.assertEqual(r.ask_str(f"P{n:x}={le_hex(new_fs, sz)}"), "OK")
        g = list(r.ask_str("g"))
        for name in ("r13", "r14"):
            _, off, sz = layout[name]
            g[2 * off:2 * (off + sz)] = le_hex(new[name], sz)
        self.assertEqual(r.ask_str("G" + "".join(g)), "OK")
        g = r.ask_str("g")
        for name, value in new.items():
            self.assertEqual(reg(g, name), value, name)
        # A segment selector cannot be changed (it would need a descriptor load).
        n, _, sz = layout["ds"]
        self.assertEqual(r.ask_str(f"P{n:x}={le_hex(0x10, sz)}")[0], "E")

        # Memory: M on the identity-mapped buffer, X (escapes and all) on the page mapped
        # only high up; read back through the same addresses.
        low = bytes(range(0x10, 0x30))
        high = b"#$}*\x00\x7d\x23" + bytes(range(0x80, 0x99))
        self.assertEqual(r.ask_str(f"M{buf:x},{len(low):x}:{low.hex()}"), "OK")
        r.send_raw(gdbremote.frame(f"X{vbuf:x},{len(high):x}:".encode() +
                                   gdbremote.escape(high)))
        r.expect_ack()
        self.assertEqual(r.read_packet(), b"OK")
        self.assertEqual(bytes.fromhex(r.ask_str(f"m{buf:x},20")), low)
        self.assertEqual(bytes.fromhex(r.ask_str(f"m{vbuf:x},20")), high)
        # The page after it is not mapped; a read that reaches it stops there.
        self.assertEqual(r.ask_str(f"m{vbuf + 0x1000:x},4")[0], "E")
        self.assertEqual(len(r.ask_str(f"m{vbuf + 0xffe:x},4")), 4)
        self.assertEqual(r.ask_str(f"M{vbuf + 0xffe:x},4:01020304")[0], "E")

        # A step inside the loop moves within it.
        rip = reg(g, "rip")
        r.send("vCont;s:1")
        self.assertEqual(r.read_packet().decode(), "T05thread:1;")
        rip2 = le(r.ask_str(f"p{layout['rip'][0]:x}"))
        self.assertNotEqual(rip2, rip)
        self.assertTrue(sym["debuggee_spin"] <= rip2 < sym["debuggee_released"], hex(rip2))

        # While the debugger holds the guest, the control socket's resume does not release it.
        self.assertEqual(vmm.control(sock, "suspend")[0], 0)
        self.assertEqual(vmm.control(sock, "resume")[0], 0)
        self.assertEqual(le(r.ask_str(f"p{layout['rip'][0]:x}")), rip2)

        # Release the guest: it prints what the loop left in its registers and the buffers.
        self.assertEqual(r.ask_str(f"M{flag:x},4:01000000"), "OK")
        r.send("vCont;c")
        # The guest powers off: the waiting client hears the exit.
        self.assertEqual(r.read_packet(timeout=120), b"W00")
        rc, out = s.wait(120)
        self.assertEqual(rc, vmm.STATUS_STOP, out)
        res = guestlib.parse_results(out)
        self.assertTrue(res.done, out)
        for name, value in new.items():
            self.assertEqual(int(res.info[f"debuggee.{name}"], 0), value, name)
        self.assertEqual(int(res.info["debuggee.r15"], 0), known["r15"])
        self.assertEqual(int(res.info["debuggee.fs_base_after"], 0), new_fs)
        self.assertEqual(bytes.fromhex(res.info["debuggee.buf_after"]), low)
        self.assertEqual(bytes.fromhex(res.info["debuggee.vbuf_after"]), high)
        vmm.no_sanitizer_report(self, out)


class Server(GdbTestCase):
    def test_bad_input_second_client_and_disconnect(self):
        s = self.spawn(guest("ticker", "vmlinux"))
        r = self.connect()
        self.assertEqual(r.ask_str("?"), "T05thread:1;")

        # A second debugger is turned away at once; the first is not disturbed.
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as other:
            other.settimeout(30)
            self.assertEqual(other.recv(100), b"")
        self.assertEqual(r.ask_str("qC"), "QC1")

        # Garbage is ignored; bad checksums and oversized packets get '-'.
        r.send_raw(b"hello")
        self.assertTrue(r.nothing_more())
        r.send_raw(b"$g#00")
        self.assertEqual(r.read_byte(), b"-")
        r.send_raw(gdbremote.frame(b"m" * 20000))
        self.assertEqual(r.read_byte(), b"-")
        r.send_raw(b"$" + b"x" * 100000)
        r.send_raw(b"#00")
        self.assertEqual(r.read_byte(), b"-")
        self.assertEqual(r.ask_str("?"), "T05thread:1;")

        # The same while the guest runs: it goes on ticking.
        r.send("vCont;c")
        n = self.wait_tick_after(s, 0)
        r.send_raw(b"garbage$m0,4#00" + gdbremote.frame(b"q" * 17000))
        self.assertEqual(r.read_byte(), b"-")
        self.assertEqual(r.read_byte(), b"-")
        self.assertEqual(r.ask_str("g"), "E10")  # all-stop: nothing but Ctrl-C while running
        self.wait_tick_after(s, n)

        # A client that goes away lets the guest run; the next one stops it.
        r.close()
        n = self.wait_tick_after(s, self.ticks(s))
        r = self.connect()
        self.assertEqual(r.ask_str("?"), "T05thread:1;")
        self.assert_no_ticks(s)
        self.assertEqual(r.ask_str("D"), "OK")
        with self.assertRaises(EOFError):
            r.read_byte(timeout=30)
        self.wait_tick_after(s, self.ticks(s))
        s.proc.terminate()
        rc, out = s.wait(60)
        self.assertEqual(rc, vmm.STATUS_STOP, out)
        self.assertIn("refused a second debugger", out)
        vmm.no_sanitizer_report(self, out)

    def test_suspend_and_the_debugger_hold_independently(self):
        sock = self.td.join("vm.sock")
        s = self.spawn(guest("ticker", "vmlinux"), "-c", "2", "-s", sock)
        r = self.connect()
        r.send("vCont;c")
        n = self.wait_tick_after(s, 0)
        # Stopped by Ctrl-C, resumed from the control socket: still held.
        r.interrupt()
        self.assertRegex(r.read_packet().decode(), r"^T02thread:[12];$")
        self.assertEqual(vmm.control(sock, "suspend")[0], 0)
        self.assertEqual(vmm.control(sock, "resume")[0], 0)
        self.assert_no_ticks(s)
        r.send("vCont;c")
        n = self.wait_tick_after(s, n)
        # Suspended from the control socket, continued by the debugger: still suspended.
        self.assertEqual(vmm.control(sock, "suspend")[0], 0)
        r.interrupt()  # every vCPU is parked already: the stop comes at once
        self.assertRegex(r.read_packet().decode(), r"^T02thread:[12];$")
        r.send("vCont;c")
        self.assert_no_ticks(s)
        self.assertEqual(vmm.control(sock, "resume")[0], 0)
        self.wait_tick_after(s, self.ticks(s))
        # Every vCPU is a thread, with its registers.
        r.interrupt()
        r.read_packet()
        self.assertEqual(r.ask_str("qfThreadInfo"), "m1,2")
        self.assertEqual(r.ask_str("T2"), "OK")
        self.assertEqual(r.ask_str("T3")[0], "E")
        self.assertEqual(bytes.fromhex(r.ask_str("qThreadExtraInfo,2")), b"vCPU 1")
        self.assertEqual(vmm.control(sock, "stop")[0], 0)
        rc, out = s.wait(60)
        self.assertEqual(rc, vmm.STATUS_STOP, out)
        vmm.no_sanitizer_report(self, out)

    def test_kill(self):
        s = self.spawn(guest("ticker", "vmlinux"), sandbox=False)
        r = self.connect()
        self.assertEqual(r.ask_str("?"), "T05thread:1;")
        r.send("k")
        with self.assertRaises(EOFError):
            r.read_byte(timeout=30)
        rc, out = s.wait(60)
        self.assertEqual(rc, vmm.STATUS_STOP, out)
        self.assertIn("killed the VM", out)
        self.assertEqual(self.ticks(s), 0)  # it never ran
        vmm.no_sanitizer_report(self, out)

    def test_refusals(self):
        # The port is taken: the VM does not start, and says why.
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            res = vmm.run_crosvm(guest("ticker", "vmlinux"), "--gdb", port)
        self.assertEqual(res.status, vmm.STATUS_INVALID, res)
        self.assertIn(f"--gdb {port}: cannot listen on 127.0.0.1:{port}", res.err)
        for bad in ("0", "65536", "http"):
            res = vmm.run_crosvm(guest("ticker", "vmlinux"), "--gdb", bad)
            self.assertEqual(res.status, vmm.STATUS_INVALID, res)
            self.assertIn("--gdb", res.err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
