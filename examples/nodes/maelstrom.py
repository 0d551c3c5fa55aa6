"""A tiny Maelstrom-protocol node runtime (Python 3 standard library only).

A node reads one JSON message per line on stdin and writes messages on
stdout; anything for humans goes to stderr. Subclass Node, add `on_<type>`
methods, and call `run()`. `every(seconds, fn)` runs `fn` periodically.
"""
import json
import os
import select
import sys
import time


class Node:
    def __init__(self):
        self.id = None
        self.ids = []
        self.next_msg_id = 0
        self.timers = []  # [period, next_due, fn]
        self._buf = b""

    # -- sending -----------------------------------------------------------
    def send(self, dest, body):
        self.next_msg_id += 1
        body = dict(body, msg_id=self.next_msg_id)
        sys.stdout.write(json.dumps({"src": self.id, "dest": dest, "body": body}) + "\n")
        sys.stdout.flush()

    def reply(self, msg, body):
        body = dict(body, in_reply_to=msg["body"].get("msg_id"))
        self.send(msg["src"], body)

    def error(self, msg, code, text):
        self.reply(msg, {"type": "error", "code": code, "text": text})

    def log(self, *parts):
        print(*parts, file=sys.stderr, flush=True)

    def peers(self):
        return [n for n in self.ids if n != self.id]

    def every(self, seconds, fn):
        self.timers.append([seconds, time.monotonic() + seconds, fn])

    # -- handlers ----------------------------------------------------------
    def on_init(self, msg):
        self.id = msg["body"]["node_id"]
        self.ids = msg["body"]["node_ids"]
        self.log("init", self.id, self.ids)
        self.reply(msg, {"type": "init_ok"})

    def dispatch(self, msg):
        kind = msg["body"].get("type", "")
        handler = getattr(self, "on_" + kind, None)
        if handler is None:
            if "in_reply_to" not in msg["body"]:
                self.error(msg, 10, "unsupported message type " + kind)
            return
        handler(msg)

    # -- main loop ---------------------------------------------------------
    def run(self):
        fd = sys.stdin.fileno()
        while True:
            now = time.monotonic()
            wait = min([t[1] for t in self.timers] + [now + 1.0]) - now
            ready, _, _ = select.select([fd], [], [], max(0.0, wait))
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return
                self._buf += chunk
                *lines, self._buf = self._buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        self.dispatch(json.loads(line))
            now = time.monotonic()
            for t in self.timers:
                if self.id is not None and now >= t[1]:
                    t[1] = now + t[0]
                    t[2]()
