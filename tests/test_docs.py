"""The documentation matches the code (issue 7, items 3 and 4).

Oracles: every Python example in the README and in docs/*.md runs (their own
asserts check the numbers they print); every key, kind and name of the
case-file schema appears in the README's case-file reference; every dataset
a result file can hold is named in the README's HDF5 layout.
"""
import dataclasses
import re
from pathlib import Path

import h5py
import pytest

import mzpdf
from mzpdf.discretization.rules import RULES
from mzpdf.io.case import SECTIONS
from mzpdf.mz.spec import ProjectionSpec
from mzpdf.network import activations, inputs, loading, network, noise
from mzpdf.observables import OBSERVABLES
from mzpdf.solvers import SOLVERS
from mzpdf.theory import analysis

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
BLOCKS = [(path.name, i, block) for path in DOCS
          for i, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S))]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def test_docs_have_examples():
    assert len([b for b in BLOCKS if b[0] == "README.md"]) >= 4
    assert {"theory.md", "validation.md"} <= {p.name for p in DOCS}
    assert len([b for b in BLOCKS if b[0] == "theory.md"]) >= 3


@pytest.mark.parametrize("name, index, block", BLOCKS, ids=[f"{n}:{i}" for n, i, _ in BLOCKS])
def test_example_runs(name, index, block, tmp_path, monkeypatch):
    (tmp_path / "cases").symlink_to(ROOT / "cases")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, f"{name} example {index}", "exec"), {})


def _schema_names() -> set:
    names = set(SECTIONS)
    for method, cls in ((m, SOLVERS.get(m).options_class) for m in SOLVERS):
        names.add(method)
        names.update(f.name for f in dataclasses.fields(cls))
    names.update(loading._NETWORK_KEYS | loading._RANDOM_KEYS | network._LAYER_KEYS)
    names.update(activations.ACTIVATIONS.names())
    for kind in noise.NOISE_LAWS.names():
        names.add(kind)
        law = noise.NOISE_LAWS.get(kind)
        if getattr(law, "parameter", None):
            names.add(law.parameter)
    names.update(inputs.INPUT_LAWS.names())
    names.update({"mean", "cov", "std", "low", "high", "x", "weights", "components"})
    names.update(OBSERVABLES.names())
    names.update({"index", "coefficients", "offset", "points"})
    names.update(ProjectionSpec.KEYS)
    names.update(analysis.KEYS)
    names.update(RULES.names())
    return names


def test_case_file_reference_names_every_key_of_the_schema():
    text = _section("Case files")
    missing = sorted(n for n in _schema_names() if not re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", text))
    assert not missing, f"README case-file reference misses {missing}"


@pytest.mark.slow
def test_hdf5_layout_names_every_dataset(tmp_path):
    seen = []
    for name, overrides in (("mz_reduce_tanh", ["solver.nodes=12"]),
                            ("quickstart", ["solver.nodes=24", "montecarlo.samples=2000", "solver.max_seconds=0"]),
                            ("tt_tanh", ["solver.tol=1e-4", "montecarlo.samples=2000"]),
                            ("depth_analysis", ["solver.nodes=24"])):
        results = mzpdf.run(mzpdf.load_case(ROOT / "cases" / f"{name}.toml", overrides=overrides))
        mzpdf.write_results(results, tmp_path / f"{name}.h5")
        with h5py.File(tmp_path / f"{name}.h5") as f:
            f.visit(seen.append)
            seen.extend(f"attrs/{a}" for a in f.attrs)
    text = _section("Result file (HDF5)")
    parts = {re.sub(r"layer_\d+", "layer_NNN", p).split("/")[-1] for p in seen}
    missing = sorted(p for p in parts if not re.search(rf"(?<![\w]){re.escape(p)}(?![\w])", text))
    assert not missing, f"README HDF5 layout misses {missing}"


def test_every_example_case_is_described():
    listing = (ROOT / "cases" / "README.md").read_text()
    missing = [p.name for p in sorted((ROOT / "cases").glob("*.toml")) if f"`{p.name}" not in listing]
    assert not missing, f"cases/README.md does not describe {missing}"


def _architecture_tree() -> set[str]:
    """The modules that docs/architecture.md's "The tree" block lists, as paths."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("## The tree", 1)[1].split("```", 2)[1]
    stack: list[str] = []
    listed = set()
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        names = []
        for token in line.split():
            if not (token.endswith(".py") or token.endswith("/")):
                break
            names.append(token)
        del stack[depth:]
        for name in names:
            if name.endswith("/"):
                stack.append(name.rstrip("/"))
            else:
                listed.add("/".join(stack + [name]))
    return listed


def test_the_architecture_tree_lists_every_module():
    """docs/architecture.md's tree names every module of the package (a
    package's ``__init__.py`` aside) and nothing that is not there."""
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "mzpdf").rglob("*.py")
               if p.name != "__init__.py" or p.parent.name == "mzpdf"}
    listed = _architecture_tree()
    assert listed == on_disk, (sorted(on_disk - listed), sorted(listed - on_disk))
