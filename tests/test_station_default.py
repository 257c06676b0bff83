"""Loading a station (``nv_lab.load_station``, which the demonstrations' dataset
snapshots, the station check and the nodes use) leaves qcodes' default station where
the user's session set it; ``default=True`` makes the loaded one the default, as
``Station(config_file=...)`` does."""

from qcodes.station import Station

from qnodeos_hw.experiments.datasets import simulated_station
from qnodeos_hw.instruments.stations import station_file
from qnodeos_hw.simulators.nv_lab import load_station


def test_loading_a_station_keeps_the_users_default_station():
    old = Station.default
    mine = Station()  # a user's session: its station is the default
    try:
        assert Station.default is mine
        h = load_station(station_file("sim"), only=("mw",), name_prefix="t1_")
        try:
            assert Station.default is mine
        finally:
            h.close()
        with simulated_station(("a",)) as st:  # what every demonstration's dataset does
            assert Station.default is mine and st is not mine
        assert Station.default is mine
        h = load_station(station_file("sim"), only=("mw",), name_prefix="t2_", default=True)
        try:
            assert Station.default is h.station
        finally:
            h.close()
    finally:
        Station.default = old
