"""`python -m helpers COMMAND ...`: the command line of DESIGN.md.

Each command lives in `helpers/commands/<name>.py` with `add_arguments(parser)` and `run(args) -> Report`;
this module only parses, dispatches, and turns errors into one line and an exit status.
"""

from __future__ import annotations

import sys

try:  # Ctrl-C while still importing ends with one line too (see run_main), not a traceback
    import argparse
    import importlib

    from . import __version__
    from .cli import EXIT_USAGE, execute
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)

COMMANDS = {
    "demo": "age the bundled samples, restore them, write a before/after grid, HTML page and metrics",
    "age": "age clean photos into (aged, clean, mask) training pairs",
    "restore": "restore damaged photos: the repair pipeline (default), the U-Net, the seed DCGAN or the classical "
               "baseline",
    "train": "train a restorer (unet, seed-dcgan) or a pipeline stage (detector, specks, deblocker, verifier, "
             "inpainter) on photos aged on the fly or pre-aged",
    "invert": "restore one photo by robust StyleGAN inversion (W -> W+ -> W++)",
    "evaluate": "compare restored images with clean references (PSNR, SSIM, sharpness)",
    "fetch-loc": "download Library of Congress daguerreotypes with a manifest",
    "summary": "print the torchsummary table of a model",
    "bench": "run the speed and memory benchmarks",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 too; keep its one-line style, no traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _module(name: str):
    return importlib.import_module(f".commands.{name.replace('-', '_')}", __package__)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m helpers", description="Repair damaged old photographs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, text in COMMANDS.items():
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        cmd.add_argument("--debug", action="store_true", help="show tracebacks of errors")
        _module(name).add_arguments(cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return execute(_module(args.command).run, args)


def run_main() -> int:
    """main() for `python -m helpers`: Ctrl-C while torch and the commands are still importing (a few
    seconds) ends with one line, as it does once a command runs, not with a traceback."""
    try:
        return main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run_main())
