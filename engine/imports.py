"""One place to import the data imports from: regions, schools, teachers' progress.

Each kind lives in its own module (``import_regions``, ``import_schools``, ``import_progress``);
this facade keeps callers (CLI, web, demo) independent of that split.
"""

from __future__ import annotations

from .import_common import MAX_PROBLEMS, ImportResult, ProgressCallback
from .import_progress import import_progress
from .import_regions import import_regions
from .import_schools import import_schools
from .tabular import ColumnMapping, estimate_rows, load_mapping

__all__ = [
    "MAX_PROBLEMS",
    "ColumnMapping",
    "ImportResult",
    "ProgressCallback",
    "estimate_rows",
    "import_progress",
    "import_regions",
    "import_schools",
    "load_mapping",
]
