"""`python -m helpers bench`: run the speed and memory benchmarks of benchmarks/, each writing its JSON.

Each benchmark runs in its own process (peak-memory figures must not see each other) and measures its
baseline in the same run, so the ratios it reports are meaningful on a shared, noisy machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .. import UsageError, env
from ..cli import Report, info

BENCH_DIR = env.REPO_ROOT / "benchmarks"


def available() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


def add_arguments(parser):
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the JSON results (default: benchmarks/, next to the scripts)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")


def run(args) -> Report:
    names = available()
    report = Report({"benchmarks": {}})
    if args.list:
        print("\n".join(names))
        report.payload["available"] = names
        return report
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        raise UsageError(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(names)}")
    out_dir = args.out or BENCH_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.names or names:
        out = out_dir / f"{name}.json"
        info(f"bench: {name} -> {out}")
        result = subprocess.run([sys.executable, str(BENCH_DIR / f"{name}.py"), "--out", str(out)],
                                stdout=2, stderr=2)  # progress goes to our stderr
        if result.returncode != 0:
            report.fail(name, f"benchmark exited with status {result.returncode}")
            continue
        report.payload["benchmarks"][name] = json.loads(out.read_text())
    return report
