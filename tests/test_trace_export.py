"""Chrome/Perfetto trace-event export of the JSON-lines trace."""

from __future__ import annotations

import json
import os

import netqasm
import pytest

from qnodeos_hw.cli import main
from qnodeos_hw.trace_export import (TID_CNPU, TID_PROGRAM0, TID_QDEVICE, TID_QNPU,
                                     TraceFileError, read_jsonl, to_trace_events)


def ev(t, node, kind, pid=None, source="qnpu", **data):
    return {"t_ns": t, "node": node, "kind": kind, "pid": pid, "data": data, "source": source}


EVENTS = [
    ev(0, "a", "cnpu_message_sent", source="cnpu:app", app="app", msg_id=1),
    ev(100, "a", "process_named", 1, app="alice"),
    ev(100, "a", "process_state", 1, state="ready"),
    ev(200, "a", "subroutine_received", 1, msg_id=1),
    ev(200, "a", "process_state", 1, state="running"),
    ev(300, "a", "instr_sent", 1, instr="init"),
    ev(10_300, "a", "instr_response", 1, instr="init", outcome=None),
    ev(20_000, "a", "entanglement_heralded", None, window_ns=5000),
    ev(30_000, "a", "subroutine_done", 1, msg_id=1),
    ev(30_000, "a", "process_state", 1, state="idle"),
    ev(-1, "b", "cnpu_message_sent", source="cnpu:bob"),   # host time: no virtual time
    ev(500, "b", "process_state", 1, state="running"),
    ev(900, "b", "process_state", 1, state="idle"),
]


def by(doc, ph, **kw):
    return [e for e in doc["traceEvents"] if e["ph"] == ph
            and all(e.get(k) == v for k, v in kw.items())]


def test_tracks_per_node_component_and_program():
    doc = to_trace_events(EVENTS)
    procs = {e["args"]["name"]: e["pid"] for e in by(doc, "M", name="process_name")}
    assert set(procs) == {"node a", "node b"}
    a = procs["node a"]
    threads = {e["tid"]: e["args"]["name"] for e in by(doc, "M", name="thread_name", pid=a)}
    assert threads[TID_CNPU] == "CNPU" and threads[TID_QNPU] == "QNPU"
    assert threads[TID_QDEVICE] == "QDevice"
    assert threads[TID_PROGRAM0 + 1] == "program alice (pid 1)"
    # the instruction is a 10 us slice on the QDevice track, in microseconds
    (init,) = by(doc, "X", name="init", pid=a)
    assert init["tid"] == TID_QDEVICE and init["ts"] == 0.3 and init["dur"] == 10.0
    # the attempt window ends at the herald
    (win,) = [e for e in by(doc, "X", pid=a, tid=TID_QDEVICE) if "window" in e["name"]]
    assert win["ts"] == 15.0 and win["dur"] == 5.0
    # subroutine from arrival to done on the QNPU track, named with its program
    (sub,) = by(doc, "X", pid=a, tid=TID_QNPU)
    assert sub["name"] == "subroutine 1 (alice)" and sub["ts"] == 0.2 and sub["dur"] == 29.8
    # program states as slices (idle left out)
    states = [(e["name"], e["ts"], e["dur"]) for e in by(doc, "X", pid=a, tid=TID_PROGRAM0 + 1)]
    assert states == [("ready", 0.1, 0.1), ("running", 0.2, 29.8)]
    (cnpu,) = by(doc, "i", pid=a, tid=TID_CNPU)
    assert cnpu["name"] == "cnpu_message_sent" and cnpu["args"]["msg_id"] == 1
    assert doc["otherData"]["skipped_host_time_events"] == 1
    json.dumps(doc)  # serialisable


def test_cli_exports_a_real_run(tmp_path, capsys):
    from qnodeos_hw.runner.network import IdealNetworkFactory, NetworkSettings, run_app_dir
    app = os.path.join(os.path.dirname(netqasm.__file__), "examples", "apps", "teleport")
    res = run_app_dir(app, IdealNetworkFactory(seed=1),
                      NetworkSettings(bin_ns=100_000, seed=1), timeout_s=60)
    assert res.ok
    src = tmp_path / "run.jsonl"
    n = res.trace.save(str(src))
    assert main(["trace", "export", str(src), "--out", str(tmp_path / "run.json")]) == 0
    assert "run.json" in capsys.readouterr().out
    doc = json.loads((tmp_path / "run.json").read_text())
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"}
    assert {"CNPU", "QNPU", "QDevice"} <= names
    assert any(n_.startswith("program sender") for n_ in names)
    assert any(n_.startswith("program receiver") for n_ in names)
    qdev = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["tid"] == TID_QDEVICE]
    assert qdev and all(e["dur"] > 0 for e in qdev)
    assert len(read_jsonl(src)) == n


def test_bad_trace_file_is_one_typed_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t_ns": 0, "node": "a", "kind": "x"}\nnot json\n')
    with pytest.raises(TraceFileError) as ei:
        read_jsonl(bad)
    assert ei.value.line == 2
    assert main(["trace", "export", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"qnodeos-hw trace export: TraceFileError: {bad} line 2: not JSON "
                   "(Expecting value)"]
