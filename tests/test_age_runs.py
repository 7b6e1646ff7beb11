"""`age` runs end and lose nothing: a worker killed mid-run fails its files with a reason instead of
hanging the run, a second run into the same folder is refused while the first holds it (so the manifest
lists every file written), and --size cannot ask for more pixels than reading allows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.__main__ import main
from helpers.age_folder import read_manifest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def _photos(folder: Path, names: list[str], size=(48, 64)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(folder / name)
    return folder


def _run(args: list[str], timeout: float) -> tuple[int, dict | None, str]:
    """python -m helpers in its own process group, killed whole if it outlives `timeout` (a hang)."""
    process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, OMP_NUM_THREADS="1"), start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError(f"{' '.join(args[-6:])} still running after {timeout} s: the run hangs") from None
    return process.returncode, json.loads(stdout) if stdout.strip() else None, stderr


def test_a_killed_worker_fails_its_files_and_the_run_ends(tmp_path):
    src = _photos(tmp_path / "src", [f"ok{i}.png" for i in range(4)] + ["die.png"])
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import dying_worker, helpers.age_folder as af; "
              "af._age_one = dying_worker.age_one_or_die; from helpers.__main__ import main; "
              "sys.exit(main(sys.argv[2:]))")
    code, doc, err = _run([sys.executable, "-c", script, str(TESTS), "age", str(src), "--out", str(tmp_path / "out"),
                           "--size", "32", "--workers", "2", "--json", "--quiet"], timeout=120)
    assert code == 1, err
    reasons = {Path(f["input"]).name: f["reason"] for f in doc["failures"]}
    assert "die.png" in reasons and "worker" in reasons["die.png"]
    assert "Traceback" not in err
    rows = read_manifest(tmp_path / "out/manifest.csv")
    assert {r["file"] for r in rows} | set(reasons) == {f"ok{i}.png" for i in range(4)} | {"die.png"}
    aged = tmp_path / "out/aged"
    assert sorted(r["file"] for r in rows) == sorted(p.name for p in aged.iterdir()) if aged.is_dir() else not rows
    code, doc, err = _run([sys.executable, "-m", "helpers", "age", str(src / "ok0.png"), str(src / "ok1.png"),
                           "--out", str(tmp_path / "again"), "--size", "32", "--workers", "2", "--json", "--quiet"],
                          timeout=120)
    assert code == 0 and doc["written"] == 2, err  # an ordinary parallel run still works


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    """Real processes; the first is paused (SIGSTOP) while it holds the folder, so they surely overlap."""
    first = _photos(tmp_path / "first", [f"a{i:02}.png" for i in range(30)])
    second = _photos(tmp_path / "second", [f"b{i:02}.png" for i in range(3)])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "helpers", "age", "--out", str(out), "--size", "32", "--workers", "0",
               "--json", "--quiet"]
    running = subprocess.Popen(command + [str(first)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        deadline = time.monotonic() + 60
        while not (out / "manifest.csv").exists() and running.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        running.send_signal(signal.SIGSTOP)
        assert running.poll() is None, "the first run ended before it could be paused"
        code, doc, err = _run(command + [str(second)], timeout=120)
    finally:
        running.send_signal(signal.SIGCONT)
    stdout, stderr = running.communicate(timeout=120)
    assert running.returncode == 0, stderr
    assert code == 1 and "another age run" in err and str(out) in err, err
    rows = read_manifest(out / "manifest.csv")
    aged = sorted(p.name for p in (out / "aged").iterdir())
    assert sorted(r["file"] for r in rows) == aged == [f"a{i:02}.png" for i in range(30)]
    code, doc, err = _run(command + [str(second)], timeout=120)  # once the first has ended, it may go on
    assert code == 0, err
    assert len(read_manifest(out / "manifest.csv")) == len(list((out / "aged").iterdir())) == 33


def test_size_is_held_to_the_pixel_limit(tmp_path, capsys):
    src = _photos(tmp_path / "src", ["wide.png"], size=(96, 128))
    code = main(["age", str(src), "--out", str(tmp_path / "a"), "--size", "20000", "--workers", "0", "--quiet"])
    assert code == 2 and "--size" in capsys.readouterr().err
    code = main(["age", str(src), "--out", str(tmp_path / "b"), "--size", "1000", "--max-pixels", "1200000",
                 "--workers", "0", "--quiet", "--json"])  # 1000x1000 is allowed, 1333x1000 on the way is not
    captured = capsys.readouterr()
    assert code == 1
    (failure,) = json.loads(captured.out)["failures"]
    assert failure["input"].endswith("wide.png") and "exceeds the limit" in failure["reason"]
