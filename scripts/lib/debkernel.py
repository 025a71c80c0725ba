"""Debian's cloud kernel as the project uses it: the bzImage, the vmlinux inside it, and its
modules with a modules.dep, unpacked once into a cache directory.

Everything comes from Debian packages (linux-image-cloud-amd64 resolved to its versioned
image package). The cache is keyed by the package version, so an `apt-get update` that brings
a new kernel gives a new cache entry; a machine that cannot reach the archive keeps using the
newest entry it has.
"""

import fcntl
import glob
import os
import shutil
import struct
import subprocess
import tempfile

DEFAULT_CACHE = "/var/cache/crosvm-linux"
META_PACKAGE = "linux-image-cloud-amd64"


class Error(Exception):
    """A missing tool, package or file, with what to do about it."""


def cache_dir():
    return os.environ.get("CROSVM_LINUX_DIR") or DEFAULT_CACHE


class Lock:
    """An exclusive flock on a file: concurrent builders of one cache entry wait in turn."""

    def __init__(self, path):
        self.path = path
        self.fd = -1

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def need_tool(name, package):
    if shutil.which(name) is None and not os.path.exists(os.path.join("/usr/sbin", name)):
        raise Error(f"{name} is missing (apt-get install {package})")


def _run(cmd, what, **kw):
    res = subprocess.run(cmd, capture_output=True, **kw)
    if res.returncode != 0:
        raise Error(f"{what} failed: {res.stderr.decode(errors='replace').strip()}")
    return res.stdout.decode(errors="replace")


