"""Helpers shared by the integration tests that boot the test guests (test/guests/).

Standard library only. The guests print a line protocol on COM1:

    INFO <key>=<value>     a fact the host may compare
    PASS <name>            a check that held
    FAIL <name>: <reason>  a check that failed
    DONE                   the guest finished; it powers off next

parse_results() turns that output into a Results object; run_qemu() boots a guest under
QEMU (the reference VMM) and spawn_qemu() starts one for interactive use.
"""

import os
import re
import selectors
import shutil
import struct
import subprocess
import tempfile
import time
import zlib

QEMU = "qemu-system-x86_64"

# Every guest the build produces, and the three images of each.
GUEST_NAMES = ("bootinfo", "smp", "irq", "demo", "acpi", "fault", "pci", "virtio_rng", "virtio_blk",
               "balloon", "acpi_events", "ticker", "probe", "debuggee")
IMAGE_KINDS = ("elf", "vmlinux", "bzImage")

# Guest memory layout facts (test/guests/lib/memlayout.h, tools/mkbzimage.c).
LOAD_ADDR = 0x100000
ENTRY64 = LOAD_ADDR + 0x200
XEN_ELFNOTE_PHYS32_ENTRY = 18


class Results:
    """What a guest reported.

    passed: list of PASS names, in order (a name may repeat)
    failed: list of (name, reason) for each FAIL line
    info:   dict of INFO key -> value (the first value when a key repeats)
    done:   True when the guest printed DONE
    lines:  every output line, protocol or not
    """

    def __init__(self):
        self.passed = []
        self.failed = []
        self.info = {}
        self.done = False
        self.lines = []

    def info_int(self, key):
        """An INFO value as an integer (decimal or 0x-hex)."""
        return int(self.info[key], 0)

    def exceptions(self):
        """The reasons of the FAIL exception lines (the guest took an unexpected fault)."""
        return [reason for name, reason in self.failed if name == "exception"]

    def e820(self):
        """The memory map the guest saw: list of (addr, size, type), in the loader's order."""
        count = self.info_int("e820_count")
        out = []
        for i in range(count):
            addr, size, typ = self.info["e820.%d" % i].split(",")
            out.append((int(addr, 0), int(size, 0), int(typ, 0)))
        return out

    def __repr__(self):
        return "Results(passed=%r, failed=%r, done=%r, info=%r)" % (
            self.passed, self.failed, self.done, self.info)


_FAIL_RE = re.compile(r"^FAIL (\S+?)(?::\s?(.*))?$")


