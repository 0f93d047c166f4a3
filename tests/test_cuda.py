"""The CUDA backend (issue 6, item 1), checked without a GPU on numba's CUDA
simulator (each test runs in a subprocess with NUMBA_ENABLE_CUDASIM=1).

Oracle: the CPU sums on the same nodes (the numba and BLAS kernels, which
tests/test_operators.py checks against NumPy); agreement to 1e-12 relative,
the size of a reordered floating-point sum.
"""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import mzpdf


def _simulated(code: str) -> str:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_pair_sums_equal_the_cpu_sums_for_every_noise_law():
    out = _simulated("""
        import numpy as np
        import mzpdf
        from mzpdf.discretization import TensorGrid
        from mzpdf.solvers.grid.transfer import assemble_transition
        rng = np.random.default_rng(0)
        for noise in ({"kind": "gaussian", "std": 0.3}, {"kind": "uniform", "half_width": 0.4},
                      {"kind": "laplace", "scale": 0.2}):
            layer = mzpdf.Layer(rng.standard_normal((2, 3)), rng.standard_normal(2), "tanh", noise)
            src = rng.standard_normal((150, 3))
            w = rng.random(150)
            target = TensorGrid.from_box(np.array([[-1.5, 1.5], [-1.4, 1.6]]), 9, "trapezoid")
            cpu = assemble_transition(layer, src, w, target, "dense")
            gpu = assemble_transition(layer, src, w, target, "cuda")
            c = rng.random(150); z = rng.random(target.size)
            f_cpu, f_gpu = cpu.forward_sum(c), gpu.forward_sum(c)
            b_cpu, b_gpu = cpu.backward_sum(z), gpu.backward_sum(z)
            print(noise["kind"], np.max(np.abs(f_gpu - f_cpu)) / np.max(np.abs(f_cpu)),
                  np.max(np.abs(b_gpu - b_cpu)) / np.max(np.abs(b_cpu)))
    """)
    rows = [line.split() for line in out.strip().splitlines()]
    assert [r[0] for r in rows] == ["gaussian", "uniform", "laplace"]
    for _, fwd, bwd in rows:
        assert float(fwd) < 1e-12 and float(bwd) < 1e-12


def test_grid_solver_on_the_cuda_backend_equals_the_cpu_backend():
    out = _simulated("""
        import numpy as np
        import mzpdf
        net = mzpdf.random_network([2, 2, 1], activation="tanh", sigma_w=1.2, sigma_b=0.3, seed=1,
                                   noise={"kind": "gaussian", "std": 0.3})
        law = mzpdf.GaussianInput(np.zeros(2), 0.5 * np.eye(2))
        cpu = mzpdf.GridSolver(nodes=10).propagate(net, law)
        gpu_solver = mzpdf.GridSolver(nodes=10, backend="cuda")
        gpu = gpu_solver.propagate(net, law)
        g = mzpdf.NeuronObservable(0)
        q_cpu = mzpdf.GridSolver(nodes=10).pullback(cpu, g).mean
        q_gpu = gpu_solver.pullback(gpu, g).mean
        err = max(np.max(np.abs(a.values - b.values)) / np.max(np.abs(a.values))
                  for a, b in zip(cpu.densities[1:], gpu.densities[1:]))
        print(err, abs(q_gpu - q_cpu), gpu.diagnostics["backend"], gpu.diagnostics["kernel"])
    """)
    err, qerr, *note = out.split()
    assert float(err) < 1e-12 and float(qerr) < 1e-12
    assert "simulator" in " ".join(note) and "cuda" in note[-1]


def test_without_a_gpu_the_run_falls_back_to_the_cpu_and_says_so():
    from mzpdf.solvers.grid.cuda import cuda_status

    usable, reason = cuda_status()
    if usable:
        pytest.skip(f"a CUDA device is present ({reason})")
    net = mzpdf.random_network([2, 2], noise={"kind": "gaussian", "std": 0.3})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        solver = mzpdf.GridSolver(nodes=12, backend="cuda")
    assert any(issubclass(w.category, mzpdf.BackendWarning) and "running on the CPU" in str(w.message)
               for w in caught)
    sol = solver.propagate(net, mzpdf.GaussianInput(np.zeros(2), np.eye(2)))
    assert sol.diagnostics["backend"].startswith("cpu (cuda requested")
