"""The foundation demo through the CLI: a real timeline on both platforms."""

from qnodeos_hw.cli import main


def test_tick_demo_prints_a_timeline(capsys):
    assert main(["demo", "ticks", "--platform", "nv", "--seed", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [r.split() for r in out[1:]]
    assert [r[2] for r in rows] == ["instruction", "response"] * 5
    ticks = [int(r[0]) for r in rows]
    assert ticks == sorted(ticks)
    # every response comes on a later tick than its instruction
    assert all(ticks[i + 1] > ticks[i] for i in range(0, len(ticks), 2))
    assert "OUTCOME" in out[-1]


def test_ion_demo_uses_the_50khz_tick(capsys):
    assert main(["demo", "ticks", "--platform", "ion"]) == 0
    rows = [r.split() for r in capsys.readouterr().out.splitlines()[1:]]
    for r in rows:
        assert float(r[1]) * 1000 == int(r[0]) * 20_000
