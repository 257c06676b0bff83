"""QCoDeS datasets of the demonstrations and calibrations.

* **The user's database stays the user's.** Everything goes through an explicit
  connection to the file chosen with ``--db`` (default: a ``.db`` file in the output
  folder): qcodes' global configuration (``qc.config.core.db_location``, what a
  Jupyter session's ``initialise_or_create_database_at`` set) is never read or
  changed. Open a dataset with ``load_by_id(run_id, conn=connect_db(path))``
  (:func:`load_dataset`).
* **Parameters** carry a label and an SI unit (``s``, ``rad``, ``V``; ``""`` for
  counts and probabilities). Categories (tomography basis, cardinal state, on/off)
  are integer codes with their mapping in the label (``basis (0=X, 1=Y, 2=Z)``) and in
  the metadata ``categories`` (JSON), so that ``get_parameter_data`` gives numbers.
* **Inputs** of the run (k, seeds, settings, alpha and theta, ...) are dataset
  metadata (``inputs``, JSON) and, where they vary within a run, parameters.
* **The station snapshot** is stored with every run: the station the data was taken
  on (calibrations), or, for the network demonstrations, whose instruments live in
  the node processes' factories, a snapshot of the simulated NV station (the
  built-in ``sim.yaml``, each node's instruments under its name) loaded for the
  purpose.
* **Results go through** :class:`~qcodes.dataset.Measurement` **as they are taken**:
  :func:`open_run` gives a datasaver; calibrations add each scan point when it has
  been measured. The network demonstrations get their outcomes when a run ends, and
  add them row by row then.

qcodes' "Starting experimental run with id ..." line is logged (INFO, shown with
``-v``), not printed.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset cannot be written as asked; ``item`` names the parameter or argument."""

    def __init__(self, item: str, message: str) -> None:
        super().__init__(f"{item}: {message}")
        self.item = item


@dataclass(frozen=True)
class Param:
    """One dataset parameter: ``name``, ``label``, SI ``unit``; ``setpoint``: an
    independent parameter (every dependent one depends on all setpoints);
    ``categories``: the mapping of an integer-coded category (code -> text)."""

    name: str
    label: str
    unit: str = ""
    setpoint: bool = False
    categories: tuple[str, ...] | None = None

    def full_label(self) -> str:
        if not self.categories:
            return self.label
        return f"{self.label} ({', '.join(f'{i}={c}' for i, c in enumerate(self.categories))})"


def connect_db(path: str | Path):
    """A connection to the sqlite database ``path`` (created, with qcodes' schema, when
    missing); qcodes' global configuration is not touched."""
    from qcodes.dataset.sqlite.database import conn_from_dbpath_or_conn

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return conn_from_dbpath_or_conn(conn=None, path_to_db=str(path))


