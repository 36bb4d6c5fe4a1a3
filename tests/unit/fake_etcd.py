# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""A small model of etcd 3.4's KV gateway (range, txn with VERSION and MOD
compares) holding one Patroni cluster's keys, and a clock that sleeps
without waiting, for the tests of dcs_fence and the patroni_fence
module."""

from __future__ import annotations

import base64
import json


def dec(text):
    return base64.b64decode(text).decode()


class FakeKV:
    """Keys with a revision; ``leader_for`` reads of the leader key see it
    (then its lease has expired)."""

    def __init__(self, config=None, leader_for=0):
        self.rev = 1
        self.keys = {}  # key -> (value, mod_revision, version)
        if config is not None:
            self.put("/pg/pg-test/config", json.dumps(config))
        self.leader_for = leader_for
        self.txns = []

    def put(self, key, value):
        self.rev += 1
        old = self.keys.get(key)
        self.keys[key] = (value, self.rev, (old[2] if old else 0) + 1)

    def _leader(self):
        if self.leader_for > 0:
            self.keys.setdefault("/pg/pg-test/leader", ("pg-test-1", 1, 1))
        else:
            self.keys.pop("/pg/pg-test/leader", None)

    def __call__(self, path, body, headers):
        if path == "/v3/kv/range":
            key = dec(body["key"])
            if key.endswith("leader"):
                self._leader()
                self.leader_for -= 1
            found = self.keys.get(key)
            if not found:
                return {"header": {}}
            value, mod, version = found
            return {
                "kvs": [
                    {
                        "key": body["key"],
                        "value": base64.b64encode(value.encode()).decode(),
                        "mod_revision": str(mod),
                        "version": str(version),
                    }
                ]
            }
        if path == "/v3/kv/txn":
            self.txns.append(body)
            ok = True
            for cmp in body["compare"]:
                found = self.keys.get(dec(cmp["key"]))
                if cmp["target"] == "VERSION":
                    ok &= str(found[2] if found else 0) == cmp["version"]
                elif cmp["target"] == "MOD":
                    ok &= str(found[1] if found else 0) == cmp["mod_revision"]
            if ok:
                for op in body["success"]:
                    put = op["request_put"]
                    self.put(dec(put["key"]), dec(put["value"]))
                return {"succeeded": True}
            return {}  # the gateway leaves out a false "succeeded"
        raise AssertionError(path)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
