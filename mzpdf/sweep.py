"""Parameter sweeps on Dask: ``mzpdf sweep CASE.toml --param key=v1,v2,...``.

A sweep is the Cartesian product of the ``--param`` value lists; each point
is the case with those overrides, run by :func:`mzpdf.run` on a Dask worker
and written to its own result file ``DIR/point_NNNN.h5``. ``DIR/summary.csv``
lists every point with its swept values, its status and headline results
(mass, mean of the last layer, ``E[g(X_L)]``, wall time).

Restartable: a point whose result file exists and holds the very same
effective case is skipped; a file of a different case is refused (exit 2)
unless ``overwrite``. Result files are written atomically, so a sweep killed
midway leaves only complete files, and the next run computes the rest.
A point that fails is reported in the summary (status ``failed`` and the
message) while the others finish; the sweep then exits with status 1.

Dask runs the points: a local cluster of ``workers`` processes (one thread
each) by default, or an existing scheduler by address.
"""
from __future__ import annotations

import csv
import itertools
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CaseError
from .progress import Progress

__all__ = ["SweepPoint", "dask_executor", "open_cluster", "plan_sweep", "run_sweep", "split_values"]

SUMMARY = "summary.csv"


def split_values(text: str) -> list[str]:
    """Split ``v1,v2,...`` at the commas outside brackets, braces and quotes."""
    out, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    return out


@dataclass
class SweepPoint:
    """One point of a sweep: its index, swept values and effective case."""

    index: int
    values: dict
    overrides: list
    path: Path
    toml: str = ""
    status: str = "pending"
    message: str = ""
    headline: dict = field(default_factory=dict)


def _parse_params(params) -> list[tuple[str, list[str]]]:
    from .io.case import parse_override

    axes = []
    for text in params:
        if not isinstance(text, str) or "=" not in text:
            raise CaseError("--param", "must have the form section.key=v1,v2,...", text)
        key, raw = text.split("=", 1)
        key = key.strip()
        parse_override(f"{key}=0")  # checks the key's form
        values = split_values(raw)
        if not raw.strip() or any(v == "" for v in values):
            raise CaseError(f"--param {key}", "must list one or more comma-separated values", raw)
        if key in (k for k, _ in axes):
            raise CaseError(f"--param {key}", "is given twice", text)
        axes.append((key, values))
    if not axes:
        raise CaseError("--param", "must be given at least once")
    return axes


def plan_sweep(case_path, params, out_dir=None, overwrite: bool = False) -> tuple[Path, list[SweepPoint]]:
    """Validate every point of the sweep before anything runs.

    Returns the output directory and the points, with ``status`` ``"done"``
    for points whose result file already holds the same case.

    Raises
    ------
    CaseError
        For a malformed ``--param``, a point whose case is invalid (naming the
        key, the rule and the value, and the point), or an existing result
        file of a different case without ``overwrite``.
    """
    from .io.case import load_case

    axes = _parse_params(params)
    base = load_case(case_path)
    out = Path(out_dir) if out_dir else Path(f"{base.name}-sweep")
    if out.exists() and not out.is_dir():
        raise CaseError("--output", "must name a directory", str(out))
    points = []
    for index, combo in enumerate(itertools.product(*(values for _, values in axes))):
        overrides = [f"{key}={value}" for (key, _), value in zip(axes, combo)]
        try:
            case = load_case(case_path, overrides)
        except CaseError as err:
            raise CaseError(err.key, f"{err.rule} (sweep point {index}: {', '.join(overrides)})", err.value) from None
        point = SweepPoint(index, dict(zip((k for k, _ in axes), combo)), overrides, out / f"point_{index:04d}.h5",
                           case.toml)
        if point.path.exists():
            stored = _stored_case(point.path)
            if stored == case.toml:
                point.status = "done"
            elif not overwrite:
                raise CaseError("--output", f"holds {point.path.name}, a result of a different case (pass "
                                            "--overwrite to recompute it, or choose another directory)", str(out))
        points.append(point)
    return out, points


def _stored_case(path: Path) -> str | None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return str(f["case"].attrs["toml"])
    except Exception:  # an unreadable file is recomputed (with --overwrite) or refused
        return None


