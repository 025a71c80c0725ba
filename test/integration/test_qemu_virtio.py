"""The virtio test guests (virtio_rng, virtio_blk, balloon) and the event guests (acpi_events,
ticker) under QEMU, the reference VMM: its virtio-pci devices check the guests' driver, so
that when crosvm runs the same guests with the same keys, a difference points at crosvm.

QEMU runs -M q35 (ECAM and config ports, BARs assigned by SeaBIOS) with modern-only
virtio-pci devices. Host-side actions (balloon, block resize, power button, CPU hotplug,
stop/cont) go through QMP on a unix socket. Skips with a message when QEMU or /dev/kvm is
missing.

blk_pattern() and Qmp are meant to be reused by the crosvm integration tests.
"""

import json
import os
import random
import re
import socket
import struct
import sys
import tempfile
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib as gl  # noqa: E402

VIRTIO_GUESTS = ("virtio_rng", "virtio_blk", "balloon", "acpi_events", "ticker")
MODERN = "disable-legacy=on,disable-modern=off"
BOOT_TIMEOUT = 60  # a q35 boot through SeaBIOS takes about 1.5 s here
SECTOR = 512
RO_FEATURE = 1 << 5  # VIRTIO_BLK_F_RO
EVENT_IDX = 1 << 29
INDIRECT_DESC = 1 << 28


