#!/usr/bin/env python3
"""Learning curves from topkformer run directories.

Reads RUN/metrics.jsonl of each run (docs/training.md): the "train" lines
(step, loss, ...) and the "eval" lines (step, split, loss, accuracy or
perplexity), and draws two panels: training loss against step, and the
evaluation metric against step; one curve per run, labelled by the run
directory's name.

    /usr/bin/python3 scripts/plot_runs.py runs/topk runs/vanilla --out curves.png --smooth 0.6

A run that was resumed may have logged some steps twice (those after its last
checkpoint, before it stopped): the lines written later win. Lines of other
types ("resume") are ignored, and so are lines that do not parse (a run killed
mid-write). The evaluation metric is, by default, accuracy when every run has
it (classifiers), else perplexity (language models, log-scale axis), else the
evaluation loss; --metric chooses. With several evaluated splits, --split picks
one (default: every split, dashed after the first).

Needs the Debian package python3-matplotlib; see docs/plots.md.
"""

import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator  # noqa: E402

from figure_output import save_figure  # noqa: E402


def read_metrics(run):
    path = run if run.endswith(".jsonl") else os.path.join(run, "metrics.jsonl")
    if not os.path.isfile(path):
        sys.exit(f"plot_runs: {path} not found (give a run directory or its metrics.jsonl)")
    train, evals = [], []
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                print(f"plot_runs: {path}:{number}: not JSON, skipped", file=sys.stderr)
                continue
            if not isinstance(record, dict) or "step" not in record:
                continue
            kind = record.get("type")
            if kind == "train":
                train.append(record)
            elif kind == "eval":
                evals.append(record)
    return path, latest_per_step(train), evals


def latest_per_step(records, key=lambda r: r["step"]):
    """After a resume the log may go back in steps: keep, per step, the last record written."""
    latest = {}
    for record in records:
        latest[key(record)] = record
    return [latest[k] for k in sorted(latest)]


def smooth(values, weight):
    """TensorBoard's smoothing: a debiased exponential moving average."""
    if weight <= 0:
        return list(values)
    result, average, correction = [], 0.0, 0.0
    for value in values:
        average = weight * average + (1 - weight) * value
        correction = weight * correction + (1 - weight)
        result.append(average / correction)
    return result


def run_labels(runs):
    """The run directory's name; more of its path where two runs share a name."""
    parts = [os.path.normpath(os.path.abspath(r)).split(os.sep) for r in runs]
    parts = [p[:-1] if p[-1] == "metrics.jsonl" else p for p in parts]
    depth = 1
    while depth < max(len(p) for p in parts):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
        depth += 1
    return ["/".join(p[-depth:]) for p in parts]


def main():
    parser = argparse.ArgumentParser(
        description="Training loss and evaluation metric against step from run directories.")
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run directories (or their metrics.jsonl)")
    parser.add_argument("--out", required=True, help="output image (PNG, or PDF/SVG by suffix)")
    parser.add_argument("--title", help="figure title")
    parser.add_argument("--labels", help="comma-separated curve labels, one per run")
    parser.add_argument("--smooth", type=float, default=0.0,
                        help="training loss smoothing weight in [0, 1): exponential moving "
                             "average, the raw curve drawn faintly behind (default 0: raw)")
    parser.add_argument("--metric", choices=("auto", "accuracy", "perplexity", "loss"),
                        default="auto", help="evaluation metric to plot (default auto)")
    parser.add_argument("--split", help="evaluation split to plot (default: every split)")
    parser.add_argument("--log-loss", action="store_true", help="log-scale training loss axis")
    parser.add_argument("--dpi", type=int, default=150)
    args = parser.parse_args()
    if not 0.0 <= args.smooth < 1.0:
        sys.exit("plot_runs: --smooth must be in [0, 1)")

    labels = run_labels(args.runs)
    if args.labels:
        labels = [v.strip() for v in args.labels.split(",")]
        if len(labels) != len(args.runs):
            sys.exit(f"plot_runs: {len(labels)} labels for {len(args.runs)} runs")
    runs = [read_metrics(r) for r in args.runs]

    metric = args.metric
    if metric == "auto":
        evaluated = [evals for _, _, evals in runs if evals]
        if evaluated and all(any("accuracy" in e for e in evals) for evals in evaluated):
            metric = "accuracy"
        elif evaluated and all(any("perplexity" in e for e in evals) for evals in evaluated):
            metric = "perplexity"
        else:
            metric = "loss"

    figure, (loss_axis, eval_axis) = plt.subplots(1, 2, figsize=(12.0, 4.6), sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    plotted_eval = False
    baselines = set()
    for index, ((path, train, evals), label) in enumerate(zip(runs, labels)):
        colour = colours[index % len(colours)]
        points = [(r["step"], r["loss"]) for r in train
                  if isinstance(r.get("loss"), (int, float)) and math.isfinite(r["loss"])]
        if points:
            steps, losses = zip(*points)
            if args.smooth > 0:
                loss_axis.plot(steps, losses, color=colour, alpha=0.25, linewidth=1)
                loss_axis.plot(steps, smooth(losses, args.smooth), color=colour, label=label)
            else:
                loss_axis.plot(steps, losses, color=colour, label=label)
        else:
            print(f"plot_runs: {path}: no training loss", file=sys.stderr)

        splits = []
        for record in evals:
            if record.get("split") not in splits:
                splits.append(record.get("split"))
        if args.split:
            splits = [s for s in splits if s == args.split]
        for position, split in enumerate(splits):
            records = latest_per_step([e for e in evals if e.get("split") == split])
            points = [(e["step"], e[metric]) for e in records
                      if isinstance(e.get(metric), (int, float)) and math.isfinite(e[metric])]
            if not points:
                continue
            steps, values = zip(*points)
            name = label if len(splits) == 1 else f"{label} ({split})"
            eval_axis.plot(steps, values, color=colour, marker="o", markersize=4,
                           linestyle=["-", "--", ":", "-."][position % 4], label=name)
            plotted_eval = True
        if metric == "accuracy":
            baselines.update(e.get("majority_baseline") for e in evals
                             if e.get("split") in splits)

    # Classifiers log the accuracy of always answering the most common label; drawn
    # when the runs agree on it (the same split of the same data).
    baselines.discard(None)
    if len(baselines) == 1:
        eval_axis.axhline(baselines.pop(), color="gray", linestyle=":", linewidth=1,
                          label="majority class")

    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("training loss" + (" (smoothed)" if args.smooth > 0 else ""))
    loss_axis.set_title("Training loss")
    if args.log_loss:
        loss_axis.set_yscale("log")
        loss_axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
        loss_axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        loss_axis.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    eval_axis.set_xlabel("step")
    split_name = f" ({args.split})" if args.split else ""
    eval_axis.set_ylabel({"accuracy": "accuracy", "perplexity": "perplexity (log scale)",
                          "loss": "evaluation loss"}[metric])
    eval_axis.set_title(f"Evaluation {metric}{split_name}")
    if metric == "perplexity":
        eval_axis.set_yscale("log")
        eval_axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        eval_axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        eval_axis.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    if not plotted_eval:
        eval_axis.text(0.5, 0.5, "no evaluations", transform=eval_axis.transAxes,
                       ha="center", va="center", color="gray")
    for axis in (loss_axis, eval_axis):
        axis.grid(True, alpha=0.4)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="small")
    if args.title:
        figure.suptitle(args.title, fontsize="medium")
    save_figure(figure, args.out, args.dpi)
    print(f"wrote {args.out} ({len(runs)} runs, evaluation metric {metric})")


if __name__ == "__main__":
    main()