def _run_point(case_path: str, overrides: list, path: str) -> dict:
    """Run one point on a worker: write its result file, return its headline
    (or the error) -- never raise, so that one failure cannot stop a sweep."""
    import warnings

    try:
        from . import run
        from .io.case import load_case
        from .io.hdf5 import write_results

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # recorded in the result file's /diagnostics/warnings
            results = run(load_case(case_path, overrides))
        write_results(results, path, overwrite=True)
        last = results.forward[-1]
        head = {"mass": float(last.mass), "mean": " ".join(f"{v:.6g}" for v in last.mean),
                "wall_time_s": round(results.wall_time_s, 3)}
        if results.backward is not None:
            head["E_g"] = f"{results.backward.mean:.8g}"
        if "warnings" in results.diagnostics:
            head["warnings"] = str(results.diagnostics["warnings"]).count("\n") + 1
        return {"status": "done", "headline": head}
    except Exception as err:  # noqa: BLE001 - reported per point
        return {"status": "failed", "message": f"{type(err).__name__}: {err}"}


def _client(workers: int | None, scheduler: str | None, key: str = "sweep"):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise CaseError(key, "needs Dask, which is not installed (pip install 'mzpdf[sweep]')") from None
    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError) as err:
            raise CaseError("--scheduler", f"must be the address of a running Dask scheduler ({err})",
                            scheduler) from None
    n = workers or min(os.cpu_count() or 1, 4)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    return Client(cluster), cluster


def dask_executor(client):
    """``executor(fn, items)`` -> ``[fn(item) for item in items]`` computed as
    tasks of ``client`` (a ``dask.distributed.Client``), in the items' order."""
    def execute(fn, items):
        return client.gather(client.map(fn, list(items), pure=False))

    return execute


def open_cluster(workers: int | None = None, scheduler: str | None = None):
    """``(client, cluster)`` of a local Dask cluster of ``workers`` processes,
    or of the running scheduler at ``scheduler`` (cluster None); close both."""
    return _client(workers, scheduler, "--scheduler" if scheduler else "--workers")


def run_sweep(case_path, params, out_dir=None, workers: int | None = None, scheduler: str | None = None,
              overwrite: bool = False, progress: bool = False) -> tuple[Path, list[SweepPoint]]:
    """Plan, run the missing points on Dask, write ``summary.csv``.

    Returns the output directory and every point with its status
    (``done``, ``skipped`` -- done by an earlier run -- or ``failed``).
    """
    out, points = plan_sweep(case_path, params, out_dir, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    for pattern in (".point_*.h5.tmp-*", f".{SUMMARY}.tmp-*"):  # left by a killed worker or sweep
        for stale in out.glob(pattern):
            stale.unlink(missing_ok=True)
    todo = [p for p in points if p.status != "done"]
    for p in points:
        if p.status == "done":
            p.status = "skipped"
            p.headline = _headline_from_file(p.path)
    _write_summary(out, points)
    if todo:
        client, cluster = _client(workers, scheduler)
        try:
            from dask.distributed import as_completed

            futures = {client.submit(_run_point, str(Path(case_path).resolve()), p.overrides, str(p.path.resolve()),
                                     key=f"mzpdf-{out.resolve().name}-{p.index}-{os.getpid()}-{time.time_ns()}",
                                     pure=False): p for p in todo}
            finished = len(points) - len(todo)
            bar = Progress(f"sweep {out.name}", "points", enabled=progress, delay=0.0)
            bar(finished, len(points))
            for future in as_completed(futures):
                p = futures[future]
                try:
                    result = future.result()
                except Exception as err:  # a worker died under this point
                    result = {"status": "failed", "message": f"{type(err).__name__}: {err}"}
                p.status = result["status"]
                p.message = result.get("message", "")
                p.headline = result.get("headline", {})
                finished += 1
                _write_summary(out, points)
                failed = sum(q.status == "failed" for q in points)
                bar(finished, len(points))
                if failed:
                    bar.note(f"{failed} failed")
            bar.close()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return out, points


def _headline_from_file(path: Path) -> dict:
    from .io.hdf5 import read_results

    try:
        r = read_results(path)
    except Exception:  # noqa: BLE001
        return {}
    last = r.forward[-1]
    head = {"mass": float(last.mass), "mean": " ".join(f"{v:.6g}" for v in last.mean),
            "wall_time_s": round(r.wall_time_s, 3)}
    if r.backward is not None:
        head["E_g"] = f"{r.backward.mean:.8g}"
    return head


_COLUMNS = ("mass", "mean", "E_g", "wall_time_s", "warnings")


def _write_summary(out: Path, points: list[SweepPoint]) -> Path:
    """``summary.csv``: one row per point (written atomically)."""
    keys = list(points[0].values) if points else []
    path = out / SUMMARY
    tmp = out / f".{SUMMARY}.tmp-{os.getpid()}"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["point", *keys, "status", "file", *_COLUMNS, "message"])
        for p in points:
            w.writerow([p.index, *(p.values[k] for k in keys), p.status, p.path.name,
                        *(p.headline.get(c, "") for c in _COLUMNS), re.sub(r"\s+", " ", p.message)])
    os.replace(tmp, path)
    return path
