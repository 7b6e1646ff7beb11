"""`python -m helpers demo`: placeholder until the aging work lands."""

from .. import UsageError


def add_arguments(parser):
    parser.add_argument("rest", nargs="*")


def run(args):
    raise UsageError("'demo' is not available yet in this version")
