#!/usr/bin/env python3
"""bench/plot.py — a bar chart of bench/pump.sh's medians, as ratios to cat.

    python3 bench/plot.py PUMP_TSV OUT_PNG

PUMP_TSV is what pump.sh appends to $TSV (bench/all.sh collects it): one row
per variant and line length: line_len, key, label, wall s, CPU s, peak RSS
KiB, wall/cat, CPU/cat. Two panels (wall time, CPU time), one group of bars
per line length, log scale (the slowest peers are 10 to 100 times cat).
Needs matplotlib (apt-get install -y python3-matplotlib).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The rows plotted, in order; a) and the rotation rows are left out.
KEYS = ["b", "c", "d", "e", "f", "g"]


def main(tsv, png):
    data = {}  # (line_len, key) -> (label, wall ratio, cpu ratio)
    for row in csv.reader(open(tsv), delimiter="\t"):
        line_len, key, label, _wall, _cpu, _rss, wall_r, cpu_r = row
        data[(int(line_len), key)] = (label, float(wall_r), float(cpu_r))
    lengths = sorted({k[0] for k in data}, key=lambda n: (n != 100, n))
    keys = [k for k in KEYS if any((n, k) in data for n in lengths)]
    labels = {k: data[(n, k)][0] for n in lengths for k in keys if (n, k) in data}

    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    width = 0.8 / len(keys)
    for ax, col, title in ((axes[0], 1, "wall time"), (axes[1], 2, "CPU time (user+sys)")):
        for i, k in enumerate(keys):
            xs = [g + (i - (len(keys) - 1) / 2) * width for g in range(len(lengths))]
            ys = [data.get((n, k), (None, 0, 0))[col] for n in lengths]
            ax.bar(xs, ys, width, label=labels[k])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(lengths)))
        ax.set_xticklabels([f"{n}-byte lines" for n in lengths])
        ax.set_title(f"{title}, ratio to cat (lower is better)")
        ax.grid(axis="y", which="both", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=9)
    fig.suptitle("268 MiB through each logger (bench/pump.sh, medians)")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(png, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py PUMP_TSV OUT_PNG")
    main(sys.argv[1], sys.argv[2])