@contextlib.contextmanager
def _log_prints(level: int = logging.INFO) -> Iterator[None]:
    """qcodes prints when a run starts; turn those lines into log records."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    for line in buf.getvalue().splitlines():
        if line.strip():
            log.log(level, "%s", line.strip())


@contextlib.contextmanager
def simulated_station(nodes: Sequence[str] = ("node",), seed: int = 0) -> Iterator[Any]:
    """A QCoDeS ``Station`` holding the simulated NV station's instruments (HDAWG,
    controller, MW source of the built-in ``sim.yaml``) once per node, named
    ``<node>_<instrument>``; closed on exit."""
    from qcodes.station import Station

    from ..instruments.stations import station_file
    from ..simulators.nv_lab import load_station

    handles = []
    try:
        for i, node in enumerate(nodes):
            handles.append(load_station(station_file("sim"), only=("hdawg", "adwin", "mw"),
                                        seed=seed + i, name_prefix=f"{node}_"))
        station = Station(*[h.station.components[name] for h in handles for name in h.order],
                          default=False)
        yield station
    finally:
        for h in handles:
            h.close()


class Run:
    """An open dataset run (from :func:`open_run`): ``add(**values)`` adds one row,
    ``run_id`` and ``dataset`` name it."""

    def __init__(self, saver: Any, params: Sequence[Param]) -> None:
        self._saver = saver
        self._names = [p.name for p in params]
        self.run_id: int = saver.run_id
        self.dataset = saver.dataset

    def add(self, **values: Any) -> None:
        missing = [n for n in self._names if n not in values]
        extra = [n for n in values if n not in self._names]
        if missing or extra:
            raise DatasetError("row", f"missing {missing}, unknown {extra}")
        self._saver.add_result(*[(n, values[n]) for n in self._names])

    def add_rows(self, columns: Mapping[str, Sequence]) -> None:
        """Rows from equal-length columns, one ``add`` each."""
        lengths = {k: len(v) for k, v in columns.items()}
        if len(set(lengths.values())) > 1:
            raise DatasetError("columns", f"different lengths {lengths}")
        n = next(iter(lengths.values()), 0)
        for i in range(n):
            self.add(**{k: columns[k][i] for k in columns})


@contextlib.contextmanager
def open_run(db_path: str | Path, experiment: str, name: str, params: Sequence[Param], *,
             sample: str = "simulated NV network", station: Any = None,
             inputs: Mapping[str, Any] | None = None,
             metadata: Mapping[str, Any] | None = None) -> Iterator[Run]:
    """A QCoDeS run in ``db_path`` (its own connection; see module docstring).

    ``params``: setpoints first or not, every non-setpoint depends on all setpoints;
    ``station``: the QCoDeS station whose snapshot is stored (None: none);
    ``inputs``: the run's inputs, stored as metadata ``inputs`` (JSON);
    ``metadata``: further tags (str/number values stored as they are, others as JSON)."""
    from qcodes.dataset import Measurement, load_or_create_experiment

    for p in params:
        if not p.label:
            raise DatasetError(p.name, "every parameter needs a label")
        if p.unit in ("ms", "us", "ns", "mV", "kHz", "MHz"):
            raise DatasetError(p.name, f"unit {p.unit!r}: store SI units (s, V, Hz)")
    setpoints = [p for p in params if p.setpoint]
    conn = connect_db(db_path)
    try:
        exp = load_or_create_experiment(experiment, sample_name=sample, conn=conn)
        meas = Measurement(exp=exp, name=name, station=station)
        for p in setpoints:
            meas.register_custom_parameter(p.name, label=p.full_label(), unit=p.unit)
        for p in params:
            if not p.setpoint:
                meas.register_custom_parameter(p.name, label=p.full_label(), unit=p.unit,
                                               setpoints=tuple(s.name for s in setpoints))
        cats = {p.name: dict(enumerate(p.categories)) for p in params if p.categories}
        with contextlib.ExitStack() as stack:
            with _log_prints():
                saver = stack.enter_context(meas.run())
            ds = saver.dataset
            if inputs is not None:
                ds.add_metadata("inputs", json.dumps(dict(inputs), default=_json_default))
            if cats:
                ds.add_metadata("categories", json.dumps(cats))
            for k, v in (metadata or {}).items():
                plain = isinstance(v, (str, int, float)) and not isinstance(v, bool)
                ds.add_metadata(k, v if plain else json.dumps(v, default=_json_default))
            yield Run(saver, params)
    finally:
        conn.close()


def _json_default(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    return str(x)


def load_dataset(db_path: str | Path, run_id: int):
    """The dataset ``run_id`` of ``db_path`` (``load_by_id`` with its own connection)
    and the connection (close it when done)."""
    from qcodes.dataset import load_by_id

    if not Path(db_path).is_file():
        raise DatasetError("db", f"{db_path} does not exist")
    conn = connect_db(db_path)
    return load_by_id(run_id, conn=conn), conn


def load_columns(db_path: str | Path, run_id: int) -> dict[str, np.ndarray]:
    """The columns of run ``run_id`` (for checks and re-analysis)."""
    ds, conn = load_dataset(db_path, run_id)
    try:
        out: dict[str, np.ndarray] = {}
        for dep, d in ds.get_parameter_data().items():
            for k, v in d.items():
                out[k] = np.asarray(v).ravel()
        return out
    finally:
        conn.close()


def save_dataset(db_path: str | Path, experiment: str, name: str,
                 setpoints: Mapping[str, Sequence], dependents: Mapping[str, Sequence],
                 sample: str = "simulated NV network", units: Mapping[str, str] | None = None,
                 labels: Mapping[str, str] | None = None,
                 categories: Mapping[str, Sequence[str]] | None = None,
                 inputs: Mapping[str, Any] | None = None, station: Any = None,
                 metadata: Mapping[str, Any] | None = None) -> int:
    """Store columns of equal length (``setpoints`` then ``dependents``, which depend
    on all setpoints) row by row as one run of ``db_path``; returns the run id.
    ``labels`` default to the names; see :func:`open_run` for the rest."""
    units, labels, categories = dict(units or {}), dict(labels or {}), dict(categories or {})
    params = [Param(k, labels.get(k, k), units.get(k, ""), True,
                    tuple(categories[k]) if k in categories else None) for k in setpoints]
    params += [Param(k, labels.get(k, k), units.get(k, ""), False,
                     tuple(categories[k]) if k in categories else None) for k in dependents]
    cols = {**setpoints, **dependents}
    with open_run(db_path, experiment, name, params, sample=sample, station=station,
                  inputs=inputs, metadata=metadata) as run:
        run.add_rows(cols)
        return run.run_id


# ------------------------------------------------------------ the demonstrations' runs
BASES = ("X", "Y", "Z")


def save_dqc(db_path: str | Path, cfg: Any, recs: Sequence[dict], summ: Mapping[str, Any]) -> int:
    """One row per DQC circuit: setting and circuit index (setpoints), alpha, theta
    (rad), tomography basis (0=X, 1=Y, 2=Z), the server's outcome, and its qubit's wait
    (s, NaN when the trace has no complete iteration). Inputs: k, seed, the settings
    (alpha, theta in units of pi/4 and rad), the setting seeds, the latency filter; the
    per-setting analysis as metadata ``summary``."""
    import math

    params = [Param("setting", "setting index (metadata inputs.settings)", setpoint=True),
              Param("circuit", "circuit index within the setting", setpoint=True),
              Param("alpha", "target rotation alpha of H Rz(alpha)|+>", "rad"),
              Param("theta", "client's hiding angle theta", "rad"),
              Param("basis", "server's tomography basis", categories=BASES),
              Param("outcome", "server's measurement outcome"),
              Param("server_wait", "server qubit's wait (herald to S2 arrival)", "s")]
    settings = [{"index": i, "alpha_pi4": r["alpha"], "theta_pi4": r["theta"],
                 "alpha_rad": r["alpha"] * math.pi / 4, "theta_rad": r["theta"] * math.pi / 4}
                for i, r in enumerate(recs)]
    inputs = {"k": cfg.k, "seed": cfg.seed, "setting_seeds": [cfg.seed * 1000 + i
                                                              for i in range(len(recs))],
              "settings": settings, "max_wait_s": cfg.filter_ms * 1e-3,
              "bin_s": cfg.bin_ns * 1e-9, "idle_wall_scale": cfg.idle_wall_scale}
    summary = {k: v for k, v in summ.items() if k != "settings"}
    summary["settings"] = [{k: v for k, v in a.items() if k not in ("target_bloch",)}
                           for a in summ.get("settings", [])]
    with simulated_station(("client", "server"), seed=cfg.seed) as st, \
            open_run(db_path, "dqc", f"dqc_k{cfg.k}", params, station=st, inputs=inputs,
                     metadata={"summary": summary}) as run:
        for i, r in enumerate(recs):
            a, t = settings[i]["alpha_rad"], settings[i]["theta_rad"]
            for c, (b, m, it) in enumerate(zip(r["bases"], r["m"], r["iterations"])):
                run.add(setting=i, circuit=c, alpha=a, theta=t, basis=BASES.index(b),
                        outcome=int(m),
                        server_wait=it["server_wait_ns"] * 1e-9 if it else float("nan"))
        return run.run_id


def save_lgt(db_path: str | Path, res: Mapping[str, Any]) -> int:
    """One row per LGT result: L1 subroutine index and basis index within it
    (setpoints), the (D, phi) input (category, and phi in rad), the tomography basis
    (+X, -X, +Y, -Y, +Z, -Z), the outcome. Inputs: k, seed; the analysis as metadata
    ``summary``."""
    from .apps.lgt_bases import BASES6, INPUTS
    from .lgt import input_label

    labels = tuple(input_label(d, p) for d, p in INPUTS)
    params = [Param("subroutine", "L1 subroutine index", setpoint=True),
              Param("measurement", "measurement within the subroutine", setpoint=True),
              Param("input", "(D, phi) input", categories=labels),
              Param("phi", "rotation angle phi about D", "rad"),
              Param("basis", "tomography basis", categories=BASES6),
              Param("outcome", "measurement outcome (0 = eigenvalue +1)")]
    inputs = {"k": res["k"], "seed": res["seed"], "subroutines": res.get("subroutines"),
              "inputs": [{"d_axis": d, "phi_rad": p * np.pi / 2} for d, p in INPUTS]}
    summary = {k: v for k, v in res.items() if k not in ("blocks", "m")}
    with simulated_station(("node",), seed=int(res["seed"])) as st, \
            open_run(db_path, "lgt", f"lgt_k{res['k']}", params, sample="simulated NV node",
                     station=st, inputs=inputs, metadata={"summary": summary}) as run:
        for i, (b, ms) in enumerate(zip(res["blocks"], res["m"])):
            code = INPUTS.index((b[0], int(b[1])))
            for j, m in enumerate(ms):
                run.add(subroutine=i, measurement=j, input=code, phi=int(b[1]) * np.pi / 2,
                        basis=j, outcome=int(m))
        return run.run_id


def save_multitask(db_path: str | Path, summ: Mapping[str, Any]) -> int:
    """One row per (N, multitasking on/off, seed) run: utilisation, mean LGT fidelity, LGT
    blocks between DQC blocks, the fraction of DQC waits in which another process ran.
    Inputs: DQC circuits and LGT subroutines per program, repeats; the per-(N, on/off)
    aggregate as metadata ``summary``."""
    params = [Param("n", "N (DQC + LGT programs each)", setpoint=True),
              Param("multitasking", "multitasking", setpoint=True, categories=("off", "on")),
              Param("seed", "seed of the run", setpoint=True),
              Param("t_util", "client QDevice utilisation 1 - T_idle/T_total"),
              Param("lgt_fidelity", "LGT fidelity (readout-corrected, mean)"),
              Param("lgt_between_dqc", "LGT blocks between DQC blocks (mean)"),
              Param("waiting_other", "fraction of DQC waits in which another process ran"),
              Param("t_total", "T_total (entanglement windows excluded)", "s")]
    inputs = {k: v for k, v in summ.items() if k not in ("runs", "summary")}
    with simulated_station(("client", "server")) as st, \
            open_run(db_path, "multitask", "utilisation", params, station=st,
                     inputs=inputs, metadata={"summary": summ.get("summary", [])}) as run:
        for r in summ["runs"]:
            run.add(n=int(r["n"]), multitasking=int(bool(r["multitasking"])),
                    seed=int(r.get("seed", 0)), t_util=r["t_util"],
                    lgt_fidelity=r["lgt_fidelity_corrected_mean"],
                    lgt_between_dqc=r["lgt_blocks_between_dqc"]["mean"],
                    waiting_other=r.get("waiting_other_process", {}).get("fraction", float("nan")),
                    t_total=r.get("t_total_ns", float("nan")) * 1e-9)
        return run.run_id