def parse_results(text):
    """Parses guest output (str or bytes) into a Results. Unknown lines are kept in .lines."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    res = Results()
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        res.lines.append(line)
        if line.startswith("INFO "):
            key, sep, value = line[5:].partition("=")
            if sep and key not in res.info:
                res.info[key] = value
        elif line.startswith("PASS "):
            res.passed.append(line[5:])
        elif line.startswith("FAIL "):
            m = _FAIL_RE.match(line)
            if m:
                res.failed.append((m.group(1), m.group(2) or ""))
        elif line == "DONE":
            res.done = True
    return res


def guest_dir():
    """Where the built guests are: $GUEST_DIR, else $BUILD_DIR/test/guests, else None."""
    d = os.environ.get("GUEST_DIR")
    if d:
        return d
    b = os.environ.get("BUILD_DIR")
    if b:
        return os.path.join(b, "test", "guests")
    return None


def guest_path(name, kind="elf"):
    """Path of one guest image: kind is "elf" (PVH), "vmlinux" or "bzImage"."""
    if kind not in IMAGE_KINDS:
        raise ValueError("unknown image kind %r" % kind)
    d = guest_dir()
    if d is None:
        raise RuntimeError("set GUEST_DIR (or BUILD_DIR) to find the test guests")
    return os.path.join(d, "%s.%s" % (name, kind))


def missing_guests(kinds=IMAGE_KINDS):
    """Names of expected guest images that are not there (empty when all are built)."""
    d = guest_dir()
    if d is None:
        return ["GUEST_DIR is not set"]
    return [guest_path(n, k) for n in GUEST_NAMES for k in kinds
            if not os.path.isfile(guest_path(n, k))]


def qemu_path():
    """The QEMU binary, or None."""
    return shutil.which(QEMU)


def qemu_unavailable():
    """Why QEMU cannot run guests here, or None when it can.

    scripts/run_tests sets CROSVM_REQUIRE_QEMU=1: there the cross-checks must run, so a
    missing QEMU is an error rather than a reason to skip.
    """
    why = None
    if qemu_path() is None:
        why = "%s is not installed" % QEMU
    elif not os.access("/dev/kvm", os.R_OK | os.W_OK):
        why = "/dev/kvm is not usable"
    if why and os.environ.get("CROSVM_REQUIRE_QEMU") == "1":
        raise RuntimeError("the QEMU cross-checks are required but " + why)
    return why


# QEMU's default microvm firmware (qboot) does not answer int 15h E820, which the bzImage's
# real-mode setup code asks for the memory map; SeaBIOS's microvm build does.
SEABIOS_MICROVM = "/usr/share/seabios/bios-microvm.bin"


def qemu_command(guest, append="", initrd=None, smp=1, mem_mib=256, machine="microvm,rtc=on",
                 pvpanic=True, bios=None, extra_args=()):
    """The QEMU command line that boots guest (-M machine, microvm by default).

    A .elf boots through its PVH note; a .bzImage through QEMU's real-mode Linux loader,
    which on microvm needs bios=SEABIOS_MICROVM for a memory map. QEMU cannot boot a
    .vmlinux. microvm has no PCI config ports and (QEMU 7.2) no MCFG: use "q35" for PCI.
    """
    cmd = [qemu_path() or QEMU,
           "-M", machine,
           "-enable-kvm", "-cpu", "host,-arch-capabilities",
           "-m", "%dM" % mem_mib, "-smp", str(smp),
           "-nodefaults", "-no-user-config", "-nographic",
           "-serial", "stdio", "-no-reboot",
           "-kernel", guest, "-append", append]
    if initrd:
        cmd += ["-initrd", initrd]
    if bios:
        cmd += ["-bios", bios]
    if pvpanic:
        # A guest panic ends QEMU with status 1, so a test can tell it from a poweroff.
        cmd += ["-device", "pvpanic", "-action", "panic=exit-failure"]
    cmd += list(extra_args)
    return cmd


def run_qemu(guest_path, append="", initrd=None, smp=1, mem_mib=256, timeout=30,
             input=None, **kwargs):
    """Boots a guest under QEMU and waits for it to end.

    Returns (returncode, output): output is the guest's serial output followed by QEMU's
    stderr; returncode is None when the guest was still running after timeout seconds (it
    is killed). QEMU exits 0 on poweroff, reset (-no-reboot) and triple fault, and 1 on a
    pvpanic event. Other keyword arguments go to qemu_command().
    """
    cmd = qemu_command(guest_path, append=append, initrd=initrd, smp=smp, mem_mib=mem_mib,
                       **kwargs)
    try:
        p = subprocess.run(cmd, input=input.encode() if isinstance(input, str) else input,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, e.stdout or b"", e.stderr or b""
    text = out.decode("utf-8", errors="replace")
    if err:
        text += err.decode("utf-8", errors="replace")
    return rc, text


class Session:
    """A running VM whose serial console is the process's stdin/stdout.

    Works for any VMM command whose stdout/stdin is the guest's COM1 (QEMU with -serial
    stdio, crosvm's default serial).
    """

    def __init__(self, cmd):
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.output = b""
        self._pos = 0

    def _read(self, timeout):
        """True if output came, False on timeout, None at end of output."""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return False
        chunk = self.proc.stdout.read()
        if chunk is None:
            return True
        if not chunk:
            return None
        self.output += chunk
        return True

    def expect(self, text, timeout=10):
        """Waits until text appears after the end of the previous match; returns True."""
        want = text.encode() if isinstance(text, str) else text
        deadline = time.monotonic() + timeout
        while True:
            idx = self.output.find(want, self._pos)
            if idx >= 0:
                self._pos = idx + len(want)
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("did not see %r; output so far: %r" % (want, self.output))
            if self._read(left) is None:
                raise EOFError("VM ended before %r; output: %r" % (want, self.output))

    def send(self, text):
        self.proc.stdin.write(text.encode() if isinstance(text, str) else text)
        self.proc.stdin.flush()

    def wait(self, timeout=10, before_kill=None):
        """Waits for the VM to end: (returncode, or None if it was killed; output + stderr).

        before_kill() runs when the VM has to be killed, while it still exists.
        """
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.05)
        rc = self.proc.poll()
        if rc is None:
            if before_kill:
                self.at_kill = before_kill()
            self.kill()
        while self._read(0) is True:
            pass
        self._stderr.seek(0)
        err = self._stderr.read()
        return rc, (self.output + err).decode("utf-8", errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()
        for f in (self.proc.stdin, self.proc.stdout, self._stderr):
            try:
                f.close()
            except OSError:
                pass


def spawn_qemu(guest_path, append="", **kwargs):
    """Starts a guest under QEMU for interactive use; returns a Session."""
    return Session(qemu_command(guest_path, append=append, **kwargs))


def crc32(data):
    """The CRC-32 the bootinfo guest prints for an initrd (zlib's)."""
    return zlib.crc32(data) & 0xffffffff


# ---- image inspection (no VMM needed) ----

def elf_segments(data):
    """(e_entry, [(p_type, p_offset, p_paddr, p_filesz, p_memsz)]) of an ELF64 file."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("not an ELF64 file")
    (e_entry, e_phoff, e_phentsize, e_phnum) = (
        struct.unpack_from("<Q", data, 24)[0], struct.unpack_from("<Q", data, 32)[0],
        struct.unpack_from("<H", data, 54)[0], struct.unpack_from("<H", data, 56)[0])
    segs = []
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        p_type, _flags, p_offset, _vaddr, p_paddr, p_filesz, p_memsz = struct.unpack_from(
            "<IIQQQQQ", data, off)
        segs.append((p_type, p_offset, p_paddr, p_filesz, p_memsz))
    return e_entry, segs


def elf_pvh_entry(data):
    """The XEN_ELFNOTE_PHYS32_ENTRY address in an ELF's PT_NOTE segments, or None."""
    _, segs = elf_segments(data)
    for p_type, off, _paddr, filesz, _memsz in segs:
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = off, off + filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            name = data[pos + 12:pos + 12 + namesz]
            desc = pos + 12 + ((namesz + 3) & ~3)
            if name.rstrip(b"\0") == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                size = 8 if descsz >= 8 else 4
                return int.from_bytes(data[desc:desc + size], "little")
            pos = desc + ((descsz + 3) & ~3)
    return None


def elf_memory_image(data):
    """The bytes the loadable segments put in memory from LOAD_ADDR up to the last file byte."""
    _, segs = elf_segments(data)
    loads = [s for s in segs if s[0] == 1 and s[3]]
    end = max(paddr + filesz for _, _, paddr, filesz, _ in loads)
    image = bytearray(end - LOAD_ADDR)
    for _, off, paddr, filesz, _ in loads:
        image[paddr - LOAD_ADDR:paddr - LOAD_ADDR + filesz] = data[off:off + filesz]
    return bytes(image)


def bzimage_header(data):
    """The setup header fields of a bzImage that a loader reads."""
    f = {}
    f["setup_sects"] = data[0x1f1]
    f["syssize"] = struct.unpack_from("<I", data, 0x1f4)[0]
    f["boot_flag"] = struct.unpack_from("<H", data, 0x1fe)[0]
    f["header"] = data[0x202:0x206]
    f["version"] = struct.unpack_from("<H", data, 0x206)[0]
    f["loadflags"] = data[0x211]
    f["code32_start"] = struct.unpack_from("<I", data, 0x214)[0]
    f["initrd_addr_max"] = struct.unpack_from("<I", data, 0x22c)[0]
    f["kernel_alignment"] = struct.unpack_from("<I", data, 0x230)[0]
    f["relocatable_kernel"] = data[0x234]
    f["xloadflags"] = struct.unpack_from("<H", data, 0x236)[0]
    f["cmdline_size"] = struct.unpack_from("<I", data, 0x238)[0]
    f["pref_address"] = struct.unpack_from("<Q", data, 0x258)[0]
    f["init_size"] = struct.unpack_from("<I", data, 0x260)[0]
    setup = (f["setup_sects"] or 4) + 1
    f["payload_offset"] = setup * 512
    return f
