"""What every command shares: progress on stderr, one JSON document on stdout, exit statuses.

Exit status: 0 all good, 1 some inputs failed (each named with its reason), 2 usage error.
"""

from __future__ import annotations

import json
import math
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from . import HelpersError, UsageError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass
class Report:
    """The outcome of a command: its JSON payload and the inputs that failed, with reasons."""

    payload: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)

    def fail(self, item: str, reason: str) -> None:
        """Record one failed input and say so on stderr at once, as one line."""
        self.failures.append({"input": str(item), "reason": reason})
        print(f"skipped: {reason}" if reason.startswith(str(item)) else f"skipped: {item}: {reason}",
              file=sys.stderr)

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.failures else EXIT_OK

    def to_json(self) -> str:
        """Strict JSON: NaN and infinities, which most parsers refuse, become null (commands whose numbers
        can be undefined say why next to them)."""
        doc = dict(self.payload)
        doc["failures"] = self.failures
        doc["exit_code"] = self.exit_code
        return json.dumps(_finite(doc), indent=2, default=str, allow_nan=False)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def out_folder(text: str) -> str:
    """argparse type of an --out that is a folder: a file there is a usage error before any work starts,
    not a failed first write (which `invert` met only after the whole inversion)."""
    import argparse
    from pathlib import Path

    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return text


def device_option(text: str) -> str:
    """argparse type of --device: a name torch cannot parse, or a device this machine lacks, is a usage
    error (exit 2) before any work starts, not a runtime error once a model is loaded."""
    import argparse

    import torch

    try:
        chosen = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a torch device (cpu, cuda, cuda:1, mps)") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no CUDA device on this machine (use cpu)")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    mps = getattr(torch.backends, "mps", None)
    if chosen.type == "mps" and not (mps is not None and mps.is_available()):
        raise argparse.ArgumentTypeError(f"{text!r}: no Apple GPU (mps) on this machine")
    if chosen.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text!r}: not a device this project runs on (cpu, cuda, mps)")
    return text


def info(message: str) -> None:
    """Human-readable progress goes to stderr so stdout stays clean for --json."""
    print(message, file=sys.stderr, flush=True)


def execute(command: Callable[[Any], Report], args) -> int:
    """Run one command: errors become one line on stderr and an exit status (a traceback only with
    --debug), and with --json the report is printed as one document on stdout."""
    debug = getattr(args, "debug", False)
    try:
        report = command(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except HelpersError as err:
        if debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return EXIT_SOME_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # an unexpected failure: one line unless --debug
        if debug:
            traceback.print_exc()
        print(f"error: {type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_SOME_FAILED
    if getattr(args, "json", False):
        print(report.to_json())
    return report.exit_code
