"""Download Library of Congress daguerreotypes for the subjective evaluation (notebook 05).

    python data_prep/fetch_loc.py --out loc_daguerreotypes [--limit 50] [--query portrait] [--size 1024]

Pages through loc.gov's Daguerreotypes collection within its published rate limits, writes each
photo whole (never a partial file) and OUT/manifest.csv (id, title, date, creator, rights advisory,
source and image URLs, sha256, file); rerunning resumes. Items not free to use are recorded, not
fetched. Exit status 1 when an item failed or loc.gov made the run stop. The logic lives in helpers.loc.
"""

import argparse
import sys

from helpers.cli import execute
from helpers.commands import fetch_loc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    fetch_loc.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON report on stdout")
    return execute(fetch_loc.run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
