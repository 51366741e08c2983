"""The README's accuracy table: ``bgsub eval`` on CDnet highway beside OpenCV.

    python benchmarks/highway_f.py [SEQ_DIR] [bgsub eval options ...]

is ``bgsub eval SEQ_DIR --compare raw,mog2,knn,mog`` plus any other options
(``--set section.key=value``, ``--json FILE``...).  SEQ_DIR defaults to
``../shared/data/highway`` beside the checkout, or ``$BGSUB_HIGHWAY``.  All the
work is done by :mod:`bgsub.cli.evaluate`; this file only fixes the comparison.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bgsub.cli.evaluate import main as evaluate

DEFAULT_SEQ = Path(os.environ.get(
    "BGSUB_HIGHWAY", Path(__file__).resolve().parents[1].parent / "shared" / "data" / "highway"))


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        args = [str(DEFAULT_SEQ), *args]
    sys.exit(evaluate([*args[:1], "--compare", "raw,mog2,knn,mog", *args[1:]]))
