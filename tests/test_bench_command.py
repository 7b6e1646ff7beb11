"""`python -m helpers bench`: runs each benchmark script in its own process and gathers its JSON."""

import json
from pathlib import Path

from helpers.__main__ import main
from helpers.commands import bench


KNOWN = ["aging", "inversion", "quality", "restorer_vs_seed", "train_speed"]  # benchmarks/*.py today


def test_lists_the_repository_benchmarks(capsys):
    assert main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == sorted(listed)
    missing = [name for name in KNOWN if name not in listed]
    assert not missing, f"benchmarks no longer listed: {missing}"
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    assert all((root / f"{name}.py").is_file() for name in listed)  # each one listed is a script there


def test_lists_scripts_only_not_results_or_private_modules(tmp_path, monkeypatch, capsys):
    for name in ("speed.py", "_common.py", "speed.json", "notes.md", "alpha.py"):
        (tmp_path / name).write_text("")
    monkeypatch.setattr(bench, "BENCH_DIR", tmp_path)
    assert main(["bench", "--list"]) == 0
    assert capsys.readouterr().out.split() == ["alpha", "speed"]


def test_runs_scripts_and_reports_failures(tmp_path, monkeypatch, capsys):
    scripts = tmp_path / "benchmarks"
    scripts.mkdir()
    (scripts / "fast.py").write_text(
        "import json, sys\nout = sys.argv[sys.argv.index('--out') + 1]\n"
        "json.dump({'images_per_s': 42.0}, open(out, 'w'))\n")
    (scripts / "broken.py").write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(bench, "BENCH_DIR", scripts)
    assert main(["bench", "--out", str(tmp_path / "results"), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["benchmarks"] == {"fast": {"images_per_s": 42.0}}
    assert doc["failures"][0]["input"] == "broken"
    assert main(["bench", "nope"]) == 2
