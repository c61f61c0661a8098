"""Bringing outside data in: the files offices exchange, and the calendar notice.

Regions (GB/T 2260), schools, teachers' progress from the provincial platforms' exports (CSV in
GBK/GB18030/UTF-8, XLSX, Chinese headers through a column mapping), each all-or-nothing with every
bad row listed; and the working-day calendar (chinesecalendar or the State Council's notice). Every
import re-derives the stored status it moves, in the same transaction.
"""

from engine.imports.annotate import problems_workbook
from engine.imports.calendar import (
    import_calendar_file,
    mark_provisional,
    seed_calendar,
    seed_calendar_changes,
)
from engine.imports.contractors import ContractorResult, import_contractors
from engine.imports.entries import ExtensionRow, FactRow, read_extension_rows, read_fact_rows
from engine.imports.history import DataAsOf, latest_imports_by_source, latest_progress_import
from engine.imports.kept import drop_kept, kept_keys, kept_rows
from engine.imports.mapping import ColumnMapping, load_mapping
from engine.imports.progress import import_progress
from engine.imports.regions import import_regions
from engine.imports.schools import import_schools
from engine.imports.staging import (
    MAX_PROBLEMS,
    HeaderCallback,
    ImportResult,
    Problems,
    ProgressCallback,
    check_code,
    fold,
    missing,
    out_of_scope,
)
from engine.imports.tabular import estimate_rows, file_encoding, open_table

__all__ = [
    "MAX_PROBLEMS", "ColumnMapping", "HeaderCallback", "ImportResult", "ProgressCallback",
    "estimate_rows", "file_encoding", "load_mapping", "open_table", "problems_workbook",
    "import_progress", "import_regions", "import_schools", "DataAsOf", "latest_progress_import", "latest_imports_by_source",
    "import_calendar_file", "mark_provisional", "seed_calendar", "seed_calendar_changes",
    # bulk entries' files, read and checked (applied by engine.import_facts / import_extensions)
    "ExtensionRow", "FactRow", "read_extension_rows", "read_fact_rows",
    "ContractorResult", "import_contractors",
    # an upload's previewed rows kept for its commit
    "drop_kept", "kept_keys", "kept_rows",
    # for other importers built on the same rules (the contact list)
    "Problems", "check_code", "fold", "missing", "out_of_scope",
]
