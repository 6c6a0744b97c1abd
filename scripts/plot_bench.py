#!/usr/bin/env python3
"""Figures like the paper's (Gupta et al. 2021, Figures 1-3) from benchmark CSVs.

Reads the CSV files written by `topkformer bench attention`, `bench model` and
`bench ff` (and by scripts/peer_torch.py, whose rows have variant=torch) and
draws two panels side by side: peak memory (MiB) and time (s) against the
sequence length, or against d_ff for `bench ff`; both axes logarithmic, the x
axis in powers of two; one curve per variant.

    /usr/bin/python3 scripts/plot_bench.py docs/results/attention_cpu.csv \
        --out docs/figures/attention_cpu.png --title "One attention layer, 2-core CPU"

Columns are read by name, so extra columns are ignored. What the script needs:
`variant`, the x column (`length`, or `d_ff`), `time_median_s` (with
`time_min_s`/`time_max_s` as error bars when present) and `peak_bytes` (or the
column named by --memory-column). Rows whose value is empty or not a number
are left out of that panel. Every other column that differs between rows
(k, chunk_size, batch, ...) goes into the curve labels; those that are the
same in every row go into the subtitle. `bench model`'s `budget` column (how a
row ended): rows measured past the memory budget get hollow markers and the
label says from which length on; rows not run have no point.

Needs the Debian package python3-matplotlib (it pulls in python3-numpy); see
docs/plots.md.
"""

import argparse
import csv
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator  # noqa: E402

from figure_output import save_figure  # noqa: E402

MIB = 1024.0 * 1024.0

# Columns that hold a measurement rather than describe the setting.
MEASUREMENT = re.compile(
    r"^(time_|peak|reserved|rss|max_rss|tokens_per|examples_per)|(_bytes|_s|_seconds|_ms)$"
)

# A column that says how a row ended (`bench model`: budget = fits, does not fit,
# out of memory, skipped, not run) and the values that mean it was measured normally.
STATUS_COLUMNS = ("budget", "status", "fit")
FITS = ("", "fits", "ok")

