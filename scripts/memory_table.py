#!/usr/bin/env python3
"""The table of scripts/memory_runs.sh: each run's peaks over the whole run.

   memory_table.py OUT_DIR NAME ...

Peak live and reserved bytes are the largest of the interval peaks in
metrics.jsonl (each log line's peak since the one before; evaluations fall in
the interval that follows them). Resident is GNU time's "Maximum resident set
size" of the whole process, data preparation included. Where OUT_DIR/NAME/plan.json
exists, the planner's predictions stand beside the measurements.
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
        for key in peaks:
            if key in record:
                peaks[key] = max(peaks[key], record[key])
    time_report = (directory / "time.txt").read_text()
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_report)
    peaks["process_rss_bytes"] = int(match.group(1)) * 1024 if match else None
    return peaks


def mib(value):
    return "-" if value is None else f"{value / MIB:.0f}"


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
        train = plan.get("train", {})
        live = peaks["peak_bytes"]
        rss = peaks["process_rss_bytes"]
        ratio = "-" if rss is None else f"{rss / (1.5 * live + 200 * MIB):.2f}"
        print(f"| {name} | {mib(live)} | {mib(peaks['peak_reserved_bytes'])} | {mib(rss)} "
              f"| {ratio} | {mib(train.get('peak_bytes'))} "
              f"| {mib(train.get('peak_reserved_bytes'))} | {mib(train.get('peak_rss_bytes'))} |")


if __name__ == "__main__":
    main()
