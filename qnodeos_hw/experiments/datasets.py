"""Measurements of the demonstrations in a QCoDeS dataset (sqlite) in the output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


def save_dataset(db_path: str | Path, experiment: str, name: str,
                 setpoints: Mapping[str, Sequence], dependents: Mapping[str, Sequence],
                 sample: str = "simulated NV network", units: Mapping[str, str] | None = None) -> int:
    """Store columns of equal length (``setpoints`` then ``dependents``, which depend on all
    setpoints) as one QCoDeS run in ``db_path``; returns the run id."""
    from qcodes.dataset import (Measurement, initialise_or_create_database_at,
                                load_or_create_experiment)

    cols = {**setpoints, **dependents}
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"dataset '{name}': columns of different lengths {lengths}")
    units = dict(units or {})
    initialise_or_create_database_at(str(db_path))
    exp = load_or_create_experiment(experiment, sample_name=sample)
    meas = Measurement(exp=exp, name=name)
    for k in setpoints:
        meas.register_custom_parameter(k, unit=units.get(k, ""), paramtype="array")
    for k in dependents:
        meas.register_custom_parameter(k, unit=units.get(k, ""), setpoints=tuple(setpoints),
                                       paramtype="array")
    with meas.run() as saver:
        saver.add_result(*[(k, np.asarray(v, dtype=float)) for k, v in cols.items()])
        return saver.run_id


def load_columns(db_path: str | Path, run_id: int) -> dict[str, np.ndarray]:
    """The columns of run ``run_id`` (for checks and re-analysis)."""
    from qcodes.dataset import initialise_or_create_database_at, load_by_id

    initialise_or_create_database_at(str(db_path))
    ds = load_by_id(run_id)
    out: dict[str, np.ndarray] = {}
    for dep, d in ds.get_parameter_data().items():
        for k, v in d.items():
            out[k] = np.asarray(v).ravel()
    return out
