"""PCI, virtio-rng and virtio-blk under crosvm, driven by the virtio test guests.

The same guests run under QEMU in test_qemu_virtio.py, so a difference points at crosvm.
Every test runs sandboxed and with --disable-sandbox.
"""

import os
import signal
import subprocess
import time
import unittest
import zlib

import guestlib
import vmm
from test_qemu_virtio import blk_pattern
from vmm import guest

SECTOR = 512
VIRTIO_BLK_F_RO = 1 << 5
VIRTIO_BLK_F_DISCARD = 1 << 13
VIRTIO_BLK_F_WRITE_ZEROES = 1 << 14


def make_image(path, size, data=None):
    with open(path, "wb") as f:
        if data is not None:
            f.write(data)
        f.truncate(size)


def read(path):
    with open(path, "rb") as f:
        return f.read()


class VirtioTests:
    sandbox = True

    def setUp(self):
        self.td = vmm.TempDir()

    def tearDown(self):
        self.td.__exit__()

    def run_vm(self, kernel, *opts, **kw):
        r = vmm.run_crosvm(kernel, *opts, sandbox=self.sandbox, **kw)
        vmm.no_sanitizer_report(self, r.err)
        return r

    def assertClean(self, r):
        self.assertEqual(r.status, 0, r)
        self.assertEqual(r.results.failed, [], r)
        self.assertTrue(r.results.done, r)

    def blk_info(self, r, n):
        bdf, cap, bsize, feat, ro = r.results.info["blk.%d" % n].split(",")
        return {"cap": int(cap), "blk_size": int(bsize), "features": int(feat, 16),
                "ro": ro == "1"}

    # ---- PCI and rng ----

    def test_rng_msix_and_intx(self):
        r = self.run_vm(guest("virtio_rng"))
        self.assertClean(r)
        for name in ("rng_found", "rng_read_msix", "rng_read_intx", "rng_random",
                     "virtio_pci_cfg_window"):
            self.assertIn(name, r.results.passed)

    def test_pci_ecam_and_config_ports_agree(self):
        for access in ("ecam", "ports"):
            r = self.run_vm(guest("virtio_rng"), "-p", "pci.access=%s" % access)
            self.assertClean(r)
            self.assertIn("pci_ecam_ports_agree", r.results.passed)

    def test_no_rng(self):
        r = self.run_vm(guest("virtio_rng"), "--no-rng")
        self.assertEqual([n for n, _ in r.results.failed], ["rng_found"], r)

    def test_event_idx_and_indirect_off(self):
        r = self.run_vm(guest("virtio_rng"), "-p", "virtio.event_idx=0 virtio.indirect=0")
        self.assertClean(r)

    # ---- virtio-blk ----

    def test_write_every_sector_and_flush(self):
        img = self.td.join("disk.img")
        make_image(img, 256 * 1024)
        r = self.run_vm(guest("virtio_blk"), "-b", img, "-p", "vblk.rw=0 vblk.seed=77")
        self.assertClean(r)
        self.assertIn("blk_rw", r.results.passed)
        self.assertIn("blk_flush", r.results.passed)
        data = read(img)
        self.assertEqual(data, blk_pattern(len(data) // SECTOR, 77))
        self.assertEqual(int(r.results.info["blk.0.crc"], 16), zlib.crc32(data))
        info = self.blk_info(r, 0)
        self.assertEqual(info["cap"], 512)
        self.assertFalse(info["ro"])

    def test_read_every_sector(self):
        img = self.td.join("disk.img")
        data = os.urandom(128 * 1024)
        make_image(img, len(data), data)
        r = self.run_vm(guest("virtio_blk"), "-b", img, "-p", "vblk.check=0")
        self.assertClean(r)
        self.assertEqual(int(r.results.info["blk.0.crc"], 16), zlib.crc32(data))

    def test_msix_off_uses_intx(self):
        img = self.td.join("disk.img")
        make_image(img, 64 * 1024)
        r = self.run_vm(guest("virtio_blk"), "-b", img,
                        "-p", "virtio.irq=intx vblk.rw=0 vblk.seed=5")
        self.assertClean(r)
        self.assertEqual(read(img), blk_pattern(128, 5))

    def test_read_only_disk_refuses_writes(self):
        img = self.td.join("disk.img")
        data = os.urandom(64 * 1024)
        make_image(img, len(data), data)
        r = self.run_vm(guest("virtio_blk"), "-b", "%s,ro" % img, "-p", "vblk.ro=0")
        self.assertClean(r)
        self.assertIn("blk_ro_refused", r.results.passed)
        self.assertIn("blk_ro_unchanged", r.results.passed)
        self.assertEqual(r.results.info["blk.0.ro_status"], "IOERR")
        self.assertTrue(self.blk_info(r, 0)["features"] & VIRTIO_BLK_F_RO)
        self.assertEqual(read(img), data)

    def test_get_id(self):
        img = self.td.join("disk.img")
        make_image(img, 64 * 1024)
        r = self.run_vm(guest("virtio_blk"), "-b", "%s,id=serial-0123" % img)
        self.assertClean(r)
        self.assertEqual(r.results.info["blk.0.id"], "serial-0123")
        r = self.run_vm(guest("virtio_blk"), "-b", img)
        self.assertEqual(r.results.info["blk.0.id"], "UNSUPP")

    def test_discard_and_write_zeroes(self):
        img = self.td.join("disk.img")
        make_image(img, 256 * 1024, b"\xaa" * (256 * 1024))
        r = self.run_vm(guest("virtio_blk"), "-b", img,
                        "-p", "vblk.discard=0,200,96 vblk.zeroes=0,8,16")
        self.assertClean(r)
        info = self.blk_info(r, 0)
        self.assertTrue(info["features"] & VIRTIO_BLK_F_DISCARD)
        self.assertTrue(info["features"] & VIRTIO_BLK_F_WRITE_ZEROES)
        self.assertIn("blk_discard", r.results.passed)
        self.assertIn("blk_write_zeroes", r.results.passed)
        data = read(img)
        # The guest fills one sector around each range with a pattern first.
        self.assertEqual(data[200 * SECTOR:296 * SECTOR], bytes(96 * SECTOR))
        self.assertEqual(data[8 * SECTOR:24 * SECTOR], bytes(16 * SECTOR))
        self.assertEqual(data[:7 * SECTOR], b"\xaa" * (7 * SECTOR))
        self.assertEqual(data[300 * SECTOR:], b"\xaa" * (212 * SECTOR))
        # The discarded range is a hole in the file now.
        with open(img, "rb") as f:
            hole = os.lseek(f.fileno(), 0, os.SEEK_HOLE)
        self.assertLess(hole, 256 * 1024)

    def test_requests_beyond_capacity_fail(self):
        img = self.td.join("disk.img")
        make_image(img, 64 * 1024 + 100)  # not a sector multiple: the tail is not visible
        r = self.run_vm(guest("virtio_blk"), "-b", img, "-p", "vblk.beyond=0")
        self.assertClean(r)
        self.assertIn("blk_beyond_refused", r.results.passed)
        self.assertEqual(self.blk_info(r, 0)["cap"], 128)

    def test_disks_in_command_line_order(self):
        sizes = {"a": 64, "b": 128, "c": 192}
        for name, kib in sizes.items():
            make_image(self.td.join(name), kib * 1024)
        r = self.run_vm(guest("virtio_blk"), "-r", self.td.join("a"), "-b", self.td.join("b"),
                        "--rwdisk", self.td.join("c"))
        self.assertClean(r)
        self.assertEqual(r.results.info["blk.count"], "3")
        for i, (name, kib) in enumerate(sizes.items()):
            info = self.blk_info(r, i)
            self.assertEqual(info["cap"], kib * 2, name)
            self.assertEqual(info["ro"], name == "a", name)

    def test_root_disk_on_the_command_line(self):
        make_image(self.td.join("a"), 64 * 1024)
        make_image(self.td.join("b"), 64 * 1024)
        r = self.run_vm(guest("bootinfo", "vmlinux"), "-b", self.td.join("a"),
                        "--rwroot", self.td.join("b"))
        self.assertEqual(r.status, 0, r)
        self.assertIn("root=/dev/vdb rw", r.results.info["cmdline"])
        r = self.run_vm(guest("bootinfo", "vmlinux"), "-b", "%s,ro,root" % self.td.join("a"))
        self.assertIn("root=/dev/vda ro", r.results.info["cmdline"])
        r = self.run_vm(guest("bootinfo", "vmlinux"), "-b", "%s,root" % self.td.join("a"),
                        "-b", "%s,root" % self.td.join("b"))
        self.assertEqual(r.status, vmm.STATUS_INVALID, r)

    def test_malformed_descriptor_leaves_everything_running(self):
        img = self.td.join("disk.img")
        make_image(img, 64 * 1024)
        r = self.run_vm(guest("virtio_blk"), "-b", img, "-p", "vblk.bad=0")
        self.assertClean(r)
        self.assertIn("blk_survives_bad_chain", r.results.passed)
        self.assertIn("blk_bad_rng_alive", r.results.passed)

    def test_image_lock(self):
        img = self.td.join("disk.img")
        make_image(img, 64 * 1024)
        s = vmm.spawn_crosvm(guest("demo"), "--rwdisk", img, sandbox=self.sandbox)
        try:
            s.expect("demo> ", timeout=30)
            r = self.run_vm(guest("demo"), "--rwdisk", img, "-p", "demo.oneshot")
            self.assertEqual(r.status, vmm.STATUS_INVALID, r)
            self.assertIn("locked", r.err)
            # Read-only openers are refused too while a VM writes the image.
            r = self.run_vm(guest("demo"), "-d", img, "-p", "demo.oneshot")
            self.assertEqual(r.status, vmm.STATUS_INVALID, r)
        finally:
            vmm.kill_tree(s)

    def test_flushed_data_survives_kill_9(self):
        img = self.td.join("disk.img")
        make_image(img, 256 * 1024)
        s = vmm.spawn_crosvm(guest("virtio_blk"), "-b", img, "-p", "vblk.rw=0 vblk.seed=99",
                             sandbox=self.sandbox)
        try:
            s.expect("PASS blk_flush", timeout=60)
            os.kill(s.proc.pid, signal.SIGKILL)
            s.proc.wait()
        finally:
            vmm.kill_tree(s)
        self.assertEqual(read(img), blk_pattern(512, 99))


class SandboxedVirtio(VirtioTests, unittest.TestCase):
    sandbox = True


class UnsandboxedVirtio(VirtioTests, unittest.TestCase):
    sandbox = False


class DiskOptions(unittest.TestCase):
    def test_bad_block_options(self):
        for opts in (["-b", "/nonexistent.img"], ["-b", "x.img,bogus=1"],
                     ["-b", "x.img,id=012345678901234567890"], ["-b", "x.img,block-size=100"],
                     ["-b", ""]):
            r = vmm.run_crosvm(guest("demo"), *opts, sandbox=False)
            self.assertEqual(r.status, vmm.STATUS_INVALID, (opts, r))


if __name__ == "__main__":
    unittest.main()
