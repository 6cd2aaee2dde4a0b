"""Keep hypothesis' cache out of the repo (a root `.hypothesis/` breaks collection, see norecursedirs)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "newsmon-hypothesis"))
