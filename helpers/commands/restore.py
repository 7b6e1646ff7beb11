"""`python -m helpers restore`: not built yet (see the open issues); kept so --help shows the whole contract."""

from .. import UsageError


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="arguments of the future command")


def run(args):
    raise UsageError("'restore' is not available yet in this version")
