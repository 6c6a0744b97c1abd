#!/usr/bin/env python3
"""The table of scripts/memory_runs.sh: each run's peaks over the whole run.

   memory_table.py OUT_DIR NAME ...

Peak live and reserved bytes are the largest of the interval peaks of the
train lines in metrics.jsonl (each log line's peak since the one before;
evaluations fall in the interval that follows them). Resident is the whole
process's peak: the larger of GNU time's "Maximum resident set size" and the
interval peaks, because the trainer resets the kernel's high-water mark at
every log line (and the planner around its dry run), and the kernel's maximum,
which getrusage and GNU time report, is that same mark: alone, GNU time gives
the peak since the last reset.
Where OUT_DIR/NAME/plan.json exists (`topkformer plan --json`), the planner's
predictions of the whole run (its "run" figures: the larger of a training step
and an evaluation) stand beside the measurements, with their error.
"""
import json
import pathlib
import re
import sys

MIB = 1 << 20


def run_peaks(directory):
    peaks = {"peak_bytes": 0, "peak_reserved_bytes": 0, "peak_rss_bytes": 0}
    for line in (directory / "run" / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("type") != "train":
            continue
        for key in peaks:
            if key in record:
                peaks[key] = max(peaks[key], record[key])
    time_report = (directory / "time.txt").read_text()
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_report)
    peaks["process_rss_bytes"] = max(int(match.group(1)) * 1024 if match else 0,
                                     peaks["peak_rss_bytes"]) or None
    return peaks


def mib(value):
    return "-" if value is None else f"{value / MIB:.0f}"


def predicted(value, measured):
    """A prediction in MiB with its error relative to the measurement."""
    if value is None:
        return "-"
    if not measured:
        return mib(value)
    return f"{value / MIB:.0f} ({100 * (value - measured) / measured:+.0f}%)"


def main():
    out = pathlib.Path(sys.argv[1])
    print("| config | live MiB | reserved MiB | resident MiB (whole process) "
          "| resident / (1.5 live + 200) | plan: live | plan: reserved | plan: resident |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in sys.argv[2:]:
        directory = out / name
        peaks = run_peaks(directory)
        plan_file = directory / "plan.json"
        plan = json.loads(plan_file.read_text()) if plan_file.exists() else {}
        run = plan.get("run", {})
        live = peaks["peak_bytes"]
        reserved = peaks["peak_reserved_bytes"]
        rss = peaks["process_rss_bytes"]
        ratio = "-" if rss is None else f"{rss / (1.5 * live + 200 * MIB):.2f}"
        print(f"| {name} | {mib(live)} | {mib(reserved)} | {mib(rss)} "
              f"| {ratio} | {predicted(run.get('peak_bytes'), live)} "
              f"| {predicted(run.get('peak_reserved_bytes'), reserved)} "
              f"| {predicted(run.get('peak_rss_bytes'), rss)} |")


if __name__ == "__main__":
    main()
