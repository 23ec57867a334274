"""What every exercise check shares: how it fails, how it passes, and how it compares.

- ``fail(name, case, problem, hint)``: the AssertionError a check raises, reading
  "check_x: <problem> for <case>. Hint: <hint>" (without "for <case>" when case is None).
- ``passed(name, n_cases)``: prints "check_x: passed on <n> random cases".
- ``written_by_hand(check, module, names)``: a context manager under which ``module.<name>``
  raises "this exercise asks you to write it yourself", so an answer cannot pass by calling
  the book's own implementation; the originals are restored afterwards, also on errors.
- ``compare(name, case, ours, ref, hint, *, rtol, atol, what)``: one tolerance rule for every
  check: with err = max |ours - ref| over all entries and scale = max |ref|, the answer passes
  when err <= atol + rtol * scale. ``ours`` and ``ref`` may be NumPy arrays, tensors or
  numbers; both are compared in float64, after their shapes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType

import numpy as np
import torch


def fail(name: str, case: str | None, problem: str, hint: str) -> AssertionError:
    """The error a check raises: what went wrong, on which case, and a hint."""
    where = f" for {case}" if case else ""
    return AssertionError(f"{name}: {problem}{where}. Hint: {hint}")


def passed(name: str, n_cases: int) -> None:
    print(f"{name}: passed on {n_cases} random cases")


@contextlib.contextmanager
def written_by_hand(check: str, module: ModuleType, names: Iterable[str],
                    answer: Callable | None = None,
                    own: Iterable[str] = ()) -> Iterator[None]:
    """Replace ``module.<name>`` for each name by a function that fails the check; restore
    every original afterwards, also when the answer raises.

    With ``answer`` (the student's function), the same goes for the answer's own namespace
    (a notebook's globals): every name bound there to one of those functions (``from
    helpers.numpy_nn import conv2d``), and each name in ``own`` defined there, such as the
    chapter's own ``conv2d_naive``.
    """
    names = tuple(names)
    saved = {name: getattr(module, name) for name in names}

    def refuse(label):
        def helper_not_allowed(*args, **kwargs):
            raise AssertionError(
                f"{check}: this exercise asks you to write it yourself; do not call {label}"
            )

        return helper_not_allowed

    namespace = getattr(answer, "__globals__", None)
    if namespace is None:
        namespace = {}
    label_of = {id(value): f"{module.__name__}.{name}" for name, value in saved.items()}
    shadowed = {key: value for key, value in list(namespace.items())
                if id(value) in label_of or key in set(own)}  # fmt: skip
    try:
        for name in names:
            setattr(module, name, refuse(f"{module.__name__}.{name}"))
        for key, value in shadowed.items():
            namespace[key] = refuse(label_of.get(id(value), key))
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
        for key, value in shadowed.items():
            namespace[key] = value


def _as_float64(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def compare(
    name: str,
    case: str | None,
    ours,
    ref,
    hint: str,
    *,
    rtol: float,
    atol: float,
    what: str = "output",
    tensor: bool = False,
) -> float:
    """Raise ``fail(...)`` unless ``ours`` has ``ref``'s shape and
    max |ours - ref| <= atol + rtol * max |ref|; returns that max error. ``tensor=True``:
    ``ours`` must also be a torch.Tensor (for exercises written in torch)."""
    if tensor and not isinstance(ours, torch.Tensor):
        raise fail(name, case, f"expected a torch.Tensor, got {type(ours).__name__}", hint)
    try:
        ours_arr = _as_float64(ours)
    except (TypeError, ValueError) as err:
        raise fail(name, case, f"{what} is not an array of numbers ({err})", hint) from None
    ref_arr = _as_float64(ref)
    if ours_arr.shape != ref_arr.shape:
        raise fail(name, case, f"{what} shape {ours_arr.shape}, expected {ref_arr.shape}", hint)
    if ref_arr.size == 0:
        return 0.0
    err = float(np.max(np.abs(ours_arr - ref_arr)))
    scale = float(np.max(np.abs(ref_arr)))
    allowed = atol + rtol * scale
    if not err <= allowed:  # also catches NaN
        relative = err / scale if scale > 0 else float("inf")
        raise fail(
            name, case,
            f"{what} differs from the reference: max error {err:.2e} (relative error "
            f"{relative:.2e}), allowed {allowed:.2e}", hint,
        )  # fmt: skip
    return err
