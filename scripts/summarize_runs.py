#!/usr/bin/env python3
"""One Markdown table row per run directory, from what `topkformer train` and
`topkformer eval` wrote there: the steps trained, the best validation metric
during training, the test evaluation of the run's best checkpoint with no
attention or feed-forward overrides over the most examples (the latest of
those; a plug-and-play table may add smaller ones), the wall time and the peaks.

    python3 scripts/summarize_runs.py runs/small/imdb_vanilla runs/small/imdb_topk ...

Reads RUN/metrics.jsonl, RUN/eval.jsonl, RUN/config.yaml (through `topkformer
config`, --tool) and, when present, RUN/time.txt (GNU time's "S s wall, K KiB
peak resident", as scripts/run_small.sh writes it). Standard library only.
"""

import argparse
import json
import pathlib
import re

from effective_config import effective_config


def read_jsonl(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def attention_label(run, tool):
    """The attention variant of the run's effective config, e.g. 'topk k=128'."""
    config = effective_config(tool, run / "config.yaml")
    kind = config["attention.kind"]
    extra = {"topk": f" k={config['attention.k']}",
             "performer": f" {config['attention.num_features']} features"}
    return kind + extra.get(kind, "")


def metric_of(record):
    if "accuracy" in record:
        return "accuracy", record["accuracy"]
    return "perplexity", record["perplexity"]


def summarize(run, tool):
    metrics = read_jsonl(run / "metrics.jsonl")
    trained = [m for m in metrics if m.get("type") == "train"]
    evals = [m for m in metrics if m.get("type") == "eval"]
    name, _ = metric_of(evals[-1])
    pick = max if name == "accuracy" else min
    best_valid = pick(metric_of(m)[1] for m in evals)
    tests = [e for e in read_jsonl(run / "eval.jsonl")
             if e["split"] == "test" and not any(o.startswith(("attention.", "feedforward."))
                                                for o in e.get("overrides", []))]
    test = max(reversed(tests), key=lambda e: e["examples"]) if tests else None
    wall, rss = "", ""
    timing = run / "time.txt"
    if timing.exists():
        seconds, kib = re.match(r"([\d.]+) s wall, (\d+) KiB", timing.read_text()).groups()
        wall = f"{float(seconds) / 60:.1f} min"
        rss = f"{int(kib) / 1024:.0f} MiB"
    peak = max(m["peak_bytes"] for m in trained) / 2**20
    test_text = (f"{metric_of(test)[1]:.4f} ({test['examples']} examples, step {test['step']})"
                 if test else "not evaluated")
    return (f"| {run.name} | {attention_label(run, tool)} | {trained[-1]['step']} | {best_valid:.4f} | "
            f"{test_text} | {wall} | {peak:.0f} MiB | {rss} |"), name


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=pathlib.Path, metavar="RUN")
    parser.add_argument("--tool", default="build/src/topkformer")
    args = parser.parse_args()
    rows = [summarize(run, args.tool) for run in args.runs]
    name = rows[0][1]
    print(f"| run | attention | steps | best valid {name} | test {name} | wall | "
          "peak tensors | peak resident |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row, _ in rows:
        print(row)


if __name__ == "__main__":
    main()
