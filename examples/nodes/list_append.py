#!/usr/bin/env python3
"""A correct txn-list-append node: multi-leader, eventually consistent.

Every append is stamped with a Lamport timestamp and the node id; a key's
list is its appends sorted by (timestamp, node), so every node that has the
same appends shows them in the same order, and an append made after reading
another is ordered after it. Nodes exchange their whole append log every
200 ms (anti-entropy), so they converge after any partition.
"""
from maelstrom import Node


class ListAppend(Node):
    def __init__(self):
        super().__init__()
        self.clock = 0
        self.appends = {}  # repr(key) -> (key, {(ts, node, value)})
        self.every(0.2, self.gossip)

    def merge(self, entries):
        for k, ts, node, v in entries:
            self.clock = max(self.clock, ts)
            self.appends.setdefault(repr(k), (k, set()))[1].add((ts, node, v))

    def on_txn(self, msg):
        out = []
        for f, k, v in msg["body"]["txn"]:
            if f == "r":
                entries = sorted(self.appends.get(repr(k), (k, set()))[1])
                out.append([f, k, [e[2] for e in entries] or None])
            else:
                self.clock += 1
                self.merge([(k, self.clock, self.id, v)])
                out.append([f, k, v])
        self.reply(msg, {"type": "txn_ok", "txn": out})

    def on_log(self, msg):
        self.merge(msg["body"]["entries"])

    def gossip(self):
        entries = []
        for k, es in self.appends.values():
            entries.extend([k, ts, node, v] for ts, node, v in es)
        for p in self.peers():
            self.send(p, {"type": "log", "entries": entries})


if __name__ == "__main__":
    ListAppend().run()
