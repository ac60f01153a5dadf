"""Make the harness importable: jepsen-like/ has a dash, so it is put on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "jepsen-like"
if str(HARNESS) not in sys.path:
    sys.path.insert(0, str(HARNESS))
