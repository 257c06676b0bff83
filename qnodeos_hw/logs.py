"""Logging and progress output of the ``qnodeos-hw`` command.

Every module logs through ``logging.getLogger(__name__)``; results (tables, file lists)
are the command's standard output. :func:`configure` sets what reaches standard error:

=============  =================  ========================  ==============================
option         qnodeos_hw.*       qcodes.* (own log)        progress bars
=============  =================  ========================  ==============================
``-q``         errors             nothing                   never
(default)      warnings           nothing                   on a terminal only
``-v``         info (instrument   warnings                  on a terminal only
               connection lines,
               dataset runs)
``-vv``        debug              info                      on a terminal only
=============  =================  ========================  ==============================

Tracebacks attached to log records are printed only with ``--debug`` (e.g. qcodes'
"Could not connect" traceback of a VISA instrument, which ``station check`` reports
in one line of its summary anyway).
"""

from __future__ import annotations

import logging
import sys

_HANDLER: logging.Handler | None = None
#: the level set by the last :func:`configure` call (-1 quiet, 0 default, 1.. verbose)
_STATE = {"verbosity": 0, "debug": False}


class _Formatter(logging.Formatter):
    """``LEVEL logger: message``; exception tracebacks only when ``with_tracebacks``."""

    def __init__(self, with_tracebacks: bool) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.with_tracebacks = with_tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.with_tracebacks:
            return super().format(record)
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (so a replaced
    stderr, e.g. a test's capture, is followed)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def level_for(verbosity: int, debug: bool = False) -> tuple[int, int]:
    """(level of ``qnodeos_hw`` loggers, level of ``qcodes`` loggers)."""
    if debug or verbosity >= 2:
        return logging.DEBUG, logging.INFO
    if verbosity == 1:
        return logging.INFO, logging.WARNING
    if verbosity < 0:
        return logging.ERROR, logging.CRITICAL + 1
    return logging.WARNING, logging.CRITICAL + 1


def configure(verbosity: int = 0, debug: bool = False, stream=None) -> None:
    """Route log records to ``stream`` (default ``sys.stderr``) at the levels above.
    Calling it again replaces the previous configuration."""
    global _HANDLER
    ours, qcodes_level = level_for(verbosity, debug)
    root = logging.getLogger()
    if _HANDLER is not None:
        root.removeHandler(_HANDLER)
    _HANDLER = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    _HANDLER.setFormatter(_Formatter(with_tracebacks=debug))
    root.addHandler(_HANDLER)
    logging.getLogger("qnodeos_hw").setLevel(ours)
    logging.getLogger("qcodes").setLevel(qcodes_level)
    _STATE.update(verbosity=verbosity, debug=debug)


def verbosity() -> int:
    return int(_STATE["verbosity"])


def progress_enabled(stream=None) -> bool:
    """Whether progress bars should be drawn: never with ``-q``, and only when
    ``stream`` (default ``sys.stderr``) is a terminal, so logs of a job stay clean."""
    if _STATE["verbosity"] < 0:
        return False
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
