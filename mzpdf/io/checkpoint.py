"""Layer checkpoints of a solve, so that a killed run resumes.

A checkpoint is a directory holding the effective case text (``case.toml``)
and one ``layer_NNN.npz`` per finished step, ``NNN`` the network's index of
the layer that step computes (a run of noiseless layers and the noisy layer
after it is one step, stored under the noisy layer's index). Each file is
written to a temporary name and renamed, so a kill at any moment leaves only
whole files. :func:`mzpdf.solvers.march.march` is the one caller: it saves
every computed step and, on ``--resume``, restores the steps found, which
gives the same numbers as an uninterrupted run (every step is deterministic).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np

from ..errors import CheckpointError

__all__ = ["Checkpoint"]

_LAYER_FILE = re.compile(r"layer_(\d{3,})\.npz")


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

    def exists(self) -> bool:
        return self.directory.exists()

    def matches(self) -> bool:
        """Whether a checkpoint of this very case exists."""
        try:
            return (self.directory / "case.toml").read_text() == self.case_toml
        except OSError:
            return False

    def load(self) -> dict[int, dict]:
        """The finished steps' states, by the network index of the layer each
        computed (empty when there is no checkpoint directory). A directory
        that holds a checkpoint of another case, or a layer file that cannot
        be read, raises :class:`~mzpdf.errors.CheckpointError`."""
        if not self.directory.exists():
            return {}
        if not self.matches():
            raise CheckpointError(f"{self.directory} holds no checkpoint of this case (its case.toml is absent or "
                                  "differs from the effective case): remove the directory, or run without --resume")
        states = {}
        for path in sorted(self.directory.iterdir()):
            found = _LAYER_FILE.fullmatch(path.name)
            if found is None:
                continue
            try:
                with np.load(path, allow_pickle=False) as data:
                    states[int(found.group(1))] = {name: data[name] for name in data.files}
            except (OSError, ValueError, KeyError) as err:
                raise CheckpointError(f"{path} cannot be read ({err}): remove the checkpoint directory, or run "
                                      "without --resume") from None
        return states

    def start(self) -> None:
        """Begin a fresh checkpoint of this case (dropping any older one)."""
        self.clear()
        self.directory.mkdir(parents=True)
        _atomic_write(self.directory / "case.toml", self.case_toml.encode())

    def save(self, n: int, state: dict) -> None:
        """Store the state of the step that computed layer ``n`` atomically."""
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
