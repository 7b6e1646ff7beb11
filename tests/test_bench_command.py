"""`python -m helpers bench`: runs each benchmark script in its own process and gathers its JSON."""

import json

from helpers.__main__ import main
from helpers.commands import bench


def test_lists_the_repository_benchmarks(capsys):
    assert main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert "aging" in listed and listed == bench.available()


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
