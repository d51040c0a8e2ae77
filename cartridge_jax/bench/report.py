"""The benchmark's outputs for people: markdown tables and a plot of throughput."""

from __future__ import annotations

import io
import pathlib
from typing import Any, Sequence

from cartridge_jax._files import atomic_write_bytes
from cartridge_jax.bench.search import SWEEP_BATCH
from cartridge_jax.config import ConfigError

Column = tuple[str, str, str]  # (header, row key, format)


def _series(row: dict[str, Any]) -> tuple[str, str]:
    """The line a plotted row belongs to: (game or search policy, network)."""
    return row.get("game", row.get("policy", "")), row.get("network", "")


def markdown_table(rows: list[dict[str, Any]], columns: Sequence[Column]) -> str:
    """A markdown table; a value a row lacks (pgx skipped) shows as "-"."""
    lines = ["| " + " | ".join(header for header, _, _ in columns) + " |",
             "|" + "|".join("---" if index < 2 else "---:" for index in range(len(columns))) + "|"]
    for row in rows:
        cells = [form.format(row[key]) if row.get(key) is not None else "-"
                 for _, key, form in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def device_text(info: dict[str, Any]) -> str:
    versions = ", ".join(f"{name.removesuffix('_version')} {value}"
                         for name, value in info.items() if name.endswith("_version"))
    where = info["cpu"] if info["platform"] == "cpu" else info["device_kind"]
    return (f"{info['platform']} backend, {info['device_count']} device(s): {where}, "
            f"{info['cpu_cores']} CPU cores, load average {info['load_average_1min']:.1f} at "
            f"the start; {versions}")


def plot(result: dict[str, Any], path: pathlib.Path) -> None:
    """Random-play steps/s against batch size, self-play positions/s and search milliseconds per
    simulation against simulations (ours solid, pgx or mctx dashed), into a PNG at `path`."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError('matplotlib is not installed (the benchmark plots with it): '
                          'pip install -e ".[bench]"') from None
    matplotlib.use("Agg")  # files only, no display needed
    from matplotlib import pyplot

    panels = [(suite, x_key, y_key, x_label, y_label) for suite, x_key, y_key, x_label, y_label in (
        ("random_play", "batch_size", "steps_per_s", "games in the batch", "random-play steps/s"),
        ("selfplay", "simulations", "positions_per_s", "simulations per move",
         "self-play positions/s"),
        ("search", "simulations", "ms_per_sim", "simulations per search (128 games)",
         "milliseconds per simulation"),
    ) if result.get(suite)]
    if not panels:
        return
    figure, axes = pyplot.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    for axis, (suite, x_key, y_key, x_label, y_label) in zip(axes[0], panels):
        rows = result[suite]
        if suite == "search":  # the simulations sweep; the batch sweep is in the table
            rows = [row for row in rows if row["batch"] == SWEEP_BATCH]
        series = sorted({_series(row) for row in rows}, key=str)
        for index, name in enumerate(series):
            points = [row for row in rows if _series(row) == name]
            label = " ".join(part for part in name if part)
            color = f"C{index}"
            for who, style in (("ours", "-"), ("pgx", "--"), ("mctx", "--")):
                if f"{who}_{y_key}" in points[0]:
                    axis.plot([row[x_key] for row in points],
                              [row[f"{who}_{y_key}"] for row in points],
                              style, marker="o", color=color, label=f"{label} ({who})")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel(x_label)
        axis.set_ylabel(y_label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle("cartridge-jax (solid) against pgx or mctx (dashed)")
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    pyplot.close(figure)
    atomic_write_bytes(path, image.getvalue())
