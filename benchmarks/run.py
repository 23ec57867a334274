"""The book's benchmarks: NumPy layers against torch on the CPU, fit's overhead, chapter times.

    python benchmarks/run.py            # everything, a markdown table on stdout
    python benchmarks/run.py --no-book  # skip the (minutes-long) per-chapter nbval timings

`make bench` runs it with one BLAS/OpenMP thread, as the targets below assume. NumPy and torch
are timed in the same process on the same float32 data; each number is the median of repeats
after a warm-up (helpers.timing.benchmark). benchmarks/RESULTS.md records one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from helpers import numpy_nn, numpy_norm, numpy_optim
from helpers.data import DeviceLoader
from helpers.timing import benchmark, format_seconds
from helpers.training import fit

ROOT = Path(__file__).resolve().parents[1]
rng = np.random.default_rng(0)


def row(name, ours, theirs, target=None):
    ratio = ours.median / theirs.median
    verdict = "" if target is None else ("ok" if ratio <= target else "SLOW")
    limit = "" if target is None else f"≤ {target:g}x"
    return (name, format_seconds(ours.median), format_seconds(theirs.median), f"{ratio:.2f}x",
            limit, verdict)


def bench_conv():
    x = rng.standard_normal((64, 16, 32, 32), dtype=np.float32)
    w = rng.standard_normal((32, 16, 3, 3), dtype=np.float32)
    b = np.zeros(32, np.float32)
    dy = rng.standard_normal((64, 32, 32, 32), dtype=np.float32)
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    dyt = torch.from_numpy(dy)

    def ours():
        numpy_nn.conv2d(x, w, b, padding=1)
        numpy_nn.conv2d_backward(dy, x, w, padding=1)

    def theirs():
        F.conv2d(xt, wt, bt, padding=1).backward(dyt)

    return row("conv2d 3x3, 64x16x32x32 -> 32 ch, fwd+bwd", benchmark(ours), benchmark(theirs), 3)


def bench_pool():
    x = rng.standard_normal((64, 32, 32, 32), dtype=np.float32)
    dy = rng.standard_normal((64, 32, 16, 16), dtype=np.float32)
    xt, dyt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dy)

    def ours():
        numpy_nn.max_pool2d(x, 2)
        numpy_nn.max_pool2d_backward(dy, x, 2)

    def theirs():
        F.max_pool2d(xt, 2).backward(dyt)

    return row("max_pool2d 2x2, 64x32x32x32, fwd+bwd", benchmark(ours), benchmark(theirs))


def bench_batch_norm():
    x = rng.standard_normal((64, 32, 32, 32), dtype=np.float32)
    dy = rng.standard_normal(x.shape, dtype=np.float32)
    gamma, beta = np.ones(32, np.float32), np.zeros(32, np.float32)
    mean, var = np.zeros(32, np.float32), np.ones(32, np.float32)
    xt, gt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, gamma, beta))
    mt, vt, dyt = torch.zeros(32), torch.ones(32), torch.from_numpy(dy)

    def ours():
        numpy_norm.batch_norm(x, gamma, beta, mean, var, training=True)
        numpy_norm.batch_norm_backward(dy, x, gamma)

    def theirs():
        F.batch_norm(xt, mt, vt, gt, bt, training=True).backward(dyt)

    return row("batch_norm train, 64x32x32x32, fwd+bwd", benchmark(ours), benchmark(theirs))


def bench_adam():
    shapes = [(64, 32, 3, 3), (64,), (128, 64, 3, 3), (128,), (256, 128, 3, 3), (256,),
              (1000, 256)]  # about 0.6 M parameters
    params = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    ours_opt = numpy_optim.Adam(params, lr=1e-3)
    tparams = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    for p, g in zip(tparams, grads, strict=True):
        p.grad = torch.from_numpy(g)
    torch_opt = torch.optim.Adam(tparams, lr=1e-3, foreach=True)
    return row("Adam step, 0.6 M parameters", benchmark(lambda: ours_opt.step(grads)),
               benchmark(torch_opt.step))


def bench_fit():
    """Images per second of fit against a bare loop on the same model and data."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2048, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (2048,), generator=g)

    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(32 * 8 * 8, 10),
        )  # fmt: skip

    def with_fit():
        net = model()
        loader = DeviceLoader(x, y, 128, shuffle=True, seed=0, device="cpu")
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        start = time.perf_counter()
        fit(net, loader, None, opt, 2, progress=False)
        return 2 * len(x) / (time.perf_counter() - start)

    def bare_loop():
        net = model()
        loader = DeviceLoader(x, y, 128, shuffle=True, seed=0, device="cpu")
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        start = time.perf_counter()
        for _ in range(2):
            net.train()
            for xb, yb in loader:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(xb), yb).backward()
                opt.step()
        return 2 * len(x) / (time.perf_counter() - start)

    with_fit(), bare_loop()  # warm-up
    rates = [(with_fit(), bare_loop()) for _ in range(3)]  # interleaved against drift
    fit_rate, loop_rate = max(r[0] for r in rates), max(r[1] for r in rates)
    ratio = fit_rate / loop_rate
    return ("fit vs bare loop, small CNN, 2048 images", f"{fit_rate:,.0f} img/s",
            f"{loop_rate:,.0f} img/s", f"{ratio:.2f}", "≥ 0.95", "ok" if ratio >= 0.95 else "SLOW")


def bench_book():
    rows = []
    env = dict(os.environ, OMP_NUM_THREADS="1", BOOK_PROGRESS="0", TQDM_DISABLE="1")
    for nb in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
             "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", str(nb)],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        budget = 300 if nb.name.startswith("09_") else 150
        verdict = "ok" if result.returncode == 0 and seconds <= budget else "FAIL"
        rows.append((f"nbval {nb.name}", f"{seconds:.1f} s", "", "", f"≤ {budget} s", verdict))
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"NumPy {np.__version__}, torch {torch.__version__}; "
            f"{torch.get_num_threads()} torch thread(s)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-book", action="store_true", help="skip the chapter timings")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [bench_conv(), bench_pool(), bench_batch_norm(), bench_adam(), bench_fit()]
    if not args.no_book:
        rows += bench_book()
    print(f"Machine: {machine()}\n")
    print("| benchmark | NumPy / fit | torch / bare loop | ratio | target | |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if torch.cuda.is_available():
        print("\nA GPU is present: see chapter 9 for the fast-path images-per-second table.")
    return 0 if all(r[-1] in ("ok", "") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
