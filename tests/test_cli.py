"""The command-line contract: every command listed, usage errors exit 2 with one line, no tracebacks."""

import subprocess
import sys

from helpers.__main__ import COMMANDS, main

CONTRACT = ["demo", "age", "restore", "train", "invert", "evaluate", "fetch-loc", "summary", "bench"]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_contract_command():
    result = _run("--help")
    assert result.returncode == 0
    for name in CONTRACT:
        assert f"    {name}" in result.stdout
    assert list(COMMANDS) == CONTRACT


def test_usage_errors_exit_2_without_traceback():
    for args in (["--no-such-flag"], ["no-such-command"], []):
        result = _run(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr


def test_every_command_has_help():
    for name in CONTRACT:
        result = _run(name, "--help")
        assert result.returncode == 0, (name, result.stderr)
        assert "--json" in result.stdout


def test_main_returns_exit_code_instead_of_raising(capsys):
    assert main(["age", "--preset", "no-such-preset", "x.png", "--out", "o"]) == 2
    assert "no-such-preset" in capsys.readouterr().err
