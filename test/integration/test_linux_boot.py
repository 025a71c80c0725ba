#!/usr/bin/env python3
"""Boots Debian's cloud kernel with a busybox initramfs and waits for its marker.

Opt-in: set CROSVM_LINUX_BOOT=1. On the PVM machines this project is built on, guest kernel
code is emulated instruction by instruction and a stock Linux stops at an unemulated
instruction (see PLATFORM.md), so by default this test only says why it does not run.

Environment: CROSVM (the binary), SRC_DIR (the source tree, for scripts/), optionally
CROSVM_LINUX_DIR (kernel cache), CROSVM_LINUX_BOOT_TIMEOUT (seconds, default 600),
CROSVM_LINUX_BOOT_KERNEL=vmlinuz|vmlinux (default vmlinuz, the bzImage).
"""

import os
import selectors
import subprocess
import sys
import tempfile
import time

MARKER = b"CROSVM_LINUX_BOOT_OK"


def skip(why):
    # 77: ctest reports the test as skipped (SKIP_RETURN_CODE), not as passed.
    print(f"SKIP: {why}")
    sys.exit(77)


def fail(why, log=b""):
    if log:
        sys.stdout.write(log.decode(errors="replace")[-8000:])
        sys.stdout.write("\n")
    print(f"FAIL: {why}")
    sys.exit(1)


def script_output(src, name, *args):
    path = os.path.join(src, "scripts", name)
    res = subprocess.run([path, *args], capture_output=True, timeout=600)
    if res.returncode != 0:
        fail(f"{name} failed: {res.stderr.decode(errors='replace').strip()}")
    return res.stdout.decode().split()


def boot(crosvm, kernel, initramfs, timeout):
    cmd = [crosvm, "run", "--disable-sandbox", "-p", "rdinit=/init", "-i", initramfs, kernel]
    print("running:", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    log = b""
    deadline = time.monotonic() + timeout
    try:
        while MARKER not in log:
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"no '{MARKER.decode()}' within {timeout} s", log)
            if not sel.select(timeout=min(left, 1.0)):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                proc.wait(timeout=10)
                fail(f"crosvm exited with status {proc.returncode} before the marker", log)
            log += chunk
        # The guest powers off right after the marker; crosvm must then exit cleanly.
        try:
            status = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            fail("the guest printed the marker but crosvm did not exit after poweroff", log)
        if status != 0:
            fail(f"crosvm exited with status {status} after poweroff", log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    line = log[log.index(MARKER):].split(b"\n", 1)[0].decode(errors="replace").strip()
    print(f"PASS: {line}")


def main():
    if os.environ.get("CROSVM_LINUX_BOOT") != "1":
        skip("Linux boot is opt-in (CROSVM_LINUX_BOOT=1): a stock kernel cannot boot on "
             "PVM hosts, whose KVM emulates guest kernel code and lacks instructions it uses")
    crosvm = os.environ.get("CROSVM")
    src = os.environ.get("SRC_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    if not crosvm or not os.access(crosvm, os.X_OK):
        fail("set CROSVM to the crosvm binary")
    timeout = int(os.environ.get("CROSVM_LINUX_BOOT_TIMEOUT", "600"))
    vmlinuz, vmlinux = script_output(src, "fetch-linux")[:2]
    kernel = vmlinux if os.environ.get("CROSVM_LINUX_BOOT_KERNEL") == "vmlinux" else vmlinuz
    with tempfile.TemporaryDirectory() as tmp:
        initramfs = script_output(src, "make-linux-initramfs",
                                  os.path.join(tmp, "initramfs.cpio.gz"))[0]
        boot(crosvm, kernel, initramfs, timeout)


if __name__ == "__main__":
    main()
