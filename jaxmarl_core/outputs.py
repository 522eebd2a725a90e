"""Run outputs: atomic file writes, ``metrics.csv``, ``summary.json`` statistics over seeds, and curve plots.

Metrics are dicts of arrays shaped ``[seeds, updates, ...]``; trailing axes (agents, states) become columns
``name/i/j``.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from typing import Any

import numpy as np


def atomic_write(path: str, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and ``os.replace``; the file gets
    the permissions a plain ``open`` would give it (mkstemp's are owner-only)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(x):
    if isinstance(x, (np.generic,)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def flatten_metrics(metrics: dict[str, Any], lead: int) -> dict[str, np.ndarray]:
    """{name: [*lead_axes, ...]} -> {column: [*lead_axes]}, one column per trailing index ('name/i/j')."""
    columns = {}
    for name, value in metrics.items():
        value = np.asarray(value)
        trailing = value.shape[lead:]
        if not trailing:
            columns[name] = value
            continue
        for idx in np.ndindex(*trailing):
            columns[name + "/" + "/".join(map(str, idx))] = value[(Ellipsis,) + idx]
    return columns


def metrics_csv(metrics: dict[str, Any], updates: np.ndarray, seeds: np.ndarray) -> str:
    """CSV text with one row per (seed, logged update). metrics: {name: [S, U, ...]}; updates: [U]; seeds: [S]."""
    cols = flatten_metrics(metrics, lead=2)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["seed", "update", *cols])
    for s_i, seed in enumerate(seeds):
        for u_i, update in enumerate(updates):
            writer.writerow([int(seed), int(update), *(_fmt(c[s_i, u_i]) for c in cols.values())])
    return out.getvalue()


def _fmt(x) -> str:
    return repr(float(x)) if np.issubdtype(np.asarray(x).dtype, np.floating) else str(int(x))


def mean_ci95(values: np.ndarray) -> dict[str, float]:
    """Mean and a two-sided 95% Student-t interval of the mean over the first axis (seeds)."""
    from scipy import stats

    values = np.asarray(values, np.float64)
    n = values.shape[0]
    mean = float(values.mean())
    if n < 2:
        return {"mean": mean, "ci95_low": mean, "ci95_high": mean, "std": 0.0, "n": n}
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n))
    return {"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "std": std, "n": n}


def summarize(final_metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{name: [S, ...]} (metrics after the last update) -> {column: mean and 95% interval over seeds}."""
    return {col: mean_ci95(v) for col, v in flatten_metrics(final_metrics, lead=1).items()}


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str, dpi: int = 100) -> None:
    """Render ``fig`` as PNG, close it, and write it to ``path`` atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    pyplot().close(fig)
    atomic_write(path, buf.getvalue())


def plot_curves(metrics: dict[str, Any], updates: np.ndarray, path: str, title: str = "") -> None:
    """One panel per metric: the mean over seeds of each column with its 95% band; saved atomically as PNG."""
    from scipy import stats

    plt = pyplot()
    names = list(metrics)
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.5 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for col, v in flatten_metrics({name: metrics[name]}, lead=2).items():
            v = np.asarray(v, np.float64)  # [S, U]
            mean = v.mean(0)
            ax.plot(updates, mean, label=col, lw=1.2)
            if v.shape[0] > 1:
                half = stats.t.ppf(0.975, v.shape[0] - 1) * v.std(0, ddof=1) / np.sqrt(v.shape[0])
                ax.fill_between(updates, mean - half, mean + half, alpha=0.2)
        ax.set_title(name)
        ax.set_xlabel("update")
        if len(ax.get_lines()) <= 10:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
