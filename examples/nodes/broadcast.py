#!/usr/bin/env python3
"""A correct broadcast / g-set node: a grow-only set replicated by gossip.

Handles Maelstrom's `broadcast` workload (`topology`, `broadcast`, `read`
answering `messages`) and `g-set` (`add`, `read` answering `value`). New
elements are pushed to every peer at once, and every 200 ms each node sends
its whole set to every peer (anti-entropy), so elements lost to message
loss or a partition arrive after the heal.
"""
from maelstrom import Node


class Broadcast(Node):
    def __init__(self):
        super().__init__()
        self.elements = set()
        self.every(0.2, self.anti_entropy)

    def on_topology(self, msg):
        self.reply(msg, {"type": "topology_ok"})

    def learn(self, values):
        new = set(values) - self.elements
        if new:
            self.elements |= new
            for p in self.peers():
                self.send(p, {"type": "gossip", "elements": sorted(new)})

    def on_broadcast(self, msg):
        self.learn([msg["body"]["message"]])
        self.reply(msg, {"type": "broadcast_ok"})

    def on_add(self, msg):
        self.learn([msg["body"]["element"]])
        self.reply(msg, {"type": "add_ok"})

    def on_gossip(self, msg):
        self.elements |= set(msg["body"]["elements"])

    def on_read(self, msg):
        v = sorted(self.elements)
        self.reply(msg, {"type": "read_ok", "messages": v, "value": v})

    def anti_entropy(self):
        for p in self.peers():
            self.send(p, {"type": "gossip", "elements": sorted(self.elements)})


if __name__ == "__main__":
    Broadcast().run()