def blk_pattern(sectors, seed, first=0):
    """What virtio_blk's vblk.rw=N writes: word i of sector s is seed ^ (s << 16) ^ i."""
    mask = (1 << 64) - 1
    return b"".join(struct.pack("<%dQ" % (SECTOR // 8),
                                *[(seed ^ (s << 16) ^ i) & mask for i in range(SECTOR // 8)])
                    for s in range(first, first + sectors))


class Qmp:
    """A minimal QMP client: connect, negotiate, run commands (events are skipped)."""

    def __init__(self, path, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.settimeout(timeout)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rwb")
        self._reply()  # the greeting
        self.cmd("qmp_capabilities")

    def _reply(self):
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("QMP closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        """Runs a command: its "return" value; raises RuntimeError on a QMP error."""
        self.file.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        self.file.flush()
        reply = self._reply()
        if "error" in reply:
            raise RuntimeError("QMP %s: %s" % (name, reply["error"]))
        return reply.get("return")

    def close(self):
        for f in (self.file, self.sock):
            try:
                f.close()
            except OSError:
                pass


def setUpModule():
    if gl.guest_dir() is None:
        raise unittest.SkipTest("GUEST_DIR is not set: run through ctest or set it")
    missing = [gl.guest_path(n) for n in VIRTIO_GUESTS if not os.path.isfile(gl.guest_path(n))]
    if missing:
        raise AssertionError("guest images missing (build the 'guests' target): %s" % missing)


@unittest.skipIf(gl.qemu_unavailable(), gl.qemu_unavailable() or "")
class QemuVirtioTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="vguests-")
        self.tmp = self._tmp.name
        self._sessions = []

    def tearDown(self):
        for s, q in self._sessions:
            if q:
                q.close()
            s.close()
        self._tmp.cleanup()

    # ---- helpers ----

    def disk(self, name, size=None, data=None):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            if data is not None:
                f.write(data)
            else:
                f.truncate(size)
        return path

    @staticmethod
    def drive(n, path, opts="", dev_opts=""):
        """-drive/-device arguments for disk n (slot order = argument order)."""
        return ["-drive", "if=none,id=d%d,file=%s,format=raw%s" % (n, path, opts),
                "-device", "virtio-blk-pci,drive=d%d,%s%s" % (n, MODERN, dev_opts)]

    RNG = ["-device", "virtio-rng-pci," + MODERN]

    def boot(self, name, append="", devices=(), expect_rc=0, **kwargs):
        kwargs.setdefault("timeout", BOOT_TIMEOUT)
        rc, out = gl.run_qemu(gl.guest_path(name), append=append, machine="q35",
                              extra_args=list(devices), **kwargs)
        self.assertEqual(rc, expect_rc, "QEMU status (None: timed out); output:\n" + out)
        return gl.parse_results(out), out

    def session(self, name, append="", devices=(), smp=1):
        """A running guest plus a QMP connection to its QEMU."""
        qmp_path = os.path.join(self.tmp, "qmp.sock")
        cmd = gl.qemu_command(gl.guest_path(name), append=append, machine="q35", smp=smp,
                              extra_args=list(devices) +
                              ["-qmp", "unix:%s,server=on,wait=off" % qmp_path])
        s = gl.Session(cmd)
        self._sessions.append((s, None))
        s.expect("READY" if name != "ticker" else "TICK", timeout=BOOT_TIMEOUT)
        q = Qmp(qmp_path)
        self._sessions[-1] = (s, q)
        return s, q

    def finish(self, s, timeout=BOOT_TIMEOUT):
        rc, out = s.wait(timeout)
        self.assertEqual(rc, 0, "QEMU status (None: timed out); output:\n" + out)
        return gl.parse_results(out), out

    def assertClean(self, res, out):
        self.assertEqual(res.failed, [], out)
        self.assertTrue(res.done, "no DONE line:\n" + out)

    def assertPassed(self, res, out, *names):
        for n in names:
            self.assertIn(n, res.passed, out)

    # ---- virtio_rng ----

    def test_rng_msix_then_intx(self):
        res, out = self.boot("virtio_rng", devices=self.RNG)
        self.assertClean(res, out)
        self.assertPassed(res, out, "pci_ecam_ports_agree", "rng_found", "rng_read_msix",
                          "rng_read_intx", "rng_random", "virtio_pci_cfg_window")
        self.assertEqual(res.info["pci.access"], "ecam")
        # q35's _PRT is a method over link devices: the guest finds the GSI by probing.
        self.assertRegex(res.info["rng.intx"], r"^(1[6-9]|2[0-3]),probe$")
        feats = int(res.info["rng.features"], 16)
        self.assertTrue(feats & (1 << 32), "VERSION_1 not negotiated")
        self.assertEqual(feats & (EVENT_IDX | INDIRECT_DESC), EVENT_IDX | INDIRECT_DESC)

    def test_rng_intx_only_through_config_ports_without_event_idx(self):
        res, out = self.boot("virtio_rng", append="vrng.intx pci.access=ports virtio.event_idx=0",
                             devices=self.RNG)
        self.assertClean(res, out)
        self.assertPassed(res, out, "rng_read_intx", "rng_random")
        self.assertNotIn("rng_read_msix", res.passed)
        self.assertEqual(res.info["pci.access"], "ports")
        self.assertEqual(int(res.info["rng.features"], 16) & EVENT_IDX, 0)

    def test_rng_polling_without_indirect(self):
        res, out = self.boot("virtio_rng", append="virtio.irq=poll virtio.indirect=0",
                             devices=self.RNG)
        self.assertClean(res, out)
        self.assertPassed(res, out, "rng_read_poll", "rng_random")
        self.assertEqual(int(res.info["rng.features"], 16) & INDIRECT_DESC, 0)

    def test_rng_missing_is_reported(self):
        res, out = self.boot("virtio_rng")
        self.assertTrue(res.done, out)
        self.assertEqual([n for n, _ in res.failed], ["rng_found"], out)

    # ---- virtio_blk ----

    def test_blk_reports_every_disk_in_slot_order(self):
        d0 = self.disk("d0.img", 128 * 1024)
        d1 = self.disk("d1.img", 64 * 1024)
        res, out = self.boot("virtio_blk", devices=self.drive(0, d0, dev_opts=",serial=disk-zero")
                             + self.drive(1, d1, opts=",readonly=on"))
        self.assertClean(res, out)
        self.assertEqual(res.info["blk.count"], "2")
        bdf0, cap0, bs0, feat0, ro0 = res.info["blk.0"].split(",")
        bdf1, cap1, bs1, feat1, ro1 = res.info["blk.1"].split(",")
        self.assertLess(bdf0, bdf1)
        self.assertEqual((cap0, bs0, ro0), ("256", "512", "0"))
        self.assertEqual((cap1, bs1, ro1), ("128", "512", "1"))
        self.assertEqual(int(feat0, 16) & RO_FEATURE, 0)
        self.assertEqual(int(feat1, 16) & RO_FEATURE, RO_FEATURE)
        self.assertEqual(res.info["blk.0.id"], "disk-zero")
        self.assertEqual(res.info["blk.1.id"], "")  # QEMU answers GET_ID with no serial
        self.assertEqual(res.passed.count("blk_irqs"), 2)

    def check_rw(self, append, size, seed):
        path = self.disk("rw.img", size)
        res, out = self.boot("virtio_blk", append="vblk.rw=0 vblk.seed=%d %s" % (seed, append),
                             devices=self.drive(0, path))
        self.assertClean(res, out)
        self.assertPassed(res, out, "blk_rw", "blk_flush", "blk_irqs")
        with open(path, "rb") as f:
            data = f.read()
        self.assertEqual(data, blk_pattern(size // SECTOR, seed))
        self.assertEqual(int(res.info["blk.0.crc"], 16), zlib.crc32(data))

    def test_blk_rw_writes_the_pattern_to_every_sector(self):
        self.check_rw("", 256 * 1024, 0x1234abcd)

    def test_blk_rw_with_intx_and_direct_chains(self):
        self.check_rw("virtio.irq=intx virtio.indirect=0", 64 * 1024, 7)

    def test_blk_check_reads_what_the_host_wrote(self):
        data = random.Random(5).randbytes(192 * 1024)
        path = self.disk("check.img", data=data)
        res, out = self.boot("virtio_blk", append="vblk.check=0", devices=self.drive(0, path))
        self.assertClean(res, out)
        self.assertEqual(int(res.info["blk.0.crc"], 16), zlib.crc32(data))

    def test_blk_refuses_writes_to_a_read_only_disk_and_reads_beyond_the_end(self):
        data = random.Random(9).randbytes(64 * 1024)
        d0 = self.disk("d0.img", 64 * 1024)
        d1 = self.disk("ro.img", data=data)
        res, out = self.boot("virtio_blk", append="vblk.ro=1 vblk.beyond=0",
                             devices=self.drive(0, d0) + self.drive(1, d1, opts=",readonly=on"))
        self.assertClean(res, out)
        self.assertPassed(res, out, "blk_ro_refused", "blk_ro_unchanged", "blk_beyond_refused")
        self.assertEqual(res.info["blk.1.ro_status"], "IOERR")
        with open(d1, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_blk_discard_and_write_zeroes_read_back_zero(self):
        path = self.disk("dz.img", 64 * 1024)
        seed = 3
        res, out = self.boot("virtio_blk",
                             append="vblk.seed=%d vblk.zeroes=0,10,5 vblk.discard=0,20,9" % seed,
                             devices=self.drive(0, path, opts=",discard=unmap"))
        self.assertClean(res, out)
        self.assertPassed(res, out, "blk_write_zeroes", "blk_discard")
        with open(path, "rb") as f:
            data = f.read()
        # The guest writes the pattern (seed ^ 0xa5a5a5a5) around each range first.
        fill = seed ^ 0xa5a5a5a5
        for first, count in ((10, 5), (20, 9)):
            self.assertEqual(data[first * SECTOR:(first + count) * SECTOR],
                             bytes(count * SECTOR))
            for s in (first - 1, first + count):
                self.assertEqual(data[s * SECTOR:(s + 1) * SECTOR], blk_pattern(1, fill, s))

    def test_blk_survives_malformed_chains(self):
        path = self.disk("bad.img", 64 * 1024)
        res, out = self.boot("virtio_blk", append="vblk.bad=0",
                             devices=self.RNG + self.drive(0, path))
        self.assertClean(res, out)
        self.assertPassed(res, out, "blk_survives_bad_chain", "blk_bad_rng_alive")
        # QEMU marks the device broken (NEEDS_RESET) for chains it cannot parse; an
        # address outside RAM it reads through a bounce buffer as zeros.
        for kind in ("writable_header", "loop", "indirect_len"):
            self.assertEqual(res.info["blk.0.bad." + kind], "needs_reset", out)
        self.assertIn("blk.0.bad.oob_addr", res.info)

    def test_blk_capacity_change_interrupt(self):
        path = self.disk("grow.img", 64 * 1024)
        s, q = self.session("virtio_blk", append="vblk.capacity_wait=0 vblk.timeout_ms=20000",
                            devices=self.drive(0, path))
        q.cmd("block_resize", device="d0", size=192 * 1024)
        res, out = self.finish(s)
        self.assertClean(res, out)
        self.assertPassed(res, out, "blk_config_irq")
        self.assertEqual(res.info["blk.0.new_capacity"], "384")

    # ---- balloon ----

    BALLOON = ["-device", "virtio-balloon-pci,id=bal0," + MODERN]

    def test_balloon_inflates_answers_stats_and_deflates(self):
        s, q = self.session("balloon", append="balloon.timeout_ms=30000", devices=self.BALLOON)
        q.cmd("balloon", value=(256 - 16) << 20)
        s.expect("INFO balloon.actual=4096\n", timeout=20)
        self.assertEqual(q.cmd("query-balloon")["actual"], (256 - 16) << 20)
        q.cmd("qom-set", path="/machine/peripheral/bal0",
              property="guest-stats-polling-interval", value=1)
        s.expect("INFO balloon.stats_sent=", timeout=20)
        stats = q.cmd("qom-get", path="/machine/peripheral/bal0", property="guest-stats")
        q.cmd("balloon", value=256 << 20)
        res, out = self.finish(s)
        self.assertClean(res, out)
        self.assertPassed(res, out, "balloon_found", "balloon_init", "balloon_cycle",
                          "balloon_irqs")
        self.assertEqual(res.info["balloon.end"], "cycle")
        self.assertEqual(stats["stats"]["stat-total-memory"],
                         int(res.info["balloon.stats_total"]))
        self.assertGreater(stats["stats"]["stat-free-memory"], 0)

    def test_balloon_ends_on_its_timeout(self):
        res, out = self.boot("balloon", append="balloon.timeout_ms=300", devices=self.BALLOON)
        self.assertClean(res, out)
        self.assertEqual(res.info["balloon.end"], "timeout")
        self.assertIn("READY balloon", res.lines)

    # ---- acpi_events ----

    def test_acpi_power_button_is_an_orderly_shutdown(self):
        s, q = self.session("acpi_events")
        q.cmd("system_powerdown")
        res, out = self.finish(s)
        self.assertClean(res, out)
        self.assertPassed(res, out, "acpi_events_init", "powerbtn_sci")
        self.assertRegex(res.info["acpi.sci"], r"^9,gsi=9,level$")  # q35: SCI on IRQ 9

    def test_acpi_gpe_from_cpu_hotplug(self):
        s, q = self.session("acpi_events", devices=["-smp", "1,maxcpus=2"])
        q.cmd("device_add", driver="host-x86_64-cpu", id="cpu1",
              **{"socket-id": 0, "core-id": 1, "thread-id": 0})
        s.expect("PASS gpe2\n", timeout=20)  # QEMU's CPU hotplug GPE
        q.cmd("system_powerdown")
        res, out = self.finish(s)
        self.assertClean(res, out)
        self.assertPassed(res, out, "gpe2", "powerbtn_sci")

    def test_acpi_events_end_on_timeout(self):
        res, out = self.boot("acpi_events", append="acpi.timeout_ms=200")
        self.assertClean(res, out)
        self.assertEqual(res.info["acpi.end"], "timeout")

    # ---- ticker ----

    TICK_RE = re.compile(r"^TICK (\d+) tsc=(\d+) rtc=(\d\d:\d\d:\d\d|none)$")

    def ticks(self, res):
        return [tuple(int(x) for x in m.group(1, 2))
                for m in map(self.TICK_RE.match, res.lines) if m]

    def test_ticker_counts(self):
        res, out = self.boot("ticker", append="ticker.count=4 ticker.period_ms=20")
        self.assertClean(res, out)
        ticks = self.ticks(res)
        # A tick that comes while the guest prints is folded into the next line (a busy or
        # emulated host skips numbers), so: at most 4 lines, increasing, the last at least 4.
        self.assertTrue(1 <= len(ticks) <= 4, out)
        self.assertEqual(ticks, sorted(set(ticks)))
        self.assertGreaterEqual(ticks[-1][0], 4)
        khz = int(res.info["ticker.tsc_khz"])
        self.assertGreater(khz, 100000)  # a TSC of at least 100 MHz
        # Ticks 20 ms apart (loosely: the host may be busy, never faster than the timer).
        if len(ticks) >= 2:
            gap_ms = (ticks[-1][1] - ticks[0][1]) / khz / (ticks[-1][0] - ticks[0][0])
            self.assertGreater(gap_ms, 15)

    def test_ticker_stops_while_paused(self):
        s, q = self.session("ticker")
        s.expect("TICK 3 ", timeout=20)
        q.cmd("stop")
        # Let a line already on its way arrive, then nothing may come while stopped.
        try:
            while True:
                s.expect("\n", timeout=0.3)
        except TimeoutError:
            pass
        with self.assertRaises(TimeoutError):
            s.expect("TICK", timeout=1.0)
        q.cmd("cont")
        s.expect("TICK", timeout=10)
        s.expect("\n", timeout=5)
        q.cmd("quit")
        rc, out = s.wait(10)
        self.assertGreater(len(self.ticks(gl.parse_results(out))), 3)


if __name__ == "__main__":
    unittest.main()
