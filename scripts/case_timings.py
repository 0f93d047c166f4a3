"""Wall time of every example case through the command line, as a Markdown table.

Each case runs twice with ``mzpdf run CASE -o TMP.h5 --quiet --overwrite``, each
time in a fresh Python process (``sys.executable -m mzpdf``): the first run also
fills numba's on-disk cache where it is empty (cold), the second finds it filled
(what a user sees from then on). The times are the subprocess's wall time,
start-up and file writing included. Run it on a quiet machine: another load on
the cores inflates every number.

    python scripts/case_timings.py                     # every case in cases/
    python scripts/case_timings.py quickstart linear_gaussian
    python scripts/case_timings.py --write-docs        # also update the times quoted in cases/README.md

``--write-docs`` replaces each ``(~N s)`` / ``(~N min)`` quoted at the end of a
case's row of cases/README.md with that case's second-run time, so the
documented timings are this script's output.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"
DOC = CASES / "README.md"
_QUOTED = re.compile(r"\(~[0-9.]+ (?:s|min)\)")


def time_run(case: Path, out: Path, timeout: float) -> tuple[float, int, str]:
    """One ``mzpdf run`` of ``case`` in a fresh process: (wall seconds, exit status, last stderr line)."""
    argv = [sys.executable, "-m", "mzpdf", "run", str(case), "-o", str(out), "--quiet", "--overwrite"]
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, -1, f"timed out after {timeout:g} s"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return time.perf_counter() - start, done.returncode, lines[-1] if lines else ""


def format_time(seconds: float) -> str:
    """``~N s`` with two significant figures below 90 s, else ``~N min``."""
    if seconds >= 90:
        return f"~{seconds / 60:.0f} min"
    return f"~{float(f'{seconds:.2g}'):g} s"


def measure(names: list[str], timeout: float) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="mzpdf-timings-") as tmp:
        for name in names:
            case = CASES / f"{name}.toml"
            out = Path(tmp) / f"{name}.h5"
            first, code, note = time_run(case, out, timeout)
            second, code2, note2 = time_run(case, out, timeout) if code in (0, 3) else (float("nan"), code, note)
            rows.append({"case": name, "first": first, "second": second, "status": code2,
                         "note": note2 if code2 not in (0, 3) else ""})
            print(f"{name}: {first:.1f} s, then {second:.1f} s (exit {code2})", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| case | first run (s) | second run (s) | exit |", "| --- | ---: | ---: | ---: |"]
    for r in rows:
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(f"| `{r['case']}` | {r['first']:.1f} | {r['second']:.1f} | {r['status']}{note} |")
    return "\n".join(lines)


def write_docs(rows: list[dict], doc: Path = DOC) -> list[str]:
    """Replace the time quoted in each measured case's row of ``doc``; returns the cases updated."""
    times = {r["case"]: r["second"] for r in rows if r["status"] in (0, 3)}
    updated, out = [], []
    for line in doc.read_text().splitlines(keepends=True):
        match = re.match(r"\| `([A-Za-z0-9_]+)\.toml`", line)
        quoted = _QUOTED.findall(line)
        if match and match.group(1) in times and quoted:
            line = line[::-1].replace(quoted[-1][::-1], f"({format_time(times[match.group(1)])})"[::-1], 1)[::-1]
            updated.append(match.group(1))
        out.append(line)
    doc.write_text("".join(out))
    return updated


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cases", nargs="*", help="case names (default: every cases/*.toml)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed for one run (default 1800)")
    p.add_argument("--write-docs", action="store_true", help="update the times quoted in cases/README.md")
    args = p.parse_args(argv)
    names = args.cases or sorted(path.stem for path in CASES.glob("*.toml"))
    unknown = [n for n in names if not (CASES / f"{n}.toml").is_file()]
    if unknown:
        p.error(f"no case file cases/<name>.toml for {unknown}")
    rows = measure(names, args.timeout)
    print(markdown(rows))
    if args.write_docs:
        print(f"updated {DOC.relative_to(ROOT)}: {', '.join(write_docs(rows)) or 'no quoted time'}", file=sys.stderr)
    return 0 if all(r["status"] in (0, 3) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
