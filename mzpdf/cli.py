"""Command line: ``mzpdf run | validate | info | plot | sweep``. No numerics here.

Exit status: 0 success; 2 an invalid case or argument (the message names the
dotted key, the rule and the value); 3 a run that completed but failed its
own accuracy checks (the result is written, with ``/diagnostics`` attribute
``accepted = 0`` and the ``reason``; ``--accept-inaccurate`` exits 0); 1 any
other failure. Errors are one line
on stderr, ``mzpdf: error: <message>``; set ``MZPDF_DEBUG=1`` for tracebacks.
``run`` refuses an existing result file before computing, and a failed run or
write leaves no result file behind; on success it prints one line naming the
file and the accuracy verdict (``mzpdf info`` prints the summary table).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import warnings
from pathlib import Path

from . import __version__
from .errors import CaseError, CheckpointError, MzpdfError

__all__ = ["main"]


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code is 2 as well; keep its text
        self.print_usage(sys.stderr)
        self.exit(2, f"mzpdf: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(prog="mzpdf", description="Probability densities through neural networks.")
    p.add_argument("--version", action="version", version=f"mzpdf {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    run = sub.add_parser("run", help="run a case file and write an HDF5 result")
    run.add_argument("case", help="case file (TOML)")
    run.add_argument("-o", "--output", help="result file (default: [output].path, else <case name>.h5)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a case entry (repeatable)")
    _add_unset(run)
    run.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    run.add_argument("--quiet", action="store_true", help="print nothing on success")
    run.add_argument("--resume", action="store_true",
                     help="continue an interrupted run of the same case from its layer checkpoints")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="run the independent parts of the solve (qmc: its replicates) on "
                                                   "a local Dask cluster of N processes; the numbers are the same")
    where.add_argument("--scheduler", help="... or on the running Dask scheduler at ADDRESS (tcp://host:port)")
    run.add_argument("--accept-inaccurate", action="store_true",
                     help="exit 0 even when the run fails its own accuracy checks (the result file still says "
                          "accepted = 0 and why)")
    run.add_argument("--strict", action="store_true",
                     help="fail (exit 1, no result file) on any numerical-health warning")

    val = sub.add_parser("validate", help="check a case file without running it")
    val.add_argument("case", help="case file (TOML)")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a case entry (repeatable)")
    _add_unset(val)

    info = sub.add_parser("info", help="summarize a result file")
    info.add_argument("result", help="HDF5 result file")

    plot = sub.add_parser("plot", help="draw a result file's figures (overview, marginals by layer, joint "
                                       "density, q0, memory) as PNG files")
    plot.add_argument("result", help="HDF5 result file")
    plot.add_argument("-o", "--output", help="overview image (default: the result's name with .png); the other "
                                             "figures go beside it as STEM-marginals.png, STEM-joint.png, ...")
    plot.add_argument("--overwrite", action="store_true", help="replace an existing image")
    sweep = sub.add_parser("sweep", help="run a case over a grid of parameter values on Dask")
    sweep.add_argument("case", help="case file (TOML)")
    sweep.add_argument("--param", dest="params", action="append", default=[], metavar="SECTION.KEY=V1,V2,...",
                       help="a swept case entry and its values (repeatable: the sweep is the product)")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="processes of the local Dask cluster (default: cores, at most 4)")
    where.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:port)")
    sweep.add_argument("-o", "--output", help="directory of the point files and summary.csv "
                                              "(default: <case name>-sweep)")
    sweep.add_argument("--overwrite", action="store_true", help="recompute points whose files hold another case")
    sweep.add_argument("--quiet", action="store_true", help="print nothing on success")
    return p


def _add_unset(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unset", dest="unset", action="append", default=[], metavar="SECTION.KEY",
                        help="remove a case entry before the --set overrides and validation (repeatable; a key "
                             "the case does not hold is an error)")


def _output_path(case, explicit: str | None) -> tuple[Path, str]:
    """The result path and the option or case key it came from (relative paths
    are relative to the current directory)."""
    if explicit:
        return Path(explicit), "--output"
    if case.output_path:
        return Path(case.output_path), "output.path"
    return Path(f"{case.name}.h5"), "output.path"


def _cmd_run(args) -> int:
    from .io.case import load_case
    from .io.checkpoint import Checkpoint
    from .solvers import check_memory

    case = load_case(args.case, args.overrides, unset=args.unset)
    if case.method_reason and not args.quiet:
        print(f"mzpdf: note: {case.method_reason}", file=sys.stderr)
    out, key = _output_path(case, args.output)
    if out.is_dir():
        raise CaseError(key, "must name a file, not a directory", str(out))
    if (out.exists() or out.is_symlink()) and not args.overwrite:  # refuse before computing
        raise CaseError(key, "must not name an existing file (pass --overwrite to replace it)", str(out))
    checkpoint = Checkpoint(out.with_name(f".{out.name}.checkpoint"), case.toml)
    if checkpoint.directory.exists() and not args.resume and not args.quiet:
        print(f"mzpdf: note: starting afresh; {checkpoint.directory} holds an interrupted run "
              "(pass --resume to continue it)", file=sys.stderr)
    check_memory(case)  # before importing h5py and the numerical kernels: a refusal takes milliseconds
    from .io.hdf5 import write_results
    from .io.summary import headline
    from .pipeline import run

    with _cluster(args, case) as executor:
        results = run(case, progress=not args.quiet, checkpoint=checkpoint, resume=args.resume, executor=executor)
    health = results.diagnostics.get("warnings")
    if health and args.strict:
        raise StrictError(f"--strict: numerical-health warnings, no result written (the layer checkpoints in "
                          f"{checkpoint.directory} are kept: run again with --resume, without --strict, to write "
                          f"the file): {'; '.join(health.splitlines())}")
    write_results(results, out, overwrite=args.overwrite)
    checkpoint.clear()
    if not args.quiet:  # the summary table is `mzpdf info`'s: printed once, when asked for
        print(f"wrote {out}: {headline(results)}\nsummary: mzpdf info {shlex.quote(str(out))}")
    if not results.accepted:
        print(f"mzpdf: inaccurate: {results.reason} (written to {out} with /diagnostics accepted = 0"
              + ("" if args.accept_inaccurate else "; --accept-inaccurate exits 0") + ")", file=sys.stderr)
        return 0 if args.accept_inaccurate else 3
    return 0


@contextlib.contextmanager
def _cluster(args, case):
    """The executor of ``--workers`` / ``--scheduler`` (None without them),
    closed afterwards; refused for a method that computes on this machine only."""
    if args.workers is None and args.scheduler is None:
        yield None
        return
    from .solvers import SOLVERS

    flag, value = ("--workers", args.workers) if args.workers is not None else ("--scheduler", args.scheduler)
    if args.workers is not None and args.workers < 1:
        raise CaseError("--workers", "must be a positive integer", args.workers)
    if not SOLVERS.get(case.solver.method).capabilities.distributed:
        takes = [n for n in SOLVERS if SOLVERS.get(n).capabilities.distributed]
        raise CaseError(flag, f"runs parts of a solve on a Dask cluster for {', '.join(takes)} only (solver.method = "
                              f"{case.solver.method!r} computes on this machine: drop {flag})", value)
    from .sweep import dask_executor, open_cluster

    client, cluster = open_cluster(args.workers, args.scheduler)
    try:
        yield dask_executor(client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


class StrictError(MzpdfError):
    """A run that met a numerical-health warning under ``--strict``."""


def _cmd_validate(args) -> int:
    from .io.case import load_case
    from .memory import format_bytes
    from .solvers import check_memory

    case = load_case(args.case, args.overrides, unset=args.unset)
    need = check_memory(case)  # the memory guard of `mzpdf run`: a case that cannot fit is not valid
    extras = [name for name, part in (("observable", case.observable), ("montecarlo", case.montecarlo))
              if part is not None]
    print(f"{args.case}: valid (case {case.name!r}, network widths {list(case.network.widths)}, "
          f"method {case.solver.method}" + "".join(f", {name}" for name in extras) +
          f"; needs about {format_bytes(need)} of memory)")
    if case.method_reason:
        print(case.method_reason)
    return 0


def _cmd_info(args) -> int:
    from .io.hdf5 import describe

    print(describe(args.result))
    return 0


def _cmd_plot(args) -> int:
    from .io.hdf5 import read_results
    from .plot import figure_paths, figures

    out = Path(args.output) if args.output else Path(args.result).with_suffix(".png")
    results = read_results(args.result)
    import matplotlib.pyplot as plt

    figs = figures(results)
    paths = figure_paths(out, figs)
    for path in paths.values():  # refuse before writing anything
        if path.exists() and not args.overwrite:
            for fig in figs.values():
                plt.close(fig)
            raise CaseError("--output", "must not name an existing file (pass --overwrite to replace it)", str(path))
    tmps = {name: path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}") for name, path in paths.items()}
    try:
        for name, fig in figs.items():
            fig.savefig(tmps[name], dpi=110)
        for name in figs:
            os.replace(tmps[name], paths[name])
    finally:
        for fig in figs.values():
            plt.close(fig)
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def _cmd_sweep(args) -> int:
    from .sweep import SUMMARY, run_sweep

    if args.workers is not None and args.workers < 1:
        raise CaseError("--workers", "must be a positive integer", args.workers)
    out, points = run_sweep(args.case, args.params, args.output, workers=args.workers, scheduler=args.scheduler,
                            overwrite=args.overwrite, progress=not args.quiet and sys.stderr.isatty())
    failed = [p for p in points if p.status == "failed"]
    if not args.quiet or failed:
        done = sum(p.status == "done" for p in points)
        skipped = sum(p.status == "skipped" for p in points)
        print(f"{out}: {len(points)} points, {done} computed, {skipped} already done, {len(failed)} failed; "
              f"summary in {out / SUMMARY}")
        for p in failed:
            print(f"  point {p.index} ({', '.join(p.overrides)}): {p.message}", file=sys.stderr)
    return 1 if failed else 0


def _debug() -> bool:
    return os.environ.get("MZPDF_DEBUG", "") not in ("", "0")


def main(argv=None) -> int:
    """Entry point of the ``mzpdf`` console script; returns the exit status
    (0 success, 2 invalid case or argument, 1 any other failure)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors (2), --help and --version (0)
        return exc.code if isinstance(exc.code, int) else 1
    command = {"run": _cmd_run, "validate": _cmd_validate, "info": _cmd_info, "plot": _cmd_plot,
               "sweep": _cmd_sweep}[args.command]
    shown = warnings.showwarning
    if not _debug():  # one line per warning for the command line; the Python API keeps Python's format
        warnings.showwarning = _show_warning
    try:
        return command(args)
    except (CaseError, CheckpointError) as err:  # the case or the command line asks for what cannot be done
        if _debug():
            raise
        print(f"mzpdf: error: {_one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mzpdf: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one line for the user; the traceback on request
        if _debug():
            raise
        if isinstance(err, (MzpdfError, OSError)):
            text = str(err)
        else:  # not an error mzpdf raises on purpose: say what it was
            text = f"{type(err).__name__}: {err} (set MZPDF_DEBUG=1 for a traceback)"
        print(f"mzpdf: error: {_one_line(text)}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = shown


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the command line: ``mzpdf: warning: <message>``
    on one line, without the file, line number or source line."""
    stream = sys.stderr if file is None else file
    try:
        stream.write(f"mzpdf: warning: {_one_line(str(message))}\n")
    except (AttributeError, OSError):  # no stream to write to (closed stderr): as Python does, say nothing
        pass


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
