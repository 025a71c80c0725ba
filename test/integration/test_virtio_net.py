"""virtio-net's protocol edges under crosvm, driven by the virtio_net test guest.

Each test creates a network namespace (netns.py) with one TAP in it; crosvm runs inside it
with `--net tap-name=`, and a helper in the namespace reads and writes raw Ethernet frames on
that TAP through an AF_PACKET socket (so no frame leaves the namespace, and the kernel strips
or adds the virtio header the device's TAP fd carries). IPv6 is off in the namespace and the
TAP has no address, so the kernel itself sends nothing on it.

The guest (test/guests/virtio_net.c) sends a good frame, then eleven malformed transmit chains
each followed by a good frame; the host must see exactly the good frames, in order, intact.
Then the guest posts no receive buffers while the host writes frames, sends a frame meanwhile,
posts buffers (and two malformed receive chains) and must receive every frame the host wrote,
before and after, in order. Once more with a TAP queue of 4 and 16 frames written while no
buffers are posted: the device must leave them in the TAP (it holds at most the one it read),
so the kernel drops the rest and the guest receives 4 or 5 of them, then every later one. A
crash, a hang, a forwarded malformed frame, or a device that drops or hoards frames while it
has no buffers fails the test.
Sandboxed, and with --disable-sandbox and the guest's driver using direct chains without
VIRTIO_F_EVENT_IDX.
"""

import json
import os
import subprocess
import time
import unittest

import guestlib
import netns
import vmm
from vmm import guest

GUEST_MAC = "02:00:00:00:00:11"
BAD = ["oob_addr", "loop", "next_range", "writable", "zero_len", "short_hdr", "hdr_only",
       "bad_gso", "bad_csum", "mtu", "huge"]
RX_EARLY, RX_LATE = 4, 4
TAP_QUEUE = 4
TIMEOUT = 60

# Runs in the namespace: an AF_PACKET socket on the TAP (argv[1]). Commands on stdin, one JSON
# answer per line on stdout:
#   collect TAG SECONDS  the test frames that reached the TAP from the guest, up to and
#                        including the one tagged TAG: [[tag, length, src, intact], ...]
#   send N M             writes the frames rx.N .. rx.M to the guest (argv[2] = its MAC)
HELPER = r"""
import json, select, socket, sys, time
ETH_P_ALL, ETYPE, TAG_OFF, TAG_LEN = 0x0003, 0x88b5, 14, 32
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
s.bind((sys.argv[1], 0))
guest = bytes.fromhex(sys.argv[2].replace(":", ""))
host = bytes.fromhex("020000000001")

def pattern(i):
    return (i * 7 + 0x5a) & 0xff

def frame(n, total):
    length = 1514 if n == total else 60 + (97 * n) % 1400
    f = bytearray(guest + host + ETYPE.to_bytes(2, "big"))
    f += ("rx.%d" % n).encode().ljust(TAG_LEN, b"\0")
    f += bytes(pattern(i) for i in range(len(f), length))
    return bytes(f)

print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "collect":
        got, deadline = [], time.monotonic() + float(cmd[2])
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                got.append(["timeout", 0, "", False])
                break
            f, addr = s.recvfrom(1 << 17)
            if addr[2] == socket.PACKET_OUTGOING or f[12:14] != ETYPE.to_bytes(2, "big"):
                continue
            tag = f[TAG_OFF:TAG_OFF + TAG_LEN].rstrip(b"\0").decode(errors="replace")
            intact = all(f[i] == pattern(i) for i in range(TAG_OFF + TAG_LEN, len(f)))
            got.append([tag, len(f), f[6:12].hex(":"), intact])
            if tag == cmd[1]:
                break
        print(json.dumps(got), flush=True)
    elif cmd[0] == "send":
        total = int(cmd[3])
        for n in range(int(cmd[1]), int(cmd[2]) + 1):
            s.send(frame(n, total))
        print(json.dumps("sent"), flush=True)
"""


