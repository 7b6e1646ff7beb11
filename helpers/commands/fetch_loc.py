"""`python -m helpers fetch-loc --out DIR [--limit N] [--query Q] [--size PX] [--api-base URL]`: download
photos of the Library of Congress Daguerreotypes collection with OUT/manifest.csv, within loc.gov's
rate limits; rerunning resumes. Items not free to use are recorded and skipped. Exit 1 names each item
that failed, or says why loc.gov made the run stop."""

from __future__ import annotations

from .. import UsageError
from ..cli import out_folder


def add_arguments(parser):  # helpers.loc (requests, Pillow) is imported only when the command runs
    parser.add_argument("--out", required=True, type=out_folder,
                        help="download folder (holds manifest.csv; rerun to resume)")
    parser.add_argument("--limit", type=int, help="photos to hold in --out for this listing (default: all)")
    parser.add_argument("--query", help="search within the collection, e.g. portrait")
    parser.add_argument("--size", type=int, default=1024, help="long side of each image in px (default 1024)")
    parser.add_argument("--api-base", help="loc.gov or a mirror of its API (default https://www.loc.gov)")


def run(args):
    from ..loc import DEFAULT_API_BASE, FetchSettings, fetch_daguerreotypes

    api_base = args.api_base or DEFAULT_API_BASE
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    if args.size < 1:
        raise UsageError(f"--size must be at least 1 px, got {args.size}")
    if not api_base.startswith(("http://", "https://")):
        raise UsageError(f"--api-base must be an http(s) URL, got {api_base!r}")
    settings = FetchSettings(out=args.out, query=args.query, limit=args.limit, size=args.size, api_base=api_base)
    return fetch_daguerreotypes(settings)
