"""Shared by the scripts that read configs: the effective config as the tool prints it
(`topkformer config --config PATH`: every key, defaults included), so that no script restates
the defaults or parses a config file on its own."""

import subprocess
import sys


def effective_config(tool, path):
    """{"section.key": value as written}, e.g. {"attention.kind": "topk", "attention.k": "128"}."""
    command = [str(tool), "config", "--config", str(path)]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{finished.stderr.strip()}")
    values, section = {}, None
    for line in finished.stdout.splitlines():
        if line.startswith("  "):
            key, _, value = line.strip().partition(": ")
            values[f"{section}.{key}"] = value
        elif line.endswith(":"):
            section = line[:-1]
    return values
