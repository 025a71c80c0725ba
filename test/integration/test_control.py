"""The control socket against running VMs: stop, suspend/resume, ACPI events, balloon,
disk resize, many clients, socket path rules. Sandboxed and with --disable-sandbox."""

import json
import os
import re
import socket
import stat
import threading
import time
import unittest

import vmm
from vmm import guest, control

TICK_RE = re.compile(rb"TICK (\d+) tsc=(\d+)")


def send_raw(path, data, timeout=10):
    """Sends raw bytes on the control socket; returns everything the server answered."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def vm_rss_kib(pid):
    """RSS of the VMM and its device processes, from /proc."""
    total = 0
    for p in [pid] + vmm.children(pid):
        with open("/proc/%d/status" % p) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


class ControlTests:
    sandbox = True

    def setUp(self):
        self.td = vmm.TempDir()
        self.sock = self.td.join("vm.sock")
        self.sessions = []

    def tearDown(self):
        for s in self.sessions:
            vmm.kill_tree(s)
        self.td.__exit__()

    def spawn(self, kernel, *opts, sock=None):
        s = vmm.spawn_crosvm(kernel, "-s", sock or self.sock, *opts, sandbox=self.sandbox)
        self.sessions.append(s)
        return s

    def ok(self, *args):
        status, out, err = control(self.sock, *args)
        if status != 0:
            for s in self.sessions:
                s._read(0.2)
                err += "\nVM status %r, output tail: %r" % (s.proc.poll(), s.output[-800:])
        self.assertEqual(status, 0, (args, out, err))
        return out

    def ticks(self, s):
        return [(int(n), int(t)) for n, t in TICK_RE.findall(s.output)]

    def test_stop_while_the_guest_prints(self):
        s = self.spawn(guest("ticker"))
        s.expect("TICK 3 ", timeout=30)
        self.ok("stop")
        status, out = s.wait(timeout=20)
        self.assertEqual(status, 0, out)
        self.assertFalse(os.path.exists(self.sock))
        vmm.no_sanitizer_report(self, out)

    def test_suspend_and_resume(self):
        s = self.spawn(guest("ticker"), "-p", "ticker.kvmclock")
        s.expect("INFO ticker.tsc_khz=", timeout=30)
        s.expect("\n", timeout=5)
        khz = int(re.search(rb"ticker.tsc_khz=(\d+)", s.output).group(1))
        s.expect("INFO ticker.kvmclock=on", timeout=30)
        s.expect("TICK 2 ", timeout=30)
        self.ok("suspend")
        self.ok("suspend")  # twice is harmless
        s._read(0.2)
        before = len(self.ticks(s))
        time.sleep(1.5)
        s._read(0.1)
        self.assertEqual(len(self.ticks(s)), before, "the guest ran while suspended")
        self.ok("resume")
        self.ok("resume")  # resuming a running VM is harmless
        # Two whole tick lines after the last one seen before the pause (which may have been
        # cut in half by it).
        s.expect("TICK %d tsc=" % (before + 3), timeout=30)
        s.expect("\n", timeout=10)
        ticks = self.ticks(s)
        gaps = [(b[1] - a[1]) / khz for a, b in zip(ticks, ticks[1:])]
        # The guest's clock kept running: one gap spans the pause (>= 1.5 s).
        self.assertGreaterEqual(max(gaps), 1400, (gaps, s.output[-1500:]))
        # The VMM told the guest it was paused (KVM_KVMCLOCK_CTRL): the kvmclock page's
        # PVCLOCK_GUEST_STOPPED flag shows on the first line after the resume, and only then.
        lines = [l for l in s.output.decode(errors="replace").splitlines()
                 if l.startswith("TICK ")]
        paused = [l for l in lines if l.endswith(" paused")]
        self.assertEqual(len(paused), 1, lines)
        self.assertGreaterEqual(lines.index(paused[0]), before - 1, lines)
        self.ok("stop")
        self.assertEqual(s.wait(timeout=20)[0], 0)

    def test_power_button_runs_the_guest_handler(self):
        s = self.spawn(guest("acpi_events"))
        s.expect("READY acpi", timeout=30)
        self.ok("gpe", 3)
        s.expect("PASS gpe3", timeout=20)
        self.ok("sleepbtn")
        s.expect("PASS sleepbtn", timeout=20)
        self.ok("powerbtn")
        s.expect("PASS powerbtn_sci", timeout=20)
        status, out = s.wait(timeout=20)
        self.assertEqual(status, 0, out)
        self.assertIn("DONE", out)

    def test_bad_gpe_number(self):
        s = self.spawn(guest("ticker"))
        s.expect("TICK 1 ", timeout=30)
        status, out, err = control(self.sock, "gpe", 64)
        self.assertNotEqual(status, 0)
        self.assertIsNone(s.proc.poll())

    def test_balloon_returns_memory_and_reports_stats(self):
        s = self.spawn(guest("balloon"), "-m", 256)
        s.expect("READY balloon", timeout=30)
        pid = s.proc.pid
        time.sleep(0.2)
        before = vm_rss_kib(pid)
        self.ok("balloon", 16 << 20)
        s.expect("INFO balloon.actual=4096", timeout=30)
        time.sleep(0.2)
        after = vm_rss_kib(pid)
        # The guest had touched those pages; handing them to the balloon frees them.
        self.assertGreaterEqual(before - after, 14 * 1024, (before, after))
        out = self.ok("balloon_stats")
        reply = json.loads(out)  # the client prints the results, without "ok"
        self.assertEqual(reply["balloon_actual"], 16 << 20)
        self.assertIn("total_memory", reply["stats"])
        total = int(re.search(rb"balloon.stats_total=(\d+)", s.output).group(1))
        self.assertEqual(reply["stats"]["total_memory"], total)
        self.ok("balloon", 0)
        s.expect("PASS balloon_cycle", timeout=30)
        status, out = s.wait(timeout=20)
        self.assertEqual(status, 0, out)

    def test_no_balloon(self):
        s = self.spawn(guest("ticker"), "--no-balloon")
        s.expect("TICK 1 ", timeout=30)
        status, out, err = control(self.sock, "balloon", 4096)
        self.assertNotEqual(status, 0)
        self.assertIn("balloon", err)

    def test_disk_resize_is_seen_by_the_guest(self):
        img = self.td.join("disk.img")
        with open(img, "wb") as f:
            f.truncate(64 * 1024)
        s = self.spawn(guest("virtio_blk"), "-b", img, "-p", "vblk.capacity_wait=0")
        s.expect("READY resize", timeout=30)
        self.ok("disk", "resize", 0, 192 * 1024)
        s.expect("PASS blk_config_irq", timeout=30)
        s.expect("INFO blk.0.new_capacity=384", timeout=10)
        self.assertEqual(os.path.getsize(img), 192 * 1024)
        self.assertEqual(s.wait(timeout=20)[0], 0)

    def test_disk_resize_refusals(self):
        img = self.td.join("disk.img")
        with open(img, "wb") as f:
            f.truncate(64 * 1024)
        s = self.spawn(guest("ticker"), "-b", "%s,ro" % img)
        s.expect("TICK 1 ", timeout=30)
        status, out, err = control(self.sock, "disk", "resize", 0, 128 * 1024)
        self.assertNotEqual(status, 0)
        self.assertIn("read-only", err)
        status, out, err = control(self.sock, "disk", "resize", 5, 128 * 1024)
        self.assertNotEqual(status, 0)
        self.assertEqual(os.path.getsize(img), 64 * 1024)
        self.assertIsNone(s.proc.poll())

    def test_version(self):
        s = self.spawn(guest("ticker"))
        s.expect("TICK 1 ", timeout=30)
        out = self.ok("version")
        self.assertRegex(out, r"\d+\.\d+\.\d+")

    def test_many_clients_and_garbage_do_not_disturb_the_vm(self):
        s = self.spawn(guest("ticker"))
        s.expect("TICK 2 ", timeout=30)
        replies, errors = [], []

        def client(i):
            try:
                if i == 7:
                    replies.append(send_raw(self.sock, os.urandom(3000) + b"}{]["))
                else:
                    replies.append(send_raw(self.sock, b'{"command":"version"}'))
            except OSError as e:
                errors.append(e)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(replies), 50)
        good = [r for r in replies if b'"version"' in r]
        self.assertEqual(len(good), 49)
        for r in replies:
            self.assertTrue(json.loads(r.splitlines()[0])["ok"] in (True, False))
        # Malformed requests get error replies; the VM keeps printing.
        for bad in (b'{"command":"nope"}', b'{"command":"gpe","gpe":"3"}', b"[1,2]",
                    b'{"command":"balloon"}', b"\x00\xff" * 100):
            reply = json.loads(send_raw(self.sock, bad).splitlines()[0])
            self.assertFalse(reply["ok"], bad)
            self.assertIn("error", reply)
        n = len(self.ticks(s))
        s.expect("TICK %d " % (n + 2), timeout=30)
        self.ok("stop")
        self.assertEqual(s.wait(timeout=20)[0], 0)

    def test_socket_path_rules(self):
        # A directory gets crosvm-<pid>.sock, created 0600.
        s = self.spawn(guest("ticker"), sock=self.td.path)
        s.expect("TICK 1 ", timeout=30)
        path = self.td.join("crosvm-%d.sock" % s.proc.pid)
        st = os.stat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        # A second VM on a live socket is refused.
        r = vmm.run_crosvm(guest("demo"), "-s", path, "-p", "demo.oneshot",
                           sandbox=self.sandbox)
        self.assertEqual(r.status, vmm.STATUS_INVALID, r)
        self.assertIn("another VM", r.err)
        status, _, _ = control(path, "stop")
        self.assertEqual(status, 0)
        self.assertEqual(s.wait(timeout=20)[0], 0)
        self.assertFalse(os.path.exists(path))
        # A stale socket is replaced; a regular file is refused and left alone.
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(self.sock)
        stale.close()
        r = vmm.run_crosvm(guest("demo"), "-s", self.sock, "-p", "demo.oneshot",
                           sandbox=self.sandbox)
        self.assertEqual(r.status, 0, r)
        self.assertFalse(os.path.exists(self.sock))
        with open(self.sock, "w") as f:
            f.write("keep me")
        r = vmm.run_crosvm(guest("demo"), "-s", self.sock, "-p", "demo.oneshot",
                           sandbox=self.sandbox)
        self.assertEqual(r.status, vmm.STATUS_INVALID, r)
        with open(self.sock) as f:
            self.assertEqual(f.read(), "keep me")

    def test_client_errors(self):
        status, out, err = control(self.td.join("nothing.sock"), "stop")
        self.assertNotEqual(status, 0)
        self.assertIn("nothing.sock", err)


class SandboxedControl(ControlTests, unittest.TestCase):
    sandbox = True


class UnsandboxedControl(ControlTests, unittest.TestCase):
    sandbox = False


if __name__ == "__main__":
    unittest.main()
