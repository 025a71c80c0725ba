#!/usr/bin/env python3
"""Shared directories (--shared-dir, virtio-fs) with Debian's kernel, in three boots:

  - sandboxed, two directories: one with crosvm's defaults, where the guest creates, writes,
    renames, links, lists and removes and the host sees each change, and tries to get out
    (.., absolute and relative symlinks, a symlink swapped in while it looks, a directory
    deleted under it); one with cache=never, timeout=0 and uid/gid maps, where every change
    the host makes shows in the guest at once and owners are mapped both ways. The device's
    process is checked from the host: its maps, capabilities, seccomp and no_new_privs;
  - the seed's command line, exactly: crosvm run --shared-dir "/:mtdfake:type=fs:cache=always"
    -p "rootfstype=virtiofs root=mtdfake", where "/" is a host directory holding the busybox
    root (crosvm runs in a mount namespace whose root it is); the guest boots from it to a
    shell that answers on the console;
  - unsandboxed, cache=always and writeback: the same server in the VMM's own process.

Refused command lines (type=p9, crosvm's default type) need no boot.
"""

import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import unittest

import linuxvm
import vmm
from test_linux import LinuxTestCase

SECRET = "OUTSIDE-THE-SHARE-7f3a9c"
MNT = "/mnt/a"
NC = "/mnt/nc"
# The device's user namespace in the uid/gid test: guest 0 is host 1000, guest 1000-1009 are
# host 2000-2009; anything else is unmapped (65534 in the guest).
ID_MAP = "0 1000 1,1000 2000 10"


def ls_names(out):
    return sorted(out.split())


class Flipper(threading.Thread):
    """Swaps two names in a directory (one a directory, one a symlink out) until stopped."""

    def __init__(self, a, b):
        super().__init__(daemon=True)
        self.a, self.b = a, b
        self.stop = threading.Event()
        self.flips = 0

    def run(self):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        a, b = self.a.encode(), self.b.encode()
        while not self.stop.is_set():
            # renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
            if libc.syscall(316, -100, a, -100, b, 2) == 0:
                self.flips += 1


