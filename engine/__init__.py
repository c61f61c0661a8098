"""rollout's engine: the programme's rules and its persistent state — the one API above it uses.

cli/, web/, service/ and notifications/ import from here and from the four part packages
(``engine.workflow``, ``engine.audit``, ``engine.imports``, ``engine.calendar``), never from a module
inside; the import-linter contracts in ``.importlinter`` hold them to it (``make lint``). Modules
inside the engine import each other by their full path, never through this file.
"""

from engine.access import (
    Forbidden,
    audit_filter,
    is_school_user,
    may_act,
    recordable_facts,
    region_scope,
    require_fact_role,
    require_write,
    school_clause,
    school_for,
    scoped_views,
)
from engine.accounts import (
    ROLES,
    LoginResult,
    UserError,
    add_user,
    authenticate,
    disable_user,
    end_session,
    list_users,
    session_user,
    set_password,
    start_session,
)
from engine.bulletin import bulletin_week, office_contacts, ranked_regions
from engine.clock import Clock, FixedClock, SystemClock, as_utc, parse_timestamp
from engine.db import (
    DEFAULT_URL,
    current_revision,
    database_error,
    make_engine,
    require_schema,
    sessions,
    transaction,
    upgrade,
)
from engine.deadline import local_date
from engine.entries import EntryResult, decide_many, import_extensions, import_facts
from engine.errors import (
    AuditError,
    DatabaseUnavailable,
    ImportFileError,
    MoveRefused,
    NotFound,
    PlanFileError,
    Problem,
    RolloutError,
    StaleStateError,
    TextRefused,
    TransitionRefused,
    WorkflowFileError,
    WorkflowVersionConflict,
)
from engine.export import SheetColumn, neutralise, write_csv, xlsx_bytes
from engine.extension import (
    ExtensionRequest,
    decide_extension,
    lapse_stale_requests,
    pending_requests,
    request_extension,
)
from engine.facts import set_fact
from engine.gate import GateResult, failing
from engine.i18n import LANGUAGES, set_language, tr
from engine.labels import (
    action_label,
    audit_triggers,
    event_cells,
    event_label,
    fact_title,
    role_title,
    stage_title,
    trigger_title,
)
from engine.models import (
    Batch,
    Contact,
    NoticeItem,
    Notification,
    Plan,
    Region,
    SchedulerState,
    School,
    SchoolFact,
    SchoolRun,
    User,
    WorkflowVersion,
)
from engine.notices import KINDS, Digest, Notices, due_digests, due_notices, record_notices
from engine.plan import find_plan, load_plan, plan_summary
from engine.plan_edit import PlanChange, PlanEdit, edit_plan
from engine.projection import StateProblem, StateReport, verify_state
from engine.run_deadline import override_deadline
from engine.run_status import ensure_current
from engine.runs import (
    SYSTEM,
    Actor,
    BulkResult,
    Outcome,
    advance_all_ready,
    advance_auto,
    find_run,
    fire,
)
from engine.status import RunView, school_detail, status_table, stored_views
from engine.text import MAX_NAME, MAX_NOTE, MAX_REASON, clean_line, clean_text
from engine.version_apply import MOVE_ROLES, apply_move
from engine.version_move import preview_move
from engine.version_rules import MovePreview, SchoolMove, move_workbook, parse_mapping

__all__ = [
    # access and accounts: who sees and does what
    "Forbidden", "audit_filter", "is_school_user", "may_act", "recordable_facts", "region_scope",
    "require_fact_role", "require_write", "school_clause", "school_for", "scoped_views",
    "ROLES", "LoginResult", "UserError", "add_user", "authenticate", "disable_user", "list_users", "set_password",
    "end_session", "session_user", "start_session",
    # time, storage, errors, language
    "Clock", "FixedClock", "SystemClock", "as_utc", "parse_timestamp", "local_date",
    "DEFAULT_URL", "current_revision", "make_engine", "require_schema", "sessions", "transaction", "upgrade",
    "database_error", "DatabaseUnavailable", "TextRefused",
    "AuditError", "ImportFileError", "NotFound", "PlanFileError", "Problem", "RolloutError", "StaleStateError",
    "TransitionRefused", "WorkflowFileError", "WorkflowVersionConflict",
    "LANGUAGES", "set_language", "tr",
    "MAX_NAME", "MAX_NOTE", "MAX_REASON", "clean_line", "clean_text",
    # the persistent state
    "Batch", "Contact", "NoticeItem", "Notification", "Plan", "Region", "SchedulerState", "School",
    "SchoolFact", "SchoolRun", "User", "WorkflowVersion",
    # the run rules
    "find_plan", "load_plan", "plan_summary",
    "SYSTEM", "Actor", "BulkResult", "Outcome", "advance_all_ready", "advance_auto", "find_run", "fire",
    "set_fact", "ExtensionRequest", "decide_extension", "lapse_stale_requests", "pending_requests", "request_extension",
    "GateResult", "failing", "ensure_current",
    "EntryResult", "decide_many", "import_extensions", "import_facts",
    # what officials read
    "RunView", "school_detail", "status_table", "stored_views",
    "StateProblem", "StateReport", "verify_state",
    "action_label", "audit_triggers", "event_cells", "event_label", "fact_title", "role_title", "stage_title", "trigger_title",
    "KINDS", "Digest", "Notices", "due_digests", "due_notices", "record_notices",
    "bulletin_week", "office_contacts", "ranked_regions",
    # changing course mid-year: moving open runs to a new workflow version
    "MOVE_ROLES", "MoveRefused", "MovePreview", "SchoolMove", "apply_move", "move_workbook", "parse_mapping",
    "preview_move",
    "PlanChange", "PlanEdit", "edit_plan", "override_deadline",
    # files people open in Excel
    "SheetColumn", "neutralise", "write_csv", "xlsx_bytes",
]
