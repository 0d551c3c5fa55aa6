#!/usr/bin/env python3
"""A deliberately buggy txn-list-append node: each node appends elements to
its lists in the order they reach it, its own first. Two nodes that take
concurrent appends to one key end up with the same elements in different
orders, forever: Ladon reports `divergence` (subtype `order`).
"""
from maelstrom import Node


class ArrivalOrder(Node):
    def __init__(self):
        super().__init__()
        self.lists = {}  # repr(key) -> (key, [elements])
        self.every(0.2, self.gossip)

    def add(self, k, v):
        _, lst = self.lists.setdefault(repr(k), (k, []))
        if v not in lst:
            lst.append(v)  # BUG: arrival order, not an order all nodes agree on

    def on_txn(self, msg):
        out = []
        for f, k, v in msg["body"]["txn"]:
            if f == "r":
                out.append([f, k, list(self.lists.get(repr(k), (k, []))[1]) or None])
            else:
                self.add(k, v)
                out.append([f, k, v])
        self.reply(msg, {"type": "txn_ok", "txn": out})

    def on_lists(self, msg):
        for k, lst in msg["body"]["lists"]:
            for v in lst:
                self.add(k, v)

    def gossip(self):
        body = [[k, lst] for k, lst in self.lists.values()]
        for p in self.peers():
            self.send(p, {"type": "lists", "lists": body})


if __name__ == "__main__":
    ArrivalOrder().run()