class SharedDirs(LinuxTestCase):
    def setUp(self):
        super().setUp()
        self.share = self.td.join("share")
        self.outside = self.td.join("outside")
        self.nc = self.td.join("nocache")
        for d in (self.share, self.outside, self.nc):
            os.mkdir(d)
        self.write(os.path.join(self.outside, "secret"), SECRET)
        # The mapped share belongs to the guest's root as the maps see it (host 1000).
        os.chown(self.nc, 1000, 1000)

    @staticmethod
    def write(path, text):
        with open(path, "w") as f:
            f.write(text)

    @staticmethod
    def read(path):
        with open(path) as f:
            return f.read()

    def device_process(self, vm, name):
        """The pid of crosvm's child process named name (prctl PR_SET_NAME)."""
        for pid in vmm.children(vm.pid):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == name:
                        return pid
            except OSError:
                pass
        self.fail(f"no device process {name} under {vm.pid}")

    def assertJailed(self, vm, name, uid_map, root):
        pid = self.device_process(vm, name)
        # Its root is the shared directory itself (bind-mounted: the same inode).
        got, want = os.stat(f"/proc/{pid}/root"), os.stat(root)
        self.assertEqual((got.st_dev, got.st_ino), (want.st_dev, want.st_ino), name)
        with open(f"/proc/{pid}/status") as f:
            status = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        self.assertEqual(status["NoNewPrivs"].strip(), "1")
        self.assertEqual(status["Seccomp"].strip(), "2")
        # Only the file capabilities, and only within its user namespace (maps below).
        caps = int(status["CapEff"].strip(), 16)
        # CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID SETGID SETUID
        self.assertEqual(caps, 0xdf)
        with open(f"/proc/{pid}/uid_map") as f:
            self.assertEqual(f.read().split(), uid_map.split())
        self.assertNotEqual(os.readlink(f"/proc/{pid}/ns/user"),
                            os.readlink("/proc/self/ns/user"))

    def guest_ops(self, vm):
        """Create, write, rename, link, list, remove: the host sees each change."""
        vm.check(f"mkdir -p {MNT} && mount -t virtiofs shared {MNT}")
        self.assertIn(f"shared {MNT} virtiofs", vm.check("cat /proc/mounts"))
        vm.check(f"echo from-the-guest > {MNT}/made")
        self.assertEqual(self.read(f"{self.share}/made"), "from-the-guest\n")
        vm.check(f"mkdir {MNT}/dir && chmod 0751 {MNT}/dir")
        st = os.stat(f"{self.share}/dir")
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o751)
        vm.check(f"mv {MNT}/made {MNT}/dir/moved")
        self.assertFalse(os.path.exists(f"{self.share}/made"))
        self.assertEqual(self.read(f"{self.share}/dir/moved"), "from-the-guest\n")
        vm.check(f"ln {MNT}/dir/moved {MNT}/hard && ln -s dir/moved {MNT}/soft")
        self.assertEqual(os.stat(f"{self.share}/hard").st_ino,
                         os.stat(f"{self.share}/dir/moved").st_ino)
        self.assertEqual(os.readlink(f"{self.share}/soft"), "dir/moved")
        self.assertEqual(vm.check(f"cat {MNT}/soft"), "from-the-guest\n")
        self.assertEqual(vm.check(f"stat -c %h {MNT}/hard").strip(), "2")
        self.assertEqual(ls_names(vm.check(f"ls -a {MNT}")),
                         [".", "..", "dir", "hard", "soft"])
        # 8 MiB through the page cache and back, checked byte for byte on the host.
        vm.check(f"dd if=/dev/urandom of={MNT}/big bs=1M count=8 2>/dev/null && sync")
        guest_sum = vm.check(f"md5sum {MNT}/big").split()[0]
        host_sum = subprocess.run(["md5sum", f"{self.share}/big"], capture_output=True,
                                  text=True, check=True).stdout.split()[0]
        self.assertEqual(guest_sum, host_sum)
        vm.check(f"truncate -s 1000 {MNT}/big 2>/dev/null || dd if=/dev/null of={MNT}/big "
                 f"bs=1 seek=1000 2>/dev/null")
        self.assertEqual(os.stat(f"{self.share}/big").st_size, 1000)
        vm.check(f"rm {MNT}/hard {MNT}/soft {MNT}/big && rm -r {MNT}/dir")
        self.assertEqual(sorted(os.listdir(self.share)), [])
        self.assertEqual(ls_names(vm.check(f"ls -a {MNT}")), [".", ".."])
        # What the host made, the guest sees (lookups of names it has not cached).
        self.write(f"{self.share}/from-host", "host text\n")
        self.assertEqual(vm.check(f"cat {MNT}/from-host"), "host text\n")

    def escapes(self, vm):
        """From the guest: the directory next to the share stays out of reach."""
        os.symlink(f"{self.outside}/secret", f"{self.share}/abs")
        os.symlink(self.outside, f"{self.share}/absdir")
        os.symlink("../outside/secret", f"{self.share}/rel")
        tries = [f"cat {MNT}/../outside/secret", f"cat {MNT}/abs", f"cat {MNT}/absdir/secret",
                 f"cat {MNT}/rel", f"ls {MNT}/absdir/", f"cd {MNT}/.. && cat outside/secret",
                 f"cp {MNT}/abs /tmp/x && cat /tmp/x", f"echo pwned > {MNT}/abs",
                 f"echo pwned > {MNT}/absdir/new", f"ln {MNT}/abs {MNT}/hl && cat {MNT}/hl"]
        for t in tries:
            # In a subshell: a cd must not keep the agent's shell inside the mount.
            _, out = vm.sh(f"({t})")
            self.assertNotIn(SECRET, out, t)
        # The guest resolves symlinks itself, in its own namespace.
        self.assertEqual(vm.check(f"readlink {MNT}/abs").strip(), f"{self.outside}/secret")
        # A symlink swapped in for a directory while the guest looks through it.
        os.mkdir(f"{self.share}/flip")
        self.write(f"{self.share}/flip/secret", "inside\n")
        os.symlink(self.outside, f"{self.share}/other")
        flipper = Flipper(f"{self.share}/flip", f"{self.share}/other")
        flipper.start()
        try:
            out = vm.check(f"i=0; while [ $i -lt 300 ]; do cat {MNT}/flip/secret 2>/dev/null; "
                           f"ls {MNT}/flip/ 2>/dev/null; i=$((i+1)); done; true", timeout=300)
        finally:
            flipper.stop.set()
            flipper.join()
        self.assertNotIn(SECRET, out)
        self.assertIn("inside", out)
        self.assertGreater(flipper.flips, 0)
        # A directory deleted under the guest: nothing can be made in it, anywhere.
        vm.check(f"mkdir {MNT}/gone")
        _, out = vm.sh(f"(cd {MNT}/gone && rmdir {MNT}/gone && (touch x; mkdir y; "
                            f"ln -s z w; ls -a .; cat ../outside/secret))")
        self.assertNotIn(SECRET, out)
        self.assertFalse(os.path.exists(f"{self.share}/gone"))
        self.assertEqual(sorted(os.listdir(self.outside)), ["secret"])
        self.assertEqual(self.read(f"{self.outside}/secret"), SECRET)

    def host_changes(self, vm):
        """cache=never, timeout=0: what the host does shows in the guest at once."""
        vm.check(f"mkdir -p {NC} && mount -t virtiofs nocache {NC}")
        self.write(f"{self.nc}/f", "one\n")
        self.assertEqual(vm.check(f"cat {NC}/f"), "one\n")
        self.write(f"{self.nc}/f", "two, longer\n")
        self.assertEqual(vm.check(f"cat {NC}/f"), "two, longer\n")
        with open(f"{self.nc}/f", "a") as f:
            f.write("three\n")
        self.assertEqual(vm.check(f"cat {NC}/f"), "two, longer\nthree\n")
        os.rename(f"{self.nc}/f", f"{self.nc}/g")
        self.assertNotEqual(vm.sh(f"cat {NC}/f")[0], 0)
        self.assertEqual(vm.check(f"cat {NC}/g"), "two, longer\nthree\n")
        os.mkdir(f"{self.nc}/d")
        os.link(f"{self.nc}/g", f"{self.nc}/d/h")
        self.assertEqual(ls_names(vm.check(f"ls {NC} {NC}/d | grep -v :")), ["d", "g", "h"])
        self.assertEqual(vm.check(f"stat -c %h {NC}/g").strip(), "2")
        os.unlink(f"{self.nc}/d/h")
        os.rmdir(f"{self.nc}/d")
        os.unlink(f"{self.nc}/g")
        self.assertEqual(vm.check(f"ls -A {NC}").strip(), "")

    def id_maps(self, vm):
        """uidmap/gidmap: guest 0 is host 1000, guest 1000+i host 2000+i, others unmapped."""
        vm.check(f"echo mine > {NC}/byroot && chmod 0640 {NC}/byroot")
        st = os.stat(f"{self.nc}/byroot")
        self.assertEqual((st.st_uid, st.st_gid), (1000, 1000))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        vm.check(f"chown 1005:1003 {NC}/byroot")
        st = os.stat(f"{self.nc}/byroot")
        self.assertEqual((st.st_uid, st.st_gid), (2005, 2003))
        self.assertEqual(vm.check(f"stat -c '%u %g %a' {NC}/byroot").strip(), "1005 1003 640")
        for name, uid, gid, mode in (("host2003", 2003, 2004, 0o604), ("hostroot", 0, 0, 0o644)):
            self.write(f"{self.nc}/{name}", name)
            os.chown(f"{self.nc}/{name}", uid, gid)
            os.chmod(f"{self.nc}/{name}", mode)
        self.assertEqual(vm.check(f"stat -c '%u %g %a' {NC}/host2003").strip(), "1003 1004 604")
        # The host's root is no one the maps know.
        self.assertEqual(vm.check(f"stat -c '%u %g' {NC}/hostroot").strip(), "65534 65534")
        # chown to a user the maps lack is refused (EINVAL from the kernel's maps).
        self.assertNotEqual(vm.sh(f"chown 4242 {NC}/host2003")[0], 0)
        self.assertEqual(os.stat(f"{self.nc}/host2003").st_uid, 2003)

    def test_sandboxed_two_shares(self):
        vm = self.boot("--shared-dir", f"{self.share}:shared:type=fs",
                       "--shared-dir",
                       f"{self.nc}:nocache:type=fs:cache=never:timeout=0:uidmap={ID_MAP}:"
                       f"gidmap={ID_MAP}")
        self.assertJailed(vm, "virtio-fs0", f"0 {os.geteuid()} 1", self.share)
        self.assertJailed(vm, "virtio-fs1", "0 1000 1 1000 2000 10", self.nc)
        self.guest_ops(vm)
        self.escapes(vm)
        self.host_changes(vm)
        self.id_maps(vm)
        vm.check(f"umount {MNT} && umount {NC}")
        # Mounted again: a new FUSE session on the same device.
        vm.check(f"mount -t virtiofs shared {MNT} && cat {MNT}/from-host")
        # Nothing the same guest does not also log under QEMU -M q35 (in the test host the
        # emulated CPU makes the kernel warn at boot, for every VMM).
        self.assertCleanDmesg(vm)
        vm.send("poweroff -f\n")
        self.assertExit(vm, vmm.STATUS_STOP, 180)

    def test_unsandboxed_cache_always_writeback(self):
        vm = self.boot("--shared-dir",
                       f"{self.share}:shared:type=fs:cache=always:writeback=true:timeout=60",
                       kernel="vmlinux", sandbox=False)
        vm.check(f"mkdir -p {MNT} && mount -t virtiofs shared {MNT}")
        vm.check(f"echo cached > {MNT}/w && mkdir {MNT}/d && mv {MNT}/w {MNT}/d/w && sync")
        self.assertEqual(self.read(f"{self.share}/d/w"), "cached\n")
        vm.check(f"dd if=/dev/zero of={MNT}/zeros bs=64k count=64 2>/dev/null && sync")
        self.assertEqual(os.stat(f"{self.share}/zeros").st_size, 64 * 65536)
        self.assertEqual(vm.check(f"cat {MNT}/d/w"), "cached\n")
        vm.check(f"rm -r {MNT}/d {MNT}/zeros")
        self.assertEqual(os.listdir(self.share), [])
        vm.send("poweroff -f\n")
        self.assertExit(vm, vmm.STATUS_STOP, 180)


