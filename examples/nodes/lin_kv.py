#!/usr/bin/env python3
"""A linearizable lin-kv node: one fixed leader (the first node id) holds
the only copy of the data; every other node forwards each client operation
(read, write, cas) to it and relays the answer. Under a partition a cut-off
node's operations time out (indeterminate), which linearizability allows.

    ladon run --adapter process --bin examples/nodes/lin_kv.py --workload lin-kv --time-limit 5s
"""
from maelstrom import Node


class LinKv(Node):
    def __init__(self):
        super().__init__()
        self.data = {}
        self.pending = {}  # forwarded msg_id -> client message

    def leader(self):
        return sorted(self.ids)[0]

    def apply(self, body):
        """The leader's state machine: the reply body for a client request."""
        k = str(body.get("key"))
        t = body["type"]
        if t == "read":
            if k not in self.data:
                return {"type": "error", "code": 20, "text": "key does not exist"}
            return {"type": "read_ok", "value": self.data[k]}
        if t == "write":
            self.data[k] = body["value"]
            return {"type": "write_ok"}
        if t == "cas":
            if k not in self.data:
                return {"type": "error", "code": 20, "text": "key does not exist"}
            if self.data[k] != body["from"]:
                return {"type": "error", "code": 22, "text": "precondition failed"}
            self.data[k] = body["to"]
            return {"type": "cas_ok"}
        return {"type": "error", "code": 10, "text": "unsupported " + t}

    def client_op(self, msg):
        if self.id == self.leader():
            self.reply(msg, self.apply(msg["body"]))
        else:
            self.send(self.leader(), {"type": "fwd", "req": msg["body"]})
            self.pending[self.next_msg_id] = msg

    on_read = on_write = on_cas = client_op

    def on_fwd(self, msg):
        self.reply(msg, {"type": "fwd_ok", "resp": self.apply(msg["body"]["req"])})

    def on_fwd_ok(self, msg):
        client = self.pending.pop(msg["body"].get("in_reply_to"), None)
        if client is not None:
            self.reply(client, msg["body"]["resp"])


if __name__ == "__main__":
    LinKv().run()
