"""Cross-check of the test guests against QEMU, a VMM nobody here wrote.

Boots each guest under qemu-system-x86_64 -M microvm (through its PVH entry) and checks
what it reports, so that when our crosvm boots the same guests, a difference points at
crosvm. Also checks the three image formats the build makes, which needs no VMM.
Skips with a message when QEMU or /dev/kvm is missing.
"""

import datetime
import os
import random
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib as gl  # noqa: E402
import vmm  # noqa: E402

BOOT_TIMEOUT = 60  # generous: a boot takes well under a second here


def setUpModule():
    if gl.guest_dir() is None:
        raise unittest.SkipTest("GUEST_DIR is not set: run through ctest or set it")
    missing = gl.missing_guests()
    if missing:
        raise AssertionError("guest images missing (build the 'guests' target): %s" % missing)


class ImageFormatTest(unittest.TestCase):
    """The .elf, .vmlinux and .bzImage of one guest carry the same program."""

    def read(self, name, kind):
        with open(gl.guest_path(name, kind), "rb") as f:
            return f.read()

    def test_elf_has_pvh_note_and_64bit_entry(self):
        for name in gl.GUEST_NAMES:
            with self.subTest(guest=name):
                data = self.read(name, "elf")
                entry, _ = gl.elf_segments(data)
                self.assertEqual(entry, gl.ENTRY64)
                self.assertEqual(gl.elf_pvh_entry(data), gl.LOAD_ADDR)

    def test_vmlinux_is_the_elf_without_the_note(self):
        for name in gl.GUEST_NAMES:
            with self.subTest(guest=name):
                elf, vmlinux = self.read(name, "elf"), self.read(name, "vmlinux")
                entry, _ = gl.elf_segments(vmlinux)
                self.assertEqual(entry, gl.ENTRY64)
                self.assertIsNone(gl.elf_pvh_entry(vmlinux))
                # The note is the last loaded section: dropping it shortens the image only.
                img_v, img_e = gl.elf_memory_image(vmlinux), gl.elf_memory_image(elf)
                self.assertEqual(img_e[:len(img_v)], img_v)
                self.assertLessEqual(len(img_e) - len(img_v), 64)

    def test_bzimage_header_and_payload(self):
        for name in gl.GUEST_NAMES:
            with self.subTest(guest=name):
                elf, bz = self.read(name, "elf"), self.read(name, "bzImage")
                h = gl.bzimage_header(bz)
                self.assertEqual(h["boot_flag"], 0xaa55)
                self.assertEqual(h["header"], b"HdrS")
                self.assertEqual(h["version"], 0x020f)
                self.assertEqual(h["loadflags"] & 1, 1)  # LOADED_HIGH
                self.assertEqual(h["xloadflags"] & 1, 1)  # XLF_KERNEL_64
                self.assertEqual(h["code32_start"], gl.LOAD_ADDR)
                self.assertEqual(h["pref_address"], gl.LOAD_ADDR)
                self.assertEqual(h["kernel_alignment"], 0x200000)
                self.assertEqual(h["relocatable_kernel"], 0)
                self.assertEqual(h["cmdline_size"], 2047)
                payload = bz[h["payload_offset"]:]
                self.assertEqual(len(payload), h["syssize"] * 16)
                image = gl.elf_memory_image(elf)
                self.assertEqual(payload[:len(image)], image)
                self.assertEqual(payload[len(image):], bytes(len(payload) - len(image)))
                # init_size must cover .bss and the stacks, which are not in the file.
                _, segs = gl.elf_segments(elf)
                span = max(p + m for t, _, p, _, m in segs if t == 1) - gl.LOAD_ADDR
                self.assertGreaterEqual(h["init_size"], span)