# Runs argv with root as "/": a mount namespace of its own, root bound onto itself with the
# host's /dev and a fresh /proc below, pivoted into (the seed's "/" is then that directory).
ENTER_ROOT = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def ok(r, what):
    if r != 0:
        e = ctypes.get_errno()
        sys.exit(f"enter root: {what}: {os.strerror(e)}")
root = sys.argv[1].encode()
ok(libc.unshare(0x20000), "unshare")
ok(libc.mount(None, b"/", None, 16384 | (1 << 18), None), "private")
ok(libc.mount(root, root, None, 4096 | 16384, None), "bind root")
ok(libc.mount(b"/dev", root + b"/dev", None, 4096 | 16384, None), "bind /dev")
ok(libc.mount(b"proc", root + b"/proc", b"proc", 0, None), "proc")
os.chdir(root)
ok(libc.syscall(155, b".", b"."), "pivot_root")
ok(libc.umount2(b".", 2), "umount old root")
os.chdir("/")
os.execv(sys.argv[2], sys.argv[2:])
"""


class SeedRoot(LinuxTestCase):
    """The seed's command line, with "/" a host directory holding the busybox root."""

    def stage(self):
        root = self.td.join("root")
        os.mkdir(root)
        linuxvm.linuxguest.stage_root_tree(root)
        g = linuxvm.guest()
        os.makedirs(f"{root}/boot")
        shutil.copy(g.vmlinuz, f"{root}/boot/vmlinuz")
        shutil.copy(g.initramfs, f"{root}/boot/initramfs")
        os.makedirs(f"{root}/var/empty", exist_ok=True)
        # crosvm and its libraries at their own paths, so that it runs there as it does here.
        crosvm = os.path.realpath(vmm.CROSVM)
        os.makedirs(f"{root}/crosvm", exist_ok=True)
        shutil.copy(crosvm, f"{root}/crosvm/crosvm")
        ldd = subprocess.run(["ldd", crosvm], capture_output=True, text=True, check=True).stdout
        for lib in re.findall(r"(/\S+) \(0x", ldd):
            dest = root + lib
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if not os.path.exists(dest):
                shutil.copy(lib, dest)
        return root

    def test_seed_command_line_boots_from_a_shared_root(self):
        root = self.stage()
        seed = ["--shared-dir", "/:mtdfake:type=fs:cache=always",
                "-p", "rootfstype=virtiofs root=mtdfake"]
        cmd = [sys.executable, "-c", ENTER_ROOT, root, "/crosvm/crosvm", "--no-syslog",
               "--extended-status", "run", *seed, "-i", "/boot/initramfs", "/boot/vmlinuz"]
        vm = linuxvm.LinuxVM(vmm_cmd=cmd)
        self.addCleanup(vm.close)
        # The root's own init says where it runs, then a shell on the console.
        vm.session.expect("init on the root disk (mtdfake / virtiofs", timeout=linuxvm.BOOT_TIMEOUT)
        vm.session.expect(linuxvm.linuxguest.MARKER_READY, timeout=60)
        vm.send("echo the-answer-is-$((6*7))\n")
        vm.session.expect("the-answer-is-42", timeout=60)
        # The guest's / is the host directory: its files, read-only as root= asked (no rw).
        vm.send("test -e /etc/crosvm-rootfs && test -x /crosvm/crosvm && echo seen-$((1+1))\n")
        vm.session.expect("seen-2", timeout=60)
        vm.send("touch /new-file || echo refused-$((2+2))\n")
        vm.session.expect("refused-4", timeout=60)
        self.assertFalse(os.path.exists(f"{root}/new-file"))
        vm.send("poweroff\n")
        self.assertExit(vm, vmm.STATUS_STOP, 180)


class Refused(unittest.TestCase):
    """virtio-9p is not built: refused by name, never turned into virtio-fs (status 35)."""

    def test_p9_and_no_type(self):
        for arg in ("/tmp:tag:type=p9", "/tmp:tag"):
            res = subprocess.run(vmm.command("/nonexistent-kernel", "--shared-dir", arg),
                                 capture_output=True, text=True)
            self.assertEqual(res.returncode, vmm.STATUS_INVALID, res.stderr)
            self.assertIn("virtio-9p", res.stderr)
            self.assertIn("not supported", res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
