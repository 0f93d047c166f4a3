"""The layer loop, written once.

A method that solves layer by layer (grid, tt, sparse) hands the loop a
:class:`LayerMarch`: the forward solve of one network cut into
:class:`Step` s (a run of noiseless layers and the noisy layer after it is one
step, as ``Network.segments`` cuts it; otherwise one layer a step). The loop
(:func:`march`) advances it step by step, times each step, reports progress,
stores each finished step in the checkpoint under the network's index of the
layer it computes, and on ``resume`` restores the steps the checkpoint holds,
consecutive from the first, before it computes the rest. It is the only place
that writes or reads a layer checkpoint (:class:`mzpdf.io.checkpoint.Checkpoint`),
used by :meth:`mzpdf.solvers.base.Solver.solve` and by the engines' own
``propagate`` for callers from Python.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import CheckpointError

__all__ = ["LayerMarch", "Step", "march", "network_steps"]

SECONDS = "wall_time_s"  # the key of a step's own wall time in its checkpoint state (written by the loop)


@dataclass(frozen=True)
class Step:
    """One step of a forward solve: the law of ``X_stop`` from the law of
    ``X_start`` through the given layers ``start .. stop - 1`` (``stop - start > 1``
    for a run of noiseless layers and the noisy one after it)."""

    start: int
    stop: int


def network_steps(network) -> list[Step]:
    """The steps of ``network`` (one per ``Network.segments`` entry)."""
    return [Step(start, stop) for start, stop in network.segments()]


class LayerMarch:
    """A forward solve advanced one step at a time by :func:`march`.

    Subclasses set ``steps`` (list of :class:`Step`) and ``depth`` (the
    given network's number of layers) and implement :meth:`advance`,
    :meth:`restore` and :meth:`finish`.
    """

    steps: list
    depth: int

    def advance(self, k: int) -> dict:  # pragma: no cover - interface
        """Compute step ``k``; return what :meth:`restore` needs to rebuild
        it (arrays and numbers, stored as one ``.npz`` file)."""
        raise NotImplementedError

    def restore(self, k: int, state: dict) -> None:  # pragma: no cover - interface
        """Rebuild step ``k`` from the state :meth:`advance` returned for it in
        an earlier run of the same case; raise KeyError or ValueError when
        ``state`` cannot be used."""
        raise NotImplementedError

    def finish(self, seconds: np.ndarray):  # pragma: no cover - interface
        """The method's forward solution, given each step's wall time."""
        raise NotImplementedError

    def context(self):
        """The context every step runs in (the sparse solver's: BLAS on one thread)."""
        return contextlib.nullcontext()


def march(stepper: LayerMarch, progress: Callable[[int, int], None] | None = None, checkpoint=None,
          resume: bool = False):
    """Run ``stepper`` to the end: ``(solution, resumed_from_layer)``.

    ``checkpoint`` (a :class:`~mzpdf.io.checkpoint.Checkpoint` or None)
    receives every computed step's state under the network index of the
    layer it computes; with ``resume`` the steps it holds, consecutive from
    the first, are restored instead of computed, and ``resumed_from_layer`` is
    the last layer restored (0: nothing restored). A checkpoint that cannot be
    used raises :class:`~mzpdf.errors.CheckpointError`; it is never silently
    ignored.
    """
    saved = {}
    if checkpoint is not None:
        if resume:
            saved = checkpoint.load()
        else:
            checkpoint.start()
    seconds = np.zeros(len(stepper.steps))
    restoring, resumed_from = bool(saved), 0
    with stepper.context():
        for k, step in enumerate(stepper.steps):
            state = saved.get(step.stop) if restoring else None
            if state is not None:
                try:
                    stepper.restore(k, state)
                    seconds[k] = float(state[SECONDS])
                except (KeyError, ValueError, IndexError) as err:
                    raise CheckpointError(f"{checkpoint.directory}: the state of layer {step.stop} cannot be used "
                                          f"({type(err).__name__}: {err}); remove the directory or run without "
                                          "--resume") from None
                resumed_from = step.stop
            else:
                if restoring and any(stop > step.stop for stop in saved):
                    raise CheckpointError(f"{checkpoint.directory}: holds layers {sorted(saved)} but not layer "
                                          f"{step.stop}, the end of step {k + 1} of {len(stepper.steps)} "
                                          "(a checkpoint of this case has no gaps); remove the directory or run "
                                          "without --resume")
                restoring = False
                start = time.perf_counter()
                state = stepper.advance(k)
                seconds[k] = time.perf_counter() - start
                if checkpoint is not None:
                    checkpoint.save(step.stop, {**state, SECONDS: seconds[k]})
            if progress is not None:
                progress(step.stop, stepper.depth)
        return stepper.finish(seconds), resumed_from
