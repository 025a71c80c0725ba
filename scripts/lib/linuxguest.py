"""The Linux guest the tests and the demo boot: Debian's cloud kernel, a busybox initramfs
that loads the virtio modules and either mounts a root disk or runs what the kernel command
line names, and an ext4 root file system image made from the same busybox.

Kernel command line keys the init reads:
  root=DEV [ro|rw] [rootfstype=T]   mount DEV (waiting for it) and switch to its /sbin/init
  crosvm.run=shell (default)        an interactive shell on the console; poweroff at its end
  crosvm.run=agent                  a host-driven shell: lines in, "@@crosvm-done N" after each
  crosvm.run=NAME                   /tests/NAME.sh (test/linux/NAME.sh), then poweroff
  crosvm.modules=a,b                extra modules to load (beyond the default set)
Everything is cached under debkernel.cache_dir() by a hash of its inputs.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile

import debkernel
from debkernel import Error

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
TEST_SCRIPTS = os.path.join(SRC, "test", "linux")
TOOLS = os.path.join(TEST_SCRIPTS, "tools")

# Loaded at boot, in this order of need (their dependencies come first by themselves).
GUEST_MODULES = (
    "virtio_pci", "virtio_blk", "virtio-rng", "virtio_balloon", "virtio_console",
    "virtio_net", "vmw_vsock_virtio_transport", "virtiofs", "pvpanic-mmio", "pvpanic-pci",
    "evdev",
    # The ACPI power button as an input device (what busybox acpid watches); a module in
    # Debian's cloud kernel.
    "button",
    # /dev/cpu/N/msr: a test reads the MTRR default type the VMM set on every CPU.
    "msr",
)
MARKER_READY = "CROSVM_GUEST_READY"
ROOTFS_SIZE = "64M"

GUEST_INIT = r"""#!/bin/sh
# The Linux test guest's init (scripts/lib/linuxguest.py): initramfs and root disk alike.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
[ -e /bin/ls ] || /bin/busybox --install -s /bin
# On the root disk, the initramfs has moved proc, sys and dev here already.
grep -q '^proc /proc ' /proc/mounts 2>/dev/null || mount -t proc proc /proc
grep -q ' /sys sysfs ' /proc/mounts || mount -t sysfs sysfs /sys
grep -q ' /dev devtmpfs ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
arg() { sed -n "s/.*\(^\| \)$1=\([^ ]*\).*/\2/p" /proc/cmdline; }
has() { grep -qE "(^| )$1( |\$)" /proc/cmdline; }
if [ -e /etc/crosvm-initramfs ]; then
	for m in $(cat /etc/modules) $(arg crosvm.modules | tr , ' '); do
		case $m in /*) ;; *) m=$(find /lib/modules -name "$m.ko" | head -n1) ;; esac
		[ -n "$m" ] && insmod "$m" 2>/dev/null
	done
	root=$(arg root)
	if [ -n "$root" ]; then
		type=$(arg rootfstype)
		mode=ro
		has rw && mode=rw
		mkdir -p /newroot
		i=0
		until mount ${type:+-t $type} -o $mode "$root" /newroot 2>/dev/null; do
			i=$((i + 1))
			if [ $i -ge 100 ]; then
				echo "crosvm-guest: cannot mount root $root ($mode${type:+, $type})"
				poweroff -f
			fi
			sleep 0.1
		done
		umount /proc/sys/fs/binfmt_misc 2>/dev/null
		umount /dev/pts /tmp /run
		mount --move /dev /newroot/dev
		mount --move /sys /newroot/sys
		mount --move /proc /newroot/proc
		exec switch_root /newroot /sbin/init
	fi
else
	echo "crosvm-guest: init on the root disk ($(grep ' / ' /proc/mounts | head -n1))"
fi
hostname crosvm-guest
ip link set lo up 2>/dev/null
# console=hvcN as the last console (a virtio console) exists only once virtio_console is
# loaded, after the kernel looked for the initial console: take it as stdin/stdout now.
case $(grep -o 'console=[^ ]*' /proc/cmdline | tail -n 1) in
console=hvc*)
	con=$(grep -o 'console=[^ ]*' /proc/cmdline | tail -n 1 | cut -d= -f2)
	i=0
	while [ ! -c "/dev/$con" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	exec <"/dev/$con" >"/dev/$con" 2>&1
	;;
esac
# busybox's halt, poweroff and reboot signal PID 1 (USR1, USR2, TERM): act on them, also while
# a foreground shell runs (hence the shell in the background and wait).
trap 'sync; poweroff -f' USR1 USR2
trap 'sync; reboot -f' TERM
run=$(arg crosvm.run)
ready() { echo "$MARKER_READY uptime=$(cut -d' ' -f1 /proc/uptime)"; }
case ${run:-shell} in
shell)
	ready
	setsid cttyhack sh -l &
	wait $!
	;;
agent)
	stty -echo -onlcr 2>/dev/null
	export PS1= PS2=
	ready
	while IFS= read -r line; do
		eval "$line" </dev/null
		echo "@@crosvm-done $?"
	done
	;;
*)
	ready
	sh "/tests/$run.sh"
	echo "CROSVM_RUN_STATUS=$?"
	;;
esac
sync
poweroff -f
""".replace("$MARKER_READY", MARKER_READY)

PROFILE = r"""export PS1='\w # '
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
"""


class Guest:
    """Paths of one built guest: kernel (vmlinuz), vmlinux, initramfs, rootfs (ext4)."""

    def __init__(self, kernel, initramfs, rootfs):
        self.kernel_version = kernel.version
        self.vmlinuz = kernel.vmlinuz
        self.vmlinux = kernel.vmlinux
        self.initramfs = initramfs
        self.rootfs = rootfs

    def items(self):
        return [("vmlinuz", self.vmlinuz), ("vmlinux", self.vmlinux),
                ("initramfs", self.initramfs), ("rootfs", self.rootfs),
                ("version", self.kernel_version)]


def _scripts():
    out = []
    if os.path.isdir(TEST_SCRIPTS):
        for name in sorted(os.listdir(TEST_SCRIPTS)):
            if name.endswith(".sh"):
                with open(os.path.join(TEST_SCRIPTS, name), "rb") as f:
                    out.append((name, f.read()))
    return out


def _tools():
    """The guest's own small programs (test/linux/tools/*.c, e.g. crosvm-vsock: busybox has no
    vsock tool), built static once per source and cached: [(name, binary bytes)]."""
    out = []
    if not os.path.isdir(TOOLS):
        return out
    for name in sorted(os.listdir(TOOLS)):
        if not name.endswith(".c"):
            continue
        src = os.path.join(TOOLS, name)
        with open(src, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        binary = os.path.join(debkernel.cache_dir(), "tools-" + digest, name[:-2])
        if not os.path.exists(binary):
            cc = shutil.which("cc") or shutil.which("gcc")
            if cc is None:
                raise Error("a C compiler is missing (apt-get install gcc)")
            os.makedirs(os.path.dirname(binary), exist_ok=True)
            tmp = binary + ".%d.tmp" % os.getpid()
            res = subprocess.run([cc, "-static", "-O2", "-Wall", "-o", tmp, src],
                                 capture_output=True)
            if res.returncode != 0:
                raise Error(f"building {name} for the guest failed: "
                            + res.stderr.decode(errors="replace").strip())
            os.replace(tmp, binary)
        with open(binary, "rb") as f:
            out.append((name[:-2], f.read()))
    return out


def _add_tools(img, tools):
    for name, data in tools:
        img.file(f"usr/bin/{name}", data, 0o755)


def _fill_common(img, scripts):
    img.busybox()
    for d in ("dev", "proc", "sys", "tmp", "run", "root", "etc", "mnt", "sbin", "usr/bin",
              "usr/sbin", "var/log"):
        img.mkdir(d)
    img.chardev("dev/console", 5, 1)
    img.file("etc/profile", PROFILE)
    img.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    img.file("etc/group", "root:x:0:\n")
    img.file("sbin/init", GUEST_INIT, 0o755)
    # busybox acpid runs this on the ACPI power button (its PWRF action).
    img.file("etc/acpi/PWRF/00000080", "#!/bin/sh\nsync\npoweroff -f\n", 0o755)
    for name, data in scripts:
        img.file(f"tests/{name}", data, 0o755)


def _images(kernel, scripts):
    """The initramfs and the root file system tree, as Initramfs objects (not written yet)."""
    order = kernel.load_order(GUEST_MODULES)
    initramfs = debkernel.Initramfs()
    _fill_common(initramfs, scripts)
    initramfs.symlink("init", "sbin/init")
    initramfs.file("etc/crosvm-initramfs", "")
    initramfs.file("etc/modules", "\n".join("/lib/modules/" + m for m in order) + "\n")
    initramfs.modules(kernel, GUEST_MODULES)
    rootfs = debkernel.Initramfs()
    _fill_common(rootfs, scripts)
    rootfs.file("etc/crosvm-rootfs", "")
    return initramfs, rootfs


def build():
    """Builds what is missing and returns a Guest. Raises Error."""
    kernel = debkernel.ensure_kernel()
    if shutil.which("mke2fs") is None and not os.path.exists("/sbin/mke2fs"):
        raise Error("mke2fs is missing (apt-get install e2fsprogs)")
    initramfs_img, rootfs_img = _images(kernel, _scripts())
    tools = _tools()
    _add_tools(initramfs_img, tools)
    _add_tools(rootfs_img, tools)
    # The cache key is every byte that goes into the images (and the image size).
    h = hashlib.sha256()
    h.update(debkernel.newc_archive(initramfs_img.entries))
    h.update(debkernel.newc_archive(rootfs_img.entries))
    h.update(ROOTFS_SIZE.encode())
    base = os.path.join(debkernel.cache_dir(), "guest-" + h.hexdigest()[:16])
    initramfs = os.path.join(base, "initramfs.cpio.gz")
    rootfs = os.path.join(base, "rootfs.ext4")
    if os.path.exists(rootfs) and os.path.exists(initramfs):
        return Guest(kernel, initramfs, rootfs)
    os.makedirs(base, exist_ok=True)
    with debkernel.Lock(os.path.join(base, ".lock")):
        if not os.path.exists(initramfs):
            initramfs_img.write(initramfs)
        if not os.path.exists(rootfs):
            _make_rootfs(rootfs, rootfs_img)
    return Guest(kernel, initramfs, rootfs)


def stage_root_tree(dest):
    """Writes the root file system's tree (busybox, the same init, /etc, an empty /dev, /proc,
    /sys) into the directory dest: a root to boot from a shared directory (virtio-fs, with
    rootfstype=virtiofs root=TAG). Needs root (busybox --install runs chrooted). Raises Error."""
    kernel = debkernel.ensure_kernel()
    _, rootfs_img = _images(kernel, _scripts())
    _stage(dest, rootfs_img)


def _stage(tree, img):
    """IMG's tree written into the directory tree, with busybox's links installed."""
    for path, mode, data, rdev in img.entries:
        full = os.path.join(tree, path)
        kind = mode & 0o170000
        if kind == debkernel.S_IFDIR:
            os.makedirs(full, exist_ok=True)
        elif kind == debkernel.S_IFLNK:
            os.symlink(data, full)
        elif kind == debkernel.S_IFREG:
            with open(full, "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode())
        # Device nodes: the root gets devtmpfs; none are needed in the tree.
        if kind in (debkernel.S_IFDIR, debkernel.S_IFREG):
            os.chmod(full, mode & 0o7777)
    # busybox --install now: the root may be mounted read-only.
    subprocess.run(["chroot", tree, "/bin/busybox", "--install", "-s", "/bin"],
                   check=False, capture_output=True)


def _make_rootfs(out, img):
    """An ext4 image of IMG's tree (mke2fs -d from a staged copy)."""
    tree = tempfile.mkdtemp(prefix="rootfs.", dir=os.path.dirname(out))
    try:
        _stage(tree, img)
        tmp = out + ".tmp"
        res = subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "crosvm-root",
                              "-E", "root_owner=0:0", "-d", tree, tmp, ROOTFS_SIZE],
                             capture_output=True)
        if res.returncode != 0:
            raise Error("mke2fs failed: " + res.stderr.decode(errors="replace").strip())
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
