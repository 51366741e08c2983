"""The ``bgsub`` command."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bgsub",
        description="Real-time background subtraction with a per-pixel Gaussian mixture.")
    parser.add_argument("--version", action="version", version=f"bgsub {__version__}")
    parser.add_argument("source", nargs="?", help="video file, image folder or stream URL")
    args = parser.parse_args(argv)
    if args.source is None:
        parser.print_help()
        return 0
    # the pipeline (sources, display, writers) is its own piece of work; until it
    # lands, say so plainly instead of failing half-way
    print("bgsub: processing videos from the command line is not available in this version "
          "yet; use the Python API (from bgsub import MixtureMasker)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
