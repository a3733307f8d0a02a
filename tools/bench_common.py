"""What the bench scripts share: their error, percentiles, and the entry point that
turns a BenchError into a one-line failure and exit 1."""
from __future__ import annotations

import sys
from typing import Callable


class BenchError(Exception):
    pass


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile, linearly interpolated (nan for no samples)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run(main: Callable[[], int]) -> None:
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"[bench] FAILED: {e}", file=sys.stderr)
        sys.exit(1)