def resolve_package():
    """The versioned image package the meta package depends on, or None if apt cannot say."""
    res = subprocess.run(["apt-cache", "depends", META_PACKAGE], capture_output=True)
    for line in res.stdout.decode(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("Depends: linux-image-") and line.endswith("-cloud-amd64"):
            return line.split()[1]
    return None


class Kernel:
    """One unpacked kernel: version, vmlinuz (bzImage), vmlinux (ELF), moddir (modules)."""

    def __init__(self, root):
        self.root = root
        with open(os.path.join(root, "version")) as f:
            self.version = f.read().strip()
        self.vmlinuz = os.path.join(root, "vmlinuz")
        self.vmlinux = os.path.join(root, "vmlinux")
        self.moddir = os.path.join(root, "lib", "modules", self.version)
        self._deps = None

    def deps(self):
        """modules.dep as {relative path: [relative paths it needs]}."""
        if self._deps is None:
            self._deps = {}
            with open(os.path.join(self.moddir, "modules.dep")) as f:
                for line in f:
                    mod, _, needs = line.partition(":")
                    self._deps[mod.strip()] = needs.split()
        return self._deps

    def module_path(self, name):
        """The relative path of module NAME ('-' and '_' are the same, as for modprobe)."""
        want = name.replace("-", "_")
        for mod in self.deps():
            base = os.path.basename(mod).split(".ko")[0]
            if base.replace("-", "_") == want:
                return mod
        raise Error(f"kernel {self.version} has no module {name}")

    def load_order(self, names):
        """Relative paths of NAMES and everything they need, each after what it needs."""
        order, seen = [], set()

        def visit(mod):
            if mod in seen:
                return
            seen.add(mod)
            # modules.dep lists the whole closure, nearest first: load from the far end.
            for dep in reversed(self.deps()[mod]):
                visit(dep)
            order.append(mod)

        for name in names:
            visit(self.module_path(name))
        return order


def _le(data, off, size):
    return int.from_bytes(data[off:off + size], "little")


def _extract_vmlinux(bzimage, out, work):
    """Writes the ELF vmlinux carried (LZ4-compressed) in a bzImage to OUT."""
    with open(bzimage, "rb") as f:
        data = f.read()
    if data[0x202:0x206] != b"HdrS":
        raise Error(f"{bzimage} is not a bzImage (no HdrS)")
    setup_sects = data[0x1f1] or 4
    offset, length = _le(data, 0x248, 4), _le(data, 0x24c, 4)
    start = (setup_sects + 1) * 512 + offset
    payload = data[start:start + length]
    if length <= 4 or len(payload) != length:
        raise Error(f"{bzimage} has no complete compressed payload")
    if payload[:4] != b"\x02\x21\x4c\x18":
        raise Error(f"{bzimage}: payload is not LZ4 (legacy format)")
    # The build appends the decompressed size; lz4 would read it as a bogus next frame.
    want = _le(payload, length - 4, 4)
    comp = os.path.join(work, "payload.lz4")
    with open(comp, "wb") as f:
        f.write(payload[:-4])
    need_tool("lz4", "lz4")
    with open(out, "wb") as f:
        res = subprocess.run(["lz4", "-dcq", comp], stdout=f, stderr=subprocess.PIPE)
    if res.returncode != 0:
        raise Error("lz4 could not decompress the kernel payload")
    if os.path.getsize(out) != want:
        raise Error(f"decompressed {os.path.getsize(out)} bytes, the image says {want}")
    with open(out, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise Error("the decompressed payload is not an ELF file")


def _unpack(pkg, dest):
    need_tool("dpkg-deb", "dpkg")
    need_tool("depmod", "kmod")
    work = tempfile.mkdtemp(prefix=".work.", dir=os.path.dirname(dest))
    try:
        _run(["apt-get", "download", "-qq", "-o", "APT::Sandbox::User=root", pkg],
             f"apt-get download {pkg}", cwd=work)
        debs = glob.glob(os.path.join(work, "*.deb"))
        if not debs:
            raise Error(f"apt-get download {pkg} produced no .deb")
        root = os.path.join(work, "root")
        _run(["dpkg-deb", "-x", debs[0], root], "dpkg-deb -x")
        images = glob.glob(os.path.join(root, "boot", "vmlinuz-*"))
        if not images:
            raise Error(f"{pkg} has no /boot/vmlinuz-*")
        version = os.path.basename(images[0])[len("vmlinuz-"):]
        entry = os.path.join(work, "entry")
        os.makedirs(os.path.join(entry, "lib", "modules"))
        shutil.copy(images[0], os.path.join(entry, "vmlinuz"))
        _extract_vmlinux(images[0], os.path.join(entry, "vmlinux"), work)
        os.rename(os.path.join(root, "lib", "modules", version),
                  os.path.join(entry, "lib", "modules", version))
        # The package has no modules.dep (the postinst makes it): make one.
        _run(["depmod", "-b", entry, version], "depmod")
        with open(os.path.join(entry, "version"), "w") as f:
            f.write(version + "\n")
        os.rename(entry, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_kernel():
    """The cached kernel, fetched and unpacked first if needed. Raises Error."""
    base = cache_dir()
    os.makedirs(base, exist_ok=True)
    with Lock(os.path.join(base, ".lock")):
        pkg = resolve_package()
        if pkg is None:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            pkg = resolve_package()
        if pkg is None:
            have = sorted(glob.glob(os.path.join(base, "linux-image-*")))
            if have:
                return Kernel(have[-1])
            raise Error(f"cannot resolve {META_PACKAGE} (apt-get update, and network access to "
                        "the Debian archive, are needed once)")
        dest = os.path.join(base, pkg)
        if not os.path.exists(os.path.join(dest, "version")):
            _unpack(pkg, dest)
        # Stable names for the current kernel (scripts/fetch-linux prints these).
        for name in ("vmlinuz", "vmlinux"):
            link = os.path.join(base, name)
            tmp = link + ".new"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(os.path.join(pkg, name), tmp)
            os.replace(tmp, link)
        return Kernel(dest)


def newc_archive(entries):
    """A cpio 'newc' archive (bytes) of ENTRIES: (path, mode, data-or-symlink-target, rdev).

    Deterministic (no times, fixed inode numbers), so an unchanged input gives the same bytes.
    """
    out = bytearray()
    ino = 1

    def header(name, mode, size, rdev_major=0, rdev_minor=0):
        nonlocal ino
        fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, rdev_major, rdev_minor, len(name) + 1, 0]
        ino += 1
        h = b"070701" + b"".join(b"%08X" % v for v in fields)
        h += name.encode() + b"\0"
        return h + b"\0" * (-len(h) % 4)

    for path, mode, data, rdev in entries:
        if isinstance(data, str):
            data = data.encode()
        major, minor = rdev if rdev else (0, 0)
        out += header(path, mode, len(data), major, minor)
        out += data + b"\0" * (-len(data) % 4)
    out += header("TRAILER!!!", 0, 0)
    return bytes(out + b"\0" * (-len(out) % 512))


S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR = 0o040000, 0o100000, 0o120000, 0o020000


class Initramfs:
    """Builds an initramfs: directories, files, symlinks and device nodes, then newc+gzip."""

    def __init__(self):
        self.entries = []
        self.dirs = set()

    def mkdir(self, path, mode=0o755):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                self.entries.append((d, S_IFDIR | mode, b"", None))

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        if "/" in path:
            self.mkdir(os.path.dirname(path))
        self.entries.append((path, S_IFREG | mode, data, None))

    def copy(self, path, src, mode=None):
        with open(src, "rb") as f:
            data = f.read()
        self.file(path, data, mode if mode is not None else os.stat(src).st_mode & 0o7777)

    def symlink(self, path, target):
        path = path.strip("/")
        if "/" in path:
            self.mkdir(os.path.dirname(path))
        self.entries.append((path, S_IFLNK | 0o777, target, None))

    def chardev(self, path, major, minor, mode=0o600):
        self.entries.append((path.strip("/"), S_IFCHR | mode, b"", (major, minor)))

    def busybox(self, applets=None):
        """A static busybox as /bin/busybox with /bin/sh; the init installs the rest."""
        bb = "/bin/busybox"
        if not os.path.exists(bb):
            raise Error(f"{bb} is missing (apt-get install busybox-static)")
        with open(bb, "rb") as f:
            head = f.read(4096)
        if b"/lib64/ld-linux" in head or b"ld-linux-x86-64" in head:
            raise Error(f"{bb} is dynamically linked (apt-get install busybox-static)")
        self.copy("bin/busybox", bb, 0o755)
        for applet in applets or ("sh",):
            self.symlink(f"bin/{applet}", "busybox")

    def modules(self, kernel, names):
        """Copies NAMES and their dependencies; returns the load order (paths in the image)."""
        order = kernel.load_order(names)
        for mod in order:
            self.copy(f"lib/modules/{mod}", os.path.join(kernel.moddir, mod), 0o644)
        return [f"/lib/modules/{mod}" for mod in order]

    def write(self, out):
        import gzip
        data = gzip.compress(newc_archive(self.entries), compresslevel=6, mtime=0)
        tmp = out + ".%d.tmp" % os.getpid()
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, out)
        return out
