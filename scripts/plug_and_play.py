#!/usr/bin/env python3
"""The plug-and-play study (paper §4.3-4.4): evaluate one trained checkpoint,
without further training, with other attention and feed-forward variants.

    python3 scripts/plug_and_play.py --checkpoint runs/imdb_vanilla --split test \\
        [--k 4,8,16,32,64,128] [--features 256] [--ff-k 32,64,128] [--tool build/src/topkformer] \\
        [--set data.max_eval_examples=2000 ...]

Runs `topkformer eval --checkpoint ... --set ...` once per setting (each
appends its JSON line to RUN/eval.jsonl) and prints a Markdown table: the
setting, then accuracy or perplexity and loss, as the paper's Table 2.
Standard library only.
"""

import argparse
import json
import subprocess
import sys


def settings(args):
    """(label, overrides) pairs: the trained variant first, then the swaps."""
    yield "as trained", []
    yield "vanilla", ["attention.kind=vanilla"]
    for k in args.k:
        yield f"top-k attention, k = {k}", ["attention.kind=topk", f"attention.k={k}"]
    if args.features:
        yield (f"Performer, {args.features} features",
               ["attention.kind=performer", f"attention.num_features={args.features}"])
    for k in args.ff_k:
        yield f"top-k feed-forward, k = {k}", ["feedforward.kind=topk", f"feedforward.k={k}"]


def evaluate(args, overrides):
    command = [args.tool, "eval", "--checkpoint", args.checkpoint, "--split", args.split]
    for override in args.set + overrides:
        command += ["--set", override]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{finished.stderr.strip()}")
    output = finished.stdout
    # The JSON object printed after the summary line, before "appended to ...".
    start, end = output.index("{"), output.rindex("}") + 1
    return json.loads(output[start:end])


def integers(text):
    return [int(value) for value in text.split(",") if value]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder or run directory")
    parser.add_argument("--split", default="test",
                        help="the split to evaluate (topkformer eval names the valid ones)")
    parser.add_argument("--tool", default="build/src/topkformer")
    parser.add_argument("--k", type=integers, default=integers("4,8,16,32,64,128"),
                        help="top-k attention k values")
    parser.add_argument("--features", type=int, default=256, help="Performer features (0: none)")
    parser.add_argument("--ff-k", type=integers, default=[],
                        help="top-k feed-forward k values (e.g. 32,64,128)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every evaluation (repeatable)")
    args = parser.parse_args()

    rows = []
    for label, overrides in settings(args):
        result = evaluate(args, overrides)
        rows.append((label, result))
        print(f"{label}: {json.dumps(result)}", file=sys.stderr)
    metric = "accuracy" if "accuracy" in rows[0][1] else "perplexity"
    print(f"| {args.split} split of {args.checkpoint} | {metric} | loss |")
    print("| --- | --- | --- |")
    for label, result in rows:
        print(f"| {label} | {result[metric]:.4f} | {result['loss']:.4f} |")
    if "majority_baseline" in rows[0][1]:
        print(f"| majority-class baseline | {rows[0][1]['majority_baseline']:.4f} | |")


if __name__ == "__main__":
    main()
