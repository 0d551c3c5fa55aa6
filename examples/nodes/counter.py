#!/usr/bin/env python3
"""A correct g-counter / pn-counter node: a state-based PN-counter CRDT.

Each node counts its own increments and decrements separately; every 200 ms
it sends both maps to every peer, and a receiver keeps the per-node maximum.
Duplicated, reordered or lost gossip cannot over- or under-count.
"""
from maelstrom import Node


class PNCounter(Node):
    def __init__(self):
        super().__init__()
        self.inc = {}
        self.dec = {}
        self.every(0.2, self.gossip)

    def on_add(self, msg):
        d = msg["body"]["delta"]
        side = self.inc if d >= 0 else self.dec
        side[self.id] = side.get(self.id, 0) + abs(d)
        self.reply(msg, {"type": "add_ok"})

    def on_read(self, msg):
        self.reply(msg, {"type": "read_ok", "value": sum(self.inc.values()) - sum(self.dec.values())})

    def on_state(self, msg):
        for mine, theirs in ((self.inc, msg["body"]["inc"]), (self.dec, msg["body"]["dec"])):
            for n, v in theirs.items():
                mine[n] = max(mine.get(n, 0), v)

    def gossip(self):
        for p in self.peers():
            self.send(p, {"type": "state", "inc": self.inc, "dec": self.dec})


if __name__ == "__main__":
    PNCounter().run()
