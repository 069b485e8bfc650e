"""PNG and SVG plots of observed counts against the detector threshold, alarms marked.

Uses matplotlib's object API with the Agg canvas (no global pyplot state, no display).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_series(
    labels: Sequence[str],
    observed: Sequence[float],
    threshold: Sequence[float | None],
    alarm: Sequence[bool],
    *,
    title: str = "",
    fmt: Literal["png", "svg"] = "png",
) -> bytes:
    """Bars of observed counts, the threshold as a step line, alarms as red triangles.

    >>> plot_series(["w1", "w2"], [1, 5], [3, 3], [False, True], fmt="svg")[:5]
    b'<?xml'
    """
    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = list(range(len(observed)))
    ax.bar(x, observed, color="#9db4d0", label="observed", width=0.9)
    thr = [float("nan") if v is None else v for v in threshold]
    ax.step(x, thr, where="mid", color="#b03a2e", linewidth=1.6, label="threshold")
    ax_x = [i for i, a in enumerate(alarm) if a]
    if ax_x:
        ax.scatter(ax_x, [observed[i] for i in ax_x], marker="^", color="red", zorder=3,
                   label="alarm")
    step = max(1, len(labels) // 10)
    ax.set_xticks(x[::step], [labels[i] for i in x[::step]], rotation=30, fontsize=7)
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return buf.getvalue()
