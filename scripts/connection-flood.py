#!/usr/bin/env python3
"""A flood of idle TCP connections against a running gateway, loopback only.

    connection-flood.py --addr 127.0.0.1:50051 --pid PID [--count 12000] [--per-address 3000]

Opens COUNT sockets that never send a byte, from 127.0.0.2 on (PER_ADDRESS
from each), holds them, and prints: how long opening took, the gateway's
CPU over 5 s while they are held (utime + stime of /proc/PID/stat, 100% =
one core), how many the gateway had closed then and 12 s later (the caps
close the ones beyond max_connections_per_peer at once, the first-byte
time-out the others), and its VmRSS/VmHWM. Run a lookup against the gateway
meanwhile to see it answer. Needs an open-file limit above COUNT.
"""

import argparse
import os
import socket
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--count", type=int, default=12000)
    p.add_argument("--per-address", type=int, default=3000)
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    if not host.startswith("127."):
        raise SystemExit("loopback only")
    a.count = min(a.count, 50000)

    def cpu():
        f = open(f"/proc/{a.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def closed(socks):
        n = 0
        for s in socks:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    n += 1
            except BlockingIOError:
                pass
            except OSError:
                n += 1
        return n

    socks = []
    t = time.time()
    for i in range(a.count):
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i // a.per_address}", 0))
        try:
            s.connect((host, int(port)))
        except OSError as e:
            print(f"connect {i} failed: {e}")
            break
        socks.append(s)
    print(f"{len(socks)} sockets opened in {time.time() - t:.1f} s")
    c0, t0 = cpu(), time.time()
    time.sleep(5)
    print(f"gateway CPU over 5 s while they are held: {100 * (cpu() - c0) / (time.time() - t0):.0f}%")
    print(f"{closed(socks)} of {len(socks)} closed by the gateway")
    time.sleep(12)
    print(f"{closed(socks)} of {len(socks)} closed 12 s later")
    with open(f"/proc/{a.pid}/status") as f:
        print(" ".join(l.split(":")[0] + " " + l.split()[1] + " kB" for l in f if l.startswith(("VmRSS", "VmHWM"))))


if __name__ == "__main__":
    main()
