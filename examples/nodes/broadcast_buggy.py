#!/usr/bin/env python3
"""A deliberately buggy broadcast / g-set node: it pushes each new element
to its peers once and never retries, so an element whose gossip is lost
(message loss, a partition in drop mode) never reaches that peer. Ladon
reports the acknowledged elements missing from some node's final state as
`lost-write`, and the nodes' disagreement as `divergence`.
"""
from maelstrom import Node


class FireAndForget(Node):
    def __init__(self):
        super().__init__()
        self.elements = set()

    def on_topology(self, msg):
        self.reply(msg, {"type": "topology_ok"})

    def learn(self, value):
        if value not in self.elements:
            self.elements.add(value)
            for p in self.peers():
                self.send(p, {"type": "gossip", "element": value})

    def on_broadcast(self, msg):
        self.learn(msg["body"]["message"])
        self.reply(msg, {"type": "broadcast_ok"})

    def on_add(self, msg):
        self.learn(msg["body"]["element"])
        self.reply(msg, {"type": "add_ok"})

    def on_gossip(self, msg):
        self.elements.add(msg["body"]["element"])  # BUG: no anti-entropy, no retry

    def on_read(self, msg):
        v = sorted(self.elements)
        self.reply(msg, {"type": "read_ok", "messages": v, "value": v})


if __name__ == "__main__":
    FireAndForget().run()