# Stable colours and markers for the variants we know, so every figure uses the same.
STYLE = {
    "vanilla": ("tab:blue", "o"),
    "dense": ("tab:blue", "o"),
    "chunked": ("tab:orange", "s"),
    "topk": ("tab:green", "^"),
    "performer": ("tab:red", "D"),
    "torch": ("tab:gray", "x"),
}
EXTRA_COLOURS = ["tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "black"]
EXTRA_MARKERS = ["v", "P", "*", "h", "<", ">"]

DESCRIBE = {  # how a fixed column reads in the subtitle / a label
    "batch": "batch {}",
    "d_model": "d_model {}",
    "heads": "{} heads",
    "layers": "{} layers",
    "d_ff": "d_ff {}",
    "length": "{} tokens",
    "k": "k {}",
    "chunk_size": "chunk {}",
    "num_features": "{} features",
    "vocab": "vocab {}",
    "vocab_size": "vocab {}",
    "device": "{}",
    "threads": "{} threads",
}


def read_rows(paths):
    """All rows of all files, each a dict plus '_file' (the file's stem)."""
    rows, columns = [], []
    for path in paths:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                sys.exit(f"plot_bench: {path} has no header")
            for name in reader.fieldnames:
                if name not in columns:
                    columns.append(name)
            stem = os.path.splitext(os.path.basename(path))[0]
            for row in reader:
                row = {key.strip(): (value or "").strip() for key, value in row.items() if key}
                row["_file"] = stem
                rows.append(row)
    if not rows:
        sys.exit("plot_bench: the CSV files hold no rows")
    return rows, [c.strip() for c in columns]


def number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def detect_x(columns, override):
    if override:
        if override not in columns:
            sys.exit(f"plot_bench: --x {override}: no such column (have {', '.join(columns)})")
        return override
    # `bench ff` has d_ff but no heads; attention and model CSVs are against the length.
    if "d_ff" in columns and "heads" not in columns:
        return "d_ff"
    if "length" in columns:
        return "length"
    sys.exit("plot_bench: cannot tell the x axis (no 'length' or 'd_ff' column); use --x")


def describe(column, value):
    if column == "causal":
        return "causal" if value in ("1", "true") else "bidirectional"
    if column == "recompute":
        return "activation recomputation" if value in ("1", "true") else "no recomputation"
    if column == "feed_forward":
        return f"{value} feed-forward"
    if column == "backward":
        return "forward + backward" if value in ("1", "true") else "forward only"
    template = DESCRIBE.get(column, column + " {}")
    return template.format(value)


def power_of_two_label(value):
    value = int(round(value))
    if value >= 1024 and value % 1024 == 0:
        return f"{value // 1024}K"
    return str(value)


def style_for(variant, index):
    if variant in STYLE:
        return STYLE[variant]
    return EXTRA_COLOURS[index % len(EXTRA_COLOURS)], EXTRA_MARKERS[index % len(EXTRA_MARKERS)]


def main():
    parser = argparse.ArgumentParser(
        description="Plot peak memory and time against sequence length (or d_ff) from "
        "topkformer bench CSVs.")
    parser.add_argument("csv", nargs="+", help="CSV files from topkformer bench / peer_torch.py")
    parser.add_argument("--out", required=True, help="output image (PNG, or PDF/SVG by suffix)")
    parser.add_argument("--title", help="figure title, e.g. the machine")
    parser.add_argument("--x", help="x column (default: d_ff for `bench ff`, else length)")
    parser.add_argument("--memory-column", default="peak_bytes",
                        help="memory column in bytes (default peak_bytes; also "
                             "peak_reserved_bytes, peak_rss_bytes)")
    parser.add_argument("--time-column", default="time_median_s",
                        help="time column in seconds (default time_median_s)")
    parser.add_argument("--variants", help="comma-separated variants to keep, in legend order")
    parser.add_argument("--no-error-bars", action="store_true",
                        help="do not draw time_min_s..time_max_s")
    parser.add_argument("--dpi", type=int, default=150)
    args = parser.parse_args()

    rows, columns = read_rows(args.csv)
    if "variant" not in columns:
        sys.exit("plot_bench: no 'variant' column")
    x_column = detect_x(columns, args.x)
    if args.variants:
        keep = [v.strip() for v in args.variants.split(",") if v.strip()]
        rows = [r for r in rows if r.get("variant") in keep]
        if not rows:
            sys.exit(f"plot_bench: no rows for variants {args.variants}")
    else:
        keep = []

    # Columns that describe the setting: fixed ones go into the subtitle, varying
    # ones into the labels.
    status_column = next((c for c in columns if c in STATUS_COLUMNS), None)
    setting = [c for c in columns if c not in ("variant", x_column, status_column)
               and not MEASUREMENT.search(c)]
    # A column some files lack (e.g. k for PyTorch's rows) varies only if its
    # non-empty values differ.
    values = {c: {r.get(c, "") for r in rows} - {""} for c in setting}
    varying = [c for c in setting if len(values[c]) > 1]
    fixed = [c for c in setting if len(values[c]) == 1]

    # One curve per variant and varying setting; the file's name joins the key
    # only when the same curve comes from two files (e.g. two machines).
    def base_key(row):
        return (row["variant"],) + tuple(row.get(c, "") for c in varying)

    files_per_key = {}
    for row in rows:
        files_per_key.setdefault(base_key(row), set()).add(row["_file"])
    with_file = any(len(files) > 1 for files in files_per_key.values())

    curves = {}
    for row in rows:
        key = base_key(row) + ((row["_file"],) if with_file else ())
        curves.setdefault(key, []).append(row)

    def order(key):
        variant = key[0]
        rank = keep.index(variant) if variant in keep else (
            list(STYLE).index(variant) if variant in STYLE else len(STYLE))
        return (rank, variant) + tuple(
            (number(v), v) for v in key[1:])

    has_time = args.time_column in columns
    has_time_range = "time_min_s" in columns and "time_max_s" in columns
    has_memory = args.memory_column in columns
    if not has_time and not has_memory:
        sys.exit(f"plot_bench: neither '{args.memory_column}' nor '{args.time_column}' is a column")
    panels = []
    if has_memory:
        panels.append("memory")
    if has_time:
        panels.append("time")
    figure, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.6), squeeze=False)
    axes = dict(zip(panels, axes[0]))

    x_values = set()
    extra_index = 0
    for key in sorted(curves, key=order):
        variant = key[0]
        colour, marker = style_for(variant, extra_index)
        if variant not in STYLE:
            extra_index += 1
        label_parts = [describe(c, v) for c, v in zip(varying, key[1:len(varying) + 1]) if v]
        label = variant + (f" ({', '.join(label_parts)})" if label_parts else "")
        if with_file:
            label += f" [{key[-1]}]"
        points = sorted(curves[key], key=lambda r: number(r.get(x_column)))
        xs = [number(r.get(x_column)) for r in points]

        # Several curves of one variant (e.g. different k) get dashed lines after the first.
        same_variant = [k for k in sorted(curves, key=order) if k[0] == variant]
        linestyle = ["-", "--", ":", "-."][same_variant.index(key) % 4]

        # `bench model` marks each row: measured rows over the memory budget get hollow
        # markers, and the label says from which x on the variant stopped fitting.
        statuses = [r.get(status_column, "") if status_column else "" for r in points]
        failed = [i for i, text in enumerate(statuses) if text not in FITS]
        if failed:
            first = failed[0]
            label += f" [{statuses[first]} from {power_of_two_label(xs[first])}]"

        def draw(axis, ys, lows=None, highs=None):
            good = [i for i, (x, y) in enumerate(zip(xs, ys))
                    if not math.isnan(x) and not math.isnan(y) and y > 0]
            if not good:
                return
            gx, gy = [xs[i] for i in good], [ys[i] for i in good]
            filled = [j for j, i in enumerate(good) if i not in failed]
            axis.plot(gx, gy, marker=marker, color=colour, linestyle=linestyle, label=label,
                      markevery=filled)
            hollow = [j for j, i in enumerate(good) if i in failed]
            if hollow:
                axis.plot([gx[j] for j in hollow], [gy[j] for j in hollow], linestyle="none",
                          marker=marker, markerfacecolor="none", color=colour)
            if lows is not None and not args.no_error_bars:
                bars = [i for i in good if not math.isnan(lows[i]) and not math.isnan(highs[i])]
                if bars:
                    axis.errorbar([xs[i] for i in bars], [ys[i] for i in bars],
                                  yerr=[[max(ys[i] - lows[i], 0.0) for i in bars],
                                        [max(highs[i] - ys[i], 0.0) for i in bars]],
                                  fmt="none", ecolor=colour, elinewidth=1, capsize=3)
            x_values.update(gx)

        if has_memory:
            draw(axes["memory"], [number(r.get(args.memory_column)) / MIB for r in points])
        if has_time:
            bars = has_time_range and args.time_column == "time_median_s"
            draw(axes["time"], [number(r.get(args.time_column)) for r in points],
                 [number(r.get("time_min_s")) for r in points] if bars else None,
                 [number(r.get("time_max_s")) for r in points] if bars else None)

    x_name = {"length": "sequence length L (tokens)", "d_ff": "feed-forward width d_ff"}.get(
        x_column, x_column)
    memory_name = {
        "peak_bytes": "peak memory (MiB)",
        "peak_reserved_bytes": "peak reserved memory (MiB)",
        "peak_rss_bytes": "peak resident memory (MiB)",
        "process_peak_rss_bytes": "peak resident memory of the process (MiB)",
    }.get(args.memory_column, f"{args.memory_column} (MiB)")
    for name, axis in axes.items():
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        # Plain numbers at 1, 2, 5 x 10^n: readable when the data span one or two decades.
        axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
        axis.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
        if x_values:
            ticks = sorted(x_values)
            axis.xaxis.set_major_locator(FixedLocator(ticks))
            axis.xaxis.set_minor_locator(NullLocator())
            axis.set_xticklabels([power_of_two_label(t) for t in ticks])
            low, high = ticks[0], ticks[-1]
            axis.set_xlim(low / 2 ** 0.3, high * 2 ** 0.3)
        axis.set_xlabel(x_name)
        axis.grid(True, which="major", alpha=0.4)
        axis.grid(True, which="minor", axis="y", alpha=0.15)
        if name == "memory":
            axis.set_ylabel(memory_name)
            axis.set_title("Peak memory")
        else:
            axis.set_ylabel("time (s)" if args.time_column.endswith("_s") else args.time_column)
            axis.set_title("Time" + (" (median)" if args.time_column == "time_median_s" else ""))
        handles, _ = axis.get_legend_handles_labels()
        if handles:
            axis.legend(fontsize="small")

    subtitle = ", ".join(describe(c, next(iter(values[c]))) for c in fixed)
    if args.title:
        figure.suptitle(args.title + ("\n" + subtitle if subtitle else ""), fontsize="medium")
    elif subtitle:
        figure.suptitle(subtitle, fontsize="medium")
    save_figure(figure, args.out, args.dpi)
    print(f"wrote {args.out} ({len(curves)} curves, x = {x_column})")


if __name__ == "__main__":
    main()
