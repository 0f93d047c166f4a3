"""Layer-by-layer checkpoints of a grid solve, so that a killed run resumes.

A checkpoint is a directory holding the effective case text (``case.toml``)
and one ``layer_NNN.npz`` per finished layer (its box, nodal density and
diagnostics). Each layer file is written to a temporary name and renamed, so a
kill at any moment leaves only whole files; a resumed run reloads the
consecutive layers it finds and computes the rest, which gives the same
numbers as an uninterrupted run (every step is deterministic).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

__all__ = ["Checkpoint"]


class Checkpoint:
    """The checkpoint directory of one run.

    Parameters
    ----------
    directory : Path
    case_toml : str
        The effective case; a checkpoint of another case is never resumed.
    """

    def __init__(self, directory, case_toml: str):
        self.directory = Path(directory)
        self.case_toml = case_toml

    def matches(self) -> bool:
        """Whether a checkpoint of this very case exists."""
        try:
            return (self.directory / "case.toml").read_text() == self.case_toml
        except OSError:
            return False

    def load(self) -> list[dict]:
        """The finished layers' states ``[{box, values, diagnostics...}]`` for
        layers 1, 2, ... (consecutive from 1; empty when nothing matches)."""
        if not self.matches():
            return []
        states = []
        while True:
            path = self.directory / f"layer_{len(states) + 1:03d}.npz"
            try:
                with np.load(path, allow_pickle=False) as data:
                    states.append({name: data[name] for name in data.files})
            except (OSError, ValueError, KeyError):  # absent, or not a whole file
                return states

    def start(self) -> None:
        """Begin a fresh checkpoint of this case (dropping any older one)."""
        self.clear()
        self.directory.mkdir(parents=True)
        _atomic_write(self.directory / "case.toml", self.case_toml.encode())

    def save(self, n: int, state: dict) -> None:
        """Store layer ``n``'s state (arrays and numbers) atomically."""
        if not self.directory.is_dir():
            self.start()
        tmp = self.directory / f".layer_{n:03d}.tmp-{os.getpid()}.npz"
        np.savez(tmp, **state)
        os.replace(tmp, self.directory / f"layer_{n:03d}.npz")

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
