"""`python -m bench [ingest] [append] [rules] [--quick]`; see docs/performance.md."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
for _path in (_ROOT / "src", _ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.cli import main  # noqa: E402

if __name__ == "__main__":  # a spawned process imports this module too (send_deciders)
    main(sys.argv[1:])
