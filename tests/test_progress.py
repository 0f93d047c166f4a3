"""Progress bars (issue 6, item 3): drawn on terminals only, after a delay,
with layer counts, time left and details such as the cross sweep; silent
otherwise. Oracle: the text written to a stand-in terminal stream."""
import io

import mzpdf
from mzpdf.progress import Progress


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_counts_notes_and_closes():
    out = FakeTerminal()
    bar = Progress("case", "layers", stream=out, delay=0.0)
    bar(2, 4)
    bar.note("layer 3: cross sweep 2")
    assert bar.line().startswith("case: [############------------] 2/4 layers")
    assert bar.line().endswith("(layer 3: cross sweep 2)") and "s left" in bar.line()
    bar(4, 4)  # the last count is always drawn
    bar.close()
    text = out.getvalue()
    assert "2/4 layers" in text and "4/4 layers" in text and text.endswith("\n")


def test_nothing_is_written_off_a_terminal_or_before_the_delay():
    quiet = io.StringIO()
    bar = Progress("case", stream=quiet, delay=0.0)
    bar(1, 2)
    bar.close()
    assert quiet.getvalue() == ""
    slow = FakeTerminal()
    bar = Progress("case", stream=slow, delay=60.0)
    bar(1, 2)
    bar.close()
    assert slow.getvalue() == ""


def test_a_tt_run_shows_layers_and_cross_sweeps(monkeypatch):
    term = FakeTerminal()
    monkeypatch.setattr("sys.stderr", term)
    monkeypatch.setattr(Progress, "DELAY", 0.0)
    case = mzpdf.load_case(_tt_case())
    mzpdf.run(case, progress=True)
    text = term.getvalue()
    assert "cross sweep" in text and f"{case.network.depth}/{case.network.depth} layers" in text


def test_quiet_run_writes_nothing(monkeypatch):
    term = FakeTerminal()
    monkeypatch.setattr("sys.stderr", term)
    monkeypatch.setattr(Progress, "DELAY", 0.0)
    mzpdf.run(mzpdf.load_case(_tt_case()), progress=False)
    assert term.getvalue() == ""


def _tt_case():
    return {"case": {"name": "tt"},
            "network": {"random": {"widths": [3, 3, 3], "activation": "tanh", "seed": 1, "init": "orthogonal",
                                   "noise": {"kind": "gaussian", "std": 0.5}}},
            "input": {"kind": "gaussian", "mean": [0.0, 0.0, 0.0], "std": 0.5},
            "solver": {"method": "tt", "tol": 1e-5}}
