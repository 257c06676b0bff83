"""Session files of node / link processes (qnodeos_hw.runner.session): data only, checked
field by field, private to their owner."""

import json
import os
import stat

import pytest

from qnodeos_hw.runner.session import (LinkSession, NodeSession, SessionError, read_session,
                                       write_private)


def _node(**kw):
    d = dict(node="alice", nodes=("alice", "bob"), clock=("127.0.0.1", 4000), token="t",
             peer_keys={"alice|bob": "00ff"}, settings={"bin_ns": 10}, build={"platform": "nv"},
             links={"bob": {"address": ["127.0.0.1", 5000]}}, physics_key="k",
             trace_file="/tmp/x.jsonl")
    d.update(kw)
    return NodeSession(**d)


def test_round_trip_and_private_file(tmp_path):
    s = _node()
    p = tmp_path / "node.json"
    write_private(str(p), s.to_json())
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert read_session(str(p)) == s
    ls = LinkSession(link="alice-bob", nodes=("alice", "bob"), network_nodes=("alice", "bob"),
                     build={"platform": "nv"}, physics_key="k")
    p2 = tmp_path / "link.json"
    write_private(str(p2), ls.to_json())
    assert read_session(str(p2)) == ls
    with pytest.raises(FileExistsError):  # never overwrites (another user's planted file)
        write_private(str(p), "{}")


@pytest.mark.parametrize("change, field", [
    (lambda d: d.pop("token"), "token"),
    (lambda d: d.update(node="carol"), "node 'carol'"),
    (lambda d: d.update(qnpu_port="80"), "qnpu_port"),
    (lambda d: d.update(qnpu_port=True), "qnpu_port"),
    (lambda d: d.update(clock=["h"]), "clock"),
    (lambda d: d.update(links={"mallory": {}}), "links.mallory"),
    (lambda d: d.update(kind="link"), "expected a 'node'"),
    (lambda d: d.update(session=2), "session: 1"),
])
def test_malformed_node_sessions_name_the_field(change, field):
    d = json.loads(_node().to_json())
    change(d)
    with pytest.raises(SessionError, match=field.replace("(", r"\(")):
        NodeSession.from_json(json.dumps(d), "s.json")


def test_not_json_is_a_session_error():
    with pytest.raises(SessionError, match="not JSON"):
        NodeSession.from_json("{'a': 1}", "s.json")
