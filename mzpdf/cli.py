"""Command line: ``mzpdf run | validate | info``. No numerics here.

Exit status: 0 success; 2 an invalid case or argument (the message names the
dotted key, the rule and the value); 1 any other failure.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .errors import CaseError

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
    run.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    run.add_argument("--quiet", action="store_true", help="print nothing on success")

    val = sub.add_parser("validate", help="check a case file without running it")
    val.add_argument("case")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")

    info = sub.add_parser("info", help="summarize a result file")
    info.add_argument("result", help="HDF5 result file")
    return p


def _output_path(case, explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    if case.output_path:
        return Path(case.output_path)
    return Path(f"{case.name}.h5")


def _cmd_run(args) -> int:
    from .io.case import load_case
    from .io.hdf5 import describe, write_results
    from .run import run

    case = load_case(args.case, args.overrides)
    out = _output_path(case, args.output)
    if out.exists() and not args.overwrite:
        raise CaseError("output.path", "must not name an existing file (pass --overwrite to replace it)", str(out))
    results = run(case, progress=not args.quiet)
    write_results(results, out, overwrite=args.overwrite)
    if not args.quiet:
        print(describe(out))
    return 0


def _cmd_validate(args) -> int:
    from .io.case import load_case

    case = load_case(args.case, args.overrides)
    print(f"{args.case}: valid (case {case.name!r}, widths {case.network.widths}, method {case.solver.method})")
    return 0


def _cmd_info(args) -> int:
    from .io.hdf5 import describe

    print(describe(args.result))
    return 0


def main(argv=None) -> int:
    """Entry point of the ``mzpdf`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    command = {"run": _cmd_run, "validate": _cmd_validate, "info": _cmd_info}[args.command]
    try:
        return command(args)
    except CaseError as err:
        print(f"mzpdf: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # one line for the user; the traceback on request
        if os.environ.get("MZPDF_DEBUG"):
            raise
        print(f"mzpdf: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
