#!/usr/bin/env python3
"""A deliberately buggy counter node: it forwards every increment to its
peers as an operation and applies whatever arrives, with no deduplication.
A duplicated message is counted twice (Ladon reports `duplicate`: a final
value above the greatest possible), a lost one never (`lost-write`).
"""
from maelstrom import Node


class OpCounter(Node):
    def __init__(self):
        super().__init__()
        self.value = 0

    def on_add(self, msg):
        d = msg["body"]["delta"]
        self.value += d
        for p in self.peers():
            self.send(p, {"type": "incr", "delta": d})  # BUG: no id, applied on every arrival
        self.reply(msg, {"type": "add_ok"})

    def on_incr(self, msg):
        self.value += msg["body"]["delta"]

    def on_read(self, msg):
        self.reply(msg, {"type": "read_ok", "value": self.value})


if __name__ == "__main__":
    OpCounter().run()