@unittest.skipIf(gl.qemu_unavailable(), gl.qemu_unavailable() or "")
class QemuGuestTest(unittest.TestCase):
    maxDiff = None

    def boot(self, name, expect_rc=0, guest=None, **kwargs):
        kwargs.setdefault("timeout", BOOT_TIMEOUT)
        rc, out = gl.run_qemu(guest or gl.guest_path(name), **kwargs)
        self.assertEqual(rc, expect_rc, "QEMU status (None: timed out); output:\n" + out)
        return gl.parse_results(out), out

    def assertClean(self, res, out):
        self.assertEqual(res.failed, [], out)
        self.assertTrue(res.done, "no DONE line:\n" + out)

    def test_bootinfo_pvh_with_initrd(self):
        data = random.Random(20240601).randbytes(48 * 1024 + 7)
        cmdline = 'bootinfo.test=1 console=ttyS0 quoted="a b" last'
        with tempfile.NamedTemporaryFile(suffix=".initrd") as f:
            f.write(data)
            f.flush()
            res, out = self.boot("bootinfo", append=cmdline, initrd=f.name, mem_mib=256)
        self.assertClean(res, out)
        self.assertEqual(res.info["boot"], "pvh")
        self.assertEqual(res.info["cmdline"], cmdline)
        addr, size, crc = res.info["initrd"].split(",")
        self.assertEqual(int(size), len(data))
        self.assertEqual(int(crc, 16), gl.crc32(data))
        self.assertGreaterEqual(int(addr, 0), 0x100000)
        for check in ("e820_present", "e820_disjoint", "e820_low_ram", "image_in_ram",
                      "initrd_in_ram", "initrd_no_overlap", "acpi_rsdp"):
            self.assertIn(check, res.passed)
        # RAM is all of -m except the legacy hole [0x9fc00, 1 MiB).
        total = res.info_int("mem_total")
        self.assertLessEqual(total, 256 << 20)
        self.assertGreaterEqual(total, (256 << 20) - (1 << 20))
        self.assertEqual(sum(s for _, s, t in res.e820() if t == 1), total)
        self.assertNotEqual(res.info["rsdp"], "none")

    def test_bootinfo_memory_size_follows_dash_m(self):
        for mib in (128, 512):
            with self.subTest(mem_mib=mib):
                res, out = self.boot("bootinfo", mem_mib=mib)
                self.assertClean(res, out)
                total = res.info_int("mem_total")
                self.assertLessEqual(total, mib << 20)
                self.assertGreaterEqual(total, (mib << 20) - (1 << 20))

    def test_bootinfo_without_initrd_or_cmdline(self):
        res, out = self.boot("bootinfo")
        self.assertClean(res, out)
        self.assertEqual(res.info["initrd"], "none")
        self.assertEqual(res.info["cmdline"], "")

    @unittest.skipUnless(os.path.isfile(gl.SEABIOS_MICROVM), "no SeaBIOS microvm build")
    def test_bzimage_boots_through_the_64bit_entry(self):
        """The bzImage path: QEMU's Linux loader, the setup code, then entry64 at +0x200."""
        data = random.Random(7).randbytes(20000)
        with tempfile.NamedTemporaryFile(suffix=".initrd") as f:
            f.write(data)
            f.flush()
            res, out = self.boot("bootinfo", append="via bzImage", initrd=f.name,
                                 bios=gl.SEABIOS_MICROVM, guest=gl.guest_path("bootinfo",
                                                                             "bzImage"))
        self.assertClean(res, out)
        self.assertEqual(res.info["boot"], "linux64")
        self.assertEqual(res.info["cmdline"], "via bzImage")
        self.assertEqual(res.info["loader_type"], "0xb0")  # QEMU's loader id
        self.assertEqual(res.info["boot_version"], "0x020f")
        addr, size, crc = res.info["initrd"].split(",")
        self.assertEqual((int(size), int(crc, 16)), (len(data), gl.crc32(data)))
        self.assertEqual(res.info["rsdp_source"], "scan")  # the zero page has no RSDP here
        total = res.info_int("mem_total")
        self.assertGreaterEqual(total, (256 << 20) - (1 << 20))
        self.assertLessEqual(total, 256 << 20)
        # The reference for what crosvm gives without firmware (test_boot checks it there):
        # QEMU -cpu host shows the host's brand, and SeaBIOS leaves the MTRRs enabled,
        # fixed ranges on, default write-back.
        self.assertEqual(res.info["cpu.brand"], vmm.host_cpu()["model name"])
        self.assertEqual(res.info["mtrr.def_type"], "0xc06")

    @unittest.skipUnless(os.path.isfile(gl.SEABIOS_MICROVM), "no SeaBIOS microvm build")
    def test_bzimage_smp(self):
        res, out = self.boot("smp", smp=2, bios=gl.SEABIOS_MICROVM,
                             guest=gl.guest_path("smp", "bzImage"))
        self.assertClean(res, out)
        self.assertIn("smp cpus=2", res.passed)
        self.assertEqual(res.info["ap1.mtrr_def_type"], "0xc06")

    def test_smp_starts_every_cpu(self):
        for n in (2, 3, 4):
            with self.subTest(cpus=n):
                res, out = self.boot("smp", smp=n)
                self.assertClean(res, out)
                self.assertIn("smp cpus=%d" % n, res.passed)
                aps = sorted(p for p in res.passed if p.startswith("ap"))
                self.assertEqual(aps, ["ap%d apic=%d" % (i, i) for i in range(1, n)], out)

    def test_irq_timer_serial_and_rtc(self):
        res, out = self.boot("irq")
        self.assertClean(res, out)
        for check in ("lapic_timer", "serial_irq", "serial_iir", "rtc"):
            self.assertIn(check, res.passed)
        rtc = datetime.datetime.strptime(res.info["rtc"], "%Y-%m-%dT%H:%M:%S")
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        # QEMU's RTC runs on UTC; minutes of slack cannot be reached by a boot of seconds.
        self.assertLess(abs((rtc - now).total_seconds()), 600, out)

    def test_acpi_tables(self):
        res, out = self.boot("acpi", smp=2)
        self.assertClean(res, out)
        for check in ("acpi_rsdp", "acpi_checksums", "fadt_present", "dsdt_present",
                      "s5_present", "madt_present", "ioapic_present"):
            self.assertIn(check, res.passed)
        self.assertEqual(res.info["madt.cpus"], "2")
        self.assertEqual(res.info["madt.apic_ids"], "0,1")

    def test_pci_enumeration_on_q35(self):
        """q35 offers ECAM (MCFG) and the config ports: both must show the same bus."""
        res, out = self.boot("pci", machine="q35", extra_args=["-device", "virtio-rng-pci"])
        self.assertClean(res, out)
        self.assertEqual(res.info["pci.ports"], "yes")
        self.assertTrue(res.info["pci.ecam"].startswith("0x"), out)
        self.assertIn("pci_ecam_ports_agree", res.passed)
        self.assertTrue(res.info["pci.00:00.0"].endswith("class=0x060000 hdr=0x00 pin=0"))
        rng = [k for k, v in res.info.items() if v.startswith("1af4:1005 ")]
        self.assertEqual(len(rng), 1, out)
        bdf = rng[0]
        # The four virtio structures a modern driver needs, as vendor capabilities.
        self.assertTrue({"1", "2", "3", "4"} <= set(res.info[bdf + ".virtio"].split(",")))
        self.assertIn("0x11", res.info[bdf + ".caps"].split(","))  # MSI-X
        bars = [v for k, v in res.info.items() if k.startswith(bdf + ".bar")]
        self.assertIn("mem64", ",".join(bars))

    def test_fault_caught_by_handlers(self):
        res, out = self.boot("fault")
        self.assertClean(res, out)
        self.assertEqual(res.passed, ["fault_ud vector=6", "fault_gp vector=13",
                                      "fault_pf vector=14", "fault_de vector=0"])

    def test_fault_unhandled_is_reported(self):
        res, out = self.boot("fault", append="fault.kind=pf")
        self.assertFalse(res.done)
        self.assertEqual(len(res.exceptions()), 1, out)
        reason = res.exceptions()[0]
        self.assertIn("vector=14", reason)
        self.assertIn("cr2=0x100002000", reason)

    def test_demo_oneshot(self):
        res, out = self.boot("demo", append="demo.oneshot")
        self.assertClean(res, out)
        self.assertIn("crosvm demo guest: hello", res.lines)

    def test_demo_run_poweroff(self):
        res, out = self.boot("demo", append="demo.run=poweroff")
        self.assertClean(res, out)
        self.assertIn("powering off", res.lines)

    def test_demo_run_panic_ends_with_panic_status(self):
        res, out = self.boot("demo", append="demo.run=panic", expect_rc=1)
        self.assertEqual(res.failed, [])
        self.assertFalse(res.done)

    def test_demo_run_reset_and_triplefault_end_the_vm(self):
        for cmd, line in (("reset", "resetting"), ("triplefault", "triple fault")):
            with self.subTest(cmd=cmd):
                res, out = self.boot("demo", append="demo.run=" + cmd)
                self.assertEqual(res.failed, [], out)
                self.assertFalse(res.done)
                self.assertIn(line, res.lines)

    def test_demo_interactive(self):
        s = gl.spawn_qemu(gl.guest_path("demo"))
        try:
            s.expect("demo> ")
            s.send("echo hello guest\r")
            s.expect("hello guest\n")
            s.expect("demo> ")
            s.send("echo abx\x7fc\r")  # backspace erases the x
            s.expect("abc\n")
            s.expect("demo> ")
            s.send("cpus\r")
            s.expect("1 CPU (MADT): apic0*")
            s.expect("demo> ")
            s.send("poweroff\r")
            rc, out = s.wait(BOOT_TIMEOUT)
        finally:
            s.close()
        self.assertEqual(rc, 0, out)
        self.assertTrue(gl.parse_results(out).done, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
