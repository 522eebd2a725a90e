"""Run outputs: atomic file writes, ``metrics.csv``, ``summary.json`` statistics over seeds, and curve plots.

Metrics are dicts of arrays shaped ``[seeds, updates, ...]``; trailing axes (agents, states) become columns
``name/i/j``. Given the environment's agent groups, a metric whose first trailing axis has one entry per agent is
written per group: a group of at most ``PER_AGENT_COLUMNS_MAX`` agents keeps one column per agent (``name/i/j``, i
the agent's index), a larger one gets its statistics over agents (``name/GROUP/mean/j``, ``.../min/j``,
``.../max/j``), so the width of ``metrics.csv`` and ``summary.json`` does not grow with the population.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from jaxmarl_core.spaces import AgentGroup

PER_AGENT_COLUMNS_MAX = 16  # groups up to this size keep one column per agent; larger ones are aggregated
GROUP_STATISTICS = (("mean", np.mean), ("min", np.min), ("max", np.max))


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


def flatten_metrics(metrics: dict[str, Any], lead: int, groups: Sequence[AgentGroup] = (),
                    per_agent_max: int = PER_AGENT_COLUMNS_MAX) -> dict[str, np.ndarray]:
    """{name: [*lead_axes, ...]} -> {column: [*lead_axes]}: one column per trailing index ('name/i/j'), except that
    per-agent metrics [*lead_axes, N, ...] of groups larger than ``per_agent_max`` give the group's mean, min and
    max over its agents ('name/GROUP/mean/j'). Without groups, or with none that large, every index is a column."""
    num_agents = sum(g.size for g in groups)
    aggregate = any(g.size > per_agent_max for g in groups)
    columns = {}
    for name, value in metrics.items():
        value = np.asarray(value)
        if aggregate and value.ndim > lead and value.shape[lead] == num_agents:
            columns.update(_group_columns(name, value, lead, groups, per_agent_max))
        else:
            columns.update(_index_columns(name, value, lead))
    return columns


def _index_columns(name: str, value: np.ndarray, lead: int) -> dict[str, np.ndarray]:
    trailing = value.shape[lead:]
    if not trailing:
        return {name: value}
    return {name + "/" + "/".join(map(str, idx)): value[(Ellipsis,) + idx] for idx in np.ndindex(*trailing)}


def _group_columns(name: str, value: np.ndarray, lead: int, groups: Sequence[AgentGroup],
                   per_agent_max: int) -> dict[str, np.ndarray]:
    """value [*lead_axes, N, ...] -> the columns of each group in agent order."""
    columns = {}
    start = 0
    for group in groups:
        part = np.take(value, np.arange(start, start + group.size), axis=lead)  # [*lead_axes, size, ...]
        if group.size <= per_agent_max:
            for i in range(group.size):
                columns.update(_index_columns(f"{name}/{start + i}", np.take(part, i, axis=lead), lead))
        else:
            for stat, fn in GROUP_STATISTICS:
                columns.update(_index_columns(f"{name}/{group.name}/{stat}", fn(part, axis=lead), lead))
        start += group.size
    return columns


def metrics_csv(metrics: dict[str, Any], updates: np.ndarray, seeds: np.ndarray, groups: Sequence[AgentGroup] = (),
                per_agent_max: int = PER_AGENT_COLUMNS_MAX) -> str:
    """CSV text with one row per (seed, logged update). metrics: {name: [S, U, ...]}; updates: [U]; seeds: [S];
    groups: the environment's agent groups (columns as ``flatten_metrics``)."""
    cols = flatten_metrics(metrics, 2, groups, per_agent_max)
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
    from scipy import special  # stats.t.ppf's own function, without scipy.stats's import

    values = np.asarray(values, np.float64)
    n = values.shape[0]
    mean = float(values.mean())
    if n < 2:
        return {"mean": mean, "ci95_low": mean, "ci95_high": mean, "std": 0.0, "n": n}
    std = float(values.std(ddof=1))
    half = float(special.stdtrit(n - 1, 0.975) * std / np.sqrt(n))
    return {"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "std": std, "n": n}


def summarize(final_metrics: dict[str, Any], groups: Sequence[AgentGroup] = (),
              per_agent_max: int = PER_AGENT_COLUMNS_MAX) -> dict[str, dict[str, float]]:
    """{name: [S, ...]} (metrics after the last update) -> {column: mean and 95% interval over seeds}; columns as
    ``flatten_metrics`` with the environment's agent groups."""
    return {col: mean_ci95(v) for col, v in flatten_metrics(final_metrics, 1, groups, per_agent_max).items()}


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (the ``plot`` extra: ``pip install -e .[plot]``)."""
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


def plot_curves(metrics: dict[str, Any], updates: np.ndarray, path: str, title: str = "",
                groups: Sequence[AgentGroup] = ()) -> None:
    """One panel per metric: the mean over seeds of each column (as ``flatten_metrics`` with the environment's agent
    groups) with its 95% band; saved atomically as PNG."""
    from scipy import stats

    plt = pyplot()
    names = list(metrics)
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.5 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for col, v in flatten_metrics({name: metrics[name]}, 2, groups).items():
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
