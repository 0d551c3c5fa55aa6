#!/usr/bin/env python3
"""A correct txn-rw-register node: last-writer-wins registers.

Every write is stamped with a Lamport timestamp and the node id; a key holds
the write with the highest stamp, so nodes that have seen the same writes
agree. Nodes exchange their registers every `--gossip-every` seconds
(default 0.2).

It also does two things Maelstrom allows before answering `init`: it
records its start in the `lww-kv` service and waits for the reply, and it
greets every peer (a peer that is not initialised yet gets the greeting
once it is).
"""
import sys

from maelstrom import Node


class RwRegister(Node):
    def __init__(self, gossip_every):
        super().__init__()
        self.clock = 0
        self.regs = {}  # repr(key) -> [key, (ts, node), value]
        self.init_msg = None
        self.greeted_by = set()
        self.every(gossip_every, self.gossip)

    def on_init(self, msg):
        # Answer init only once lww-kv has stored our start.
        self.id = msg["body"]["node_id"]
        self.ids = msg["body"]["node_ids"]
        self.init_msg = msg
        self.send("lww-kv", {"type": "write", "key": "started-" + self.id, "value": True})
        for p in self.peers():
            self.send(p, {"type": "hello"})

    def on_write_ok(self, msg):
        if self.init_msg is not None:
            self.log("lww-kv stored our start; answering init")
            self.reply(self.init_msg, {"type": "init_ok"})
            self.init_msg = None

    def on_hello(self, msg):
        self.greeted_by.add(msg["src"])
        self.log("greeted by", sorted(self.greeted_by))

    def merge(self, entries):
        for k, ts, node, v in entries:
            self.clock = max(self.clock, ts)
            cur = self.regs.get(repr(k))
            if cur is None or cur[1] < (ts, node):
                self.regs[repr(k)] = [k, (ts, node), v]

    def on_txn(self, msg):
        out = []
        for f, k, v in msg["body"]["txn"]:
            if f == "r":
                cur = self.regs.get(repr(k))
                out.append([f, k, cur[2] if cur else None])
            else:
                self.clock += 1
                self.merge([(k, self.clock, self.id, v)])
                out.append([f, k, v])
        self.reply(msg, {"type": "txn_ok", "txn": out})

    def on_state(self, msg):
        self.merge(msg["body"]["entries"])

    def gossip(self):
        entries = [[k, ts, node, v] for k, (ts, node), v in self.regs.values()]
        for p in self.peers():
            self.send(p, {"type": "state", "entries": entries})


if __name__ == "__main__":
    every = 0.2
    if "--gossip-every" in sys.argv:
        every = float(sys.argv[sys.argv.index("--gossip-every") + 1])
    RwRegister(every).run()
