#!/usr/bin/env python3
"""Plots the windows of a long `hms-act-bench run --window-runs N --json REPORT` (bench/README.md, "Flat with history").

    pip install matplotlib
    bench/plot-windows.py REPORT.json OUT.png

Top: step transitions/s per window. Bottom: CPU microseconds per transition per window, by process.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: bench/plot-windows.py REPORT.json OUT.png")
    with open(sys.argv[1]) as report_file:
        report = json.load(report_file)
    windows = report.get("windows") or []
    if not windows:
        sys.exit(f"{sys.argv[1]} has no windows: run the benchmark with --window-runs N")
    runs = [w["completedRuns"] / 1000 for w in windows]
    figure, (speed, cpu) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    speed.plot(runs, [w["transitionsPerSecond"] for w in windows], marker=".")
    speed.set_ylabel("transitions/s")
    speed.set_ylim(bottom=0)
    speed.grid(alpha=0.3)
    for process in ("postgresql", "hms-act serve", "rabbitmq"):
        cpu.plot(runs, [w["cpuMicrosecondsPerTransition"].get(process, 0) for w in windows], marker=".", label=process)
    cpu.set_ylabel("CPU µs per transition")
    cpu.set_xlabel("completed runs (thousands)")
    cpu.set_ylim(bottom=0)
    cpu.grid(alpha=0.3)
    cpu.legend()
    settings = report["settings"]
    figure.suptitle(f"hms-act-bench run --runs {settings['runs']} --window-runs {settings['windowRuns']}")
    figure.tight_layout()
    figure.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
