#!/usr/bin/env python3
"""Ratios of criterion benchmark means against a baseline, per group.

Usage: scripts/bench-ratios.py [BASELINE] [TARGET_DIR]
Reads target/criterion/<group>/<bench>/new/estimates.json written by
`cargo bench -p spanlab --bench overhead` and prints, per group, each benchmark's mean
and its ratio to BASELINE (default: registry_empty_layer), from criterion's median
(less sensitive than the mean to other tenants' bursts on a shared machine). Ratios from one run are
comparable; absolute times on a shared machine are not.
"""
import json
import pathlib
import sys

baseline = sys.argv[1] if len(sys.argv) > 1 else "registry_empty_layer"
root = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "target") / "criterion"
groups = {}
for est in sorted(root.glob("*/*/new/estimates.json")):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    mean = json.loads(est.read_text())["median"]["point_estimate"]
    groups.setdefault(bench["group_id"], {})[bench["function_id"]] = mean
if not groups:
    sys.exit(f"no criterion results under {root}")
for group, means in sorted(groups.items()):
    base = means.get(baseline)
    print(group)
    for name, ns in sorted(means.items(), key=lambda kv: kv[1]):
        ratio = f"{ns / base:6.2f}x" if base else "   n/a"
        print(f"  {name:28} {ns:10.1f} ns   {ratio} {baseline}")
