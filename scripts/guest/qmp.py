#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A minimal QMP client for the QEMU checks of the test VM (qemu-e2e.sh).

  qmp.py <socket> <command> [<arguments as JSON>]
      runs one command, prints its "return" as JSON; exit 1 on an error reply
  qmp.py <socket> --wait-migration <seconds>
      polls query-migrate until the migration completes, fails or is
      cancelled; prints the last answer as JSON; exit 0 only if completed

Waits up to 30 s for the socket to accept (QEMU creates it at start).
"""
import json
import socket
import sys
import time


def connect(path):
    deadline = time.monotonic() + 30
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Qmp:
    def __init__(self, path):
        self.sock = connect(path)
        self.file = self.sock.makefile("rw")
        self.recv()  # greeting
        self.cmd("qmp_capabilities")

    def recv(self):
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, args=None):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.file.write(json.dumps(req) + "\n")
        self.file.flush()
        reply = self.recv()
        if "error" in reply:
            raise RuntimeError(f"{name}: {reply['error']}")
        return reply.get("return")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    q = Qmp(sys.argv[1])
    if sys.argv[2] == "--wait-migration":
        deadline = time.monotonic() + float(sys.argv[3])
        while True:
            info = q.cmd("query-migrate")
            status = info.get("status")
            if status in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
                print(json.dumps(info))
                return 0 if status == "completed" else 1
            time.sleep(0.2)
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    try:
        print(json.dumps(q.cmd(sys.argv[2], args)))
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
