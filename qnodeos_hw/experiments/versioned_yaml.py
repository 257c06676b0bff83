"""Versioned YAML files in a folder: ``<stem>.v1.yaml``, ``<stem>.v2.yaml``, ... plus a
``<stem>.yaml`` copy of the newest ("current").

A version file is never overwritten (created with exclusive mode); the current copy
is replaced atomically (written to a temporary file, then renamed). Callers validate
the text before handing it over: this module only keeps the history.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path


class VersionStoreError(RuntimeError):
    """The version folder cannot be read or written; ``path`` names the file."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True)
class StoredVersion:
    """One written version: its number, its file and the 'current' copy."""

    version: int
    path: Path
    current: Path


class VersionedYamlStore:
    """The versions of one YAML document (``stem``) in ``folder``."""

    def __init__(self, folder: str | Path, stem: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", stem):
            raise ValueError(f"stem must be a plain file-name stem, got {stem!r}")
        self.folder, self.stem = Path(folder), stem
        self._pattern = re.compile(rf"{re.escape(stem)}\.v(\d+)\.yaml")

    @property
    def current(self) -> Path:
        """``<stem>.yaml``: a copy of the newest version."""
        return self.folder / f"{self.stem}.yaml"

    def path_of(self, version: int) -> Path:
        return self.folder / f"{self.stem}.v{version}.yaml"

    def versions(self) -> list[int]:
        """Version numbers present, ascending."""
        if not self.folder.is_dir():
            return []
        found = (self._pattern.fullmatch(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def latest(self) -> StoredVersion | None:
        """The newest version, or None when there is none."""
        v = self.versions()
        return StoredVersion(v[-1], self.path_of(v[-1]), self.current) if v else None

    def write(self, text: str) -> StoredVersion:
        """Store ``text`` as the next version and make it current."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VersionStoreError(self.folder, f"cannot create folder: {exc}") from exc
        version = (self.versions() or [0])[-1] + 1
        while True:
            path = self.path_of(version)
            try:
                with open(path, "x", encoding="utf-8") as fh:  # never overwrite a version
                    fh.write(text)
                break
            except FileExistsError:  # another writer took this number
                version += 1
            except OSError as exc:
                raise VersionStoreError(path, f"cannot write: {exc}") from exc
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{self.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.current)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise VersionStoreError(self.current, f"cannot update the current copy: {exc}") \
                from exc
        return StoredVersion(version, path, self.current)