class Helper:
    def __init__(self, ns, tap):
        self.proc = ns.popen("python3", "-c", HELPER, tap, GUEST_MAC, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.close()
            raise RuntimeError("the TAP helper did not start: %r" % line)

    def ask(self, *words):
        self.proc.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


class VirtioNetTests:
    sandbox = True
    keys = ""

    def setUp(self):
        tag = "vnet%s" % ("s" if self.sandbox else "u")
        self.ns = netns.Namespace(tag)
        self.addCleanup(self.ns.close)
        for key in ("all", "default"):
            self.ns.run("sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % key)
        self.tap = "vnt%d" % (os.getpid() % 100000)
        self.ns.tap(self.tap)
        self.helper = Helper(self.ns, self.tap)
        self.addCleanup(self.helper.close)

    def assertFrames(self, got, tags):
        self.assertEqual([g[0] for g in got], tags, got)
        for tag, length, src, intact in got:
            self.assertEqual((length, src, intact), (64, GUEST_MAC, True), tag)

    def run_guest(self, early, late):
        """Boots the guest, checks what it sends, feeds it early + late frames: its results."""
        keys = "vnet.timeout_ms=%d vnet.rx_early=%d vnet.rx_late=%d %s" % (
            TIMEOUT * 1000, early, late, self.keys)
        cmd = self.ns.prefix() + vmm.command(
            guest("virtio_net"), "--net", "tap-name=%s,mac=%s" % (self.tap, GUEST_MAC),
            "-p", keys, sandbox=self.sandbox)
        s = guestlib.Session(cmd)
        self.addCleanup(vmm.kill_tree, s)
        try:
            s.expect("READY norx", timeout=TIMEOUT)
            # Everything the guest sent so far: only the good frames, in order.
            tx = self.helper.ask("collect", "good.huge", TIMEOUT)
            self.assertFrames(tx, ["good.start"] + ["good." + k for k in BAD])
            # No receive buffers posted: these wait in the TAP (and the device).
            self.assertEqual(self.helper.ask("send", 1, early, early + late), "sent")
            s.send("g")
            self.assertFrames(self.helper.ask("collect", "norx.alive", TIMEOUT),
                              ["norx.alive"])
            s.expect("READY rx", timeout=TIMEOUT)
            # The late frames only once the device has taken every early one the TAP kept:
            # written sooner, a short TAP queue the device is still draining drops them.
            self.wait_tap_drained(early)
            self.assertEqual(self.helper.ask("send", early + 1, early + late, early + late),
                             "sent")
        except (EOFError, TimeoutError, AssertionError) as e:
            rc, out = s.wait(timeout=5)
            raise AssertionError("%s\nstatus %r\n%s" % (e, rc, out[-5000:])) from None
        rc, out = s.wait(timeout=TIMEOUT)
        vmm.no_sanitizer_report(self, out)
        r = guestlib.parse_results(out)
        self.assertEqual(rc, 0, out[-5000:])
        self.assertEqual(r.failed, [], out[-5000:])
        self.assertTrue(r.done, out[-5000:])
        for name in ("net_found", "net_init", "net_tx", "net_tx_bad_chains", "net_norx_tx",
                     "net_rx_bad_chains", "net_rx"):
            self.assertIn(name, r.passed)
        self.assertEqual(r.info["net.mac"], GUEST_MAC)
        for k in BAD:
            self.assertEqual(r.info["net.bad.%s" % k], "used:0", k)
        self.assertEqual(r.info["net.rx_bad.zero_len"], "used:0")
        self.assertEqual(r.info["net.rx_bad.readable"], "used:0")
        self.assertEqual(r.info["net.rx_num_buffers"], "1")
        return r

    def tap_tx(self):
        out = self.ns.run("ip", "-s", "-j", "link", "show", "dev", self.tap).stdout
        return json.loads(out)[0]["stats64"]["tx"]

    def wait_tap_drained(self, written):
        """Until each of the first `written` frames to the guest was read by the device or
        dropped by the TAP (its tx counters: a read counts when the device reads it)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            tx = self.tap_tx()
            if tx["packets"] + tx["dropped"] >= written:
                return
            self.assertLess(time.monotonic(), deadline,
                            "the device did not read the TAP's queued frames: %r" % tx)
            time.sleep(0.05)

    def tap_dropped(self):
        return self.tap_tx()["dropped"]

    def test_protocol_edges(self):
        r = self.run_guest(RX_EARLY, RX_LATE)
        self.assertEqual(r.info["net.rx_early_got"], str(RX_EARLY))
        self.assertEqual(self.tap_dropped(), 0)


class SandboxedVirtioNet(VirtioNetTests, unittest.TestCase):
    sandbox = True

    def test_full_tap_queue_without_receive_buffers(self):
        """With no buffers posted the device leaves frames in the TAP: its queue fills up
        and the kernel drops the rest, the device holds at most the one it read."""
        self.ns.run("ip", "link", "set", "dev", self.tap, "txqueuelen", TAP_QUEUE)
        early = 4 * TAP_QUEUE
        r = self.run_guest(early, RX_LATE)
        got = int(r.info["net.rx_early_got"])
        self.assertGreaterEqual(got, TAP_QUEUE)
        self.assertLessEqual(got, TAP_QUEUE + 1)
        self.assertEqual(self.tap_dropped(), early - got)


class UnsandboxedVirtioNet(VirtioNetTests, unittest.TestCase):
    sandbox = False
    # Direct chains and plain notifications this time (the library's defaults are indirect
    # chains and EVENT_IDX).
    keys = "virtio.indirect=0 virtio.event_idx=0"


if __name__ == "__main__":
    unittest.main()
