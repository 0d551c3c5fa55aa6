#!/usr/bin/env python3
"""The buggy twin of lin_kv.py: writes and cas still go through the one
leader, but every node answers reads from its own replica, which the leader
updates asynchronously, in full every 500 ms. A follower read in between, or
one cut off from the leader, returns a value already overwritten: a stale
read, `nonlinearizable` (the lag makes it show in every run of a few seconds,
not only when a partition happens to fall on a read).

    ladon run --adapter process --bin examples/nodes/lin_kv_buggy.py --workload lin-kv --time-limit 5s
"""
from lin_kv import LinKv


class LocalReads(LinKv):
    def __init__(self):
        super().__init__()
        self.every(0.5, self.push)

    def push(self):
        if self.id == self.leader():
            for n in self.peers():
                self.send(n, {"type": "state", "data": self.data})

    def on_read(self, msg):
        # The bug: no trip to the leader.
        k = str(msg["body"]["key"])
        if k in self.data:
            self.reply(msg, {"type": "read_ok", "value": self.data[k]})
        else:
            self.error(msg, 20, "key does not exist")

    def on_state(self, msg):
        if self.id != self.leader():
            self.data = dict(msg["body"]["data"])


if __name__ == "__main__":
    LocalReads().run()
