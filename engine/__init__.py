"""rollout's engine: the programme's rules and its persistent state — the one API above it uses.

cli/, web/, service/ and notifications/ import from here and from the four part packages
(``engine.workflow``, ``engine.audit``, ``engine.imports``, ``engine.calendar``), never from a module
inside; the import-linter contracts in ``.importlinter`` hold them to it (``make lint``). Modules
inside the engine import each other by their full path, never through this file.
"""

from engine.access import (
    Forbidden,
    audit_filter,
    is_contractor,
    is_school_user,
    lists_schools,
    may_act,
    recordable_facts,
    region_level_of,
    region_scope,
    region_subtree,
    require_fact_role,
    require_run,
    require_upload,
    require_write,
    run_clause,
    school_clause,
    school_clause_for,
    school_for,
    scoped_views,
    upload_kinds,
    user_school_clause,
)
from engine.account_admin import (
    Added,
    bulk_add_users,
    change_own_password,
    managed_users,
    manages_accounts,
    may_grant,
    office_add_user,
    office_disable_user,
    office_reset_password,
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
from engine.bulletin import bulletin_week, office_contacts, rank_rows, ranked_regions
from engine.clock import Clock, FixedClock, SystemClock, as_utc, parse_timestamp
from engine.contractors import contractor_ranking, has_contractors, is_province, rate_columns
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
    pending_request,
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
from engine.metrics import teachers_behind
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
from engine.notices import (
    KINDS,
    Digest,
    Notices,
    Warnings,
    due_digests,
    due_notices,
    due_warnings,
    record_notices,
    record_rearmed,
    warning_outcomes,
)
from engine.plan import find_plan, load_plan, plan_summary
from engine.plan_edit import PlanChange, PlanEdit, edit_plan
from engine.plan_history import (
    CHANGE_TRIGGERS,
    CHANGE_WORDS,
    change_filter,
    change_summary,
    change_value,
    sees_plan_events,
)
from engine.projection import StateProblem, StateReport, verify_state
from engine.rates import RateValue, rate_values
from engine.rates import total as rate_total
from engine.reads import remember_reads
from engine.records import ApiToken, ImportJob
from engine.regions import region_clause
from engine.run_deadline import may_override_deadline, override_deadline
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
from engine.school_state import (
    STATE_HELP,
    STATE_TITLES,
    STATES,
    run_state,
    school_state,
    stage_horizon,
    state_case,
    state_title,
)
from engine.status import RunView, rework_clause, school_detail, status_table, stored_views
from engine.tally import plan_in_region, rate_tallies, run_tallies, tally_drift
from engine.text import MAX_NAME, MAX_NOTE, MAX_REASON, clean_line, clean_text
from engine.token_admin import office_add_token, office_revoke_token, office_tokens
from engine.tokens import (
    DEFAULT_DAYS as DEFAULT_TOKEN_DAYS,
)
from engine.tokens import (
    RATE_LIMIT,
    Throttled,
    TokenInfo,
    TokenRefused,
    add_token,
    is_service_account,
    list_tokens,
    revoke_tokens,
    token_user,
)
from engine.uploads import (
    AsOf,
    Counts,
    UploadRefused,
    check_committable,
    claim_commit,
    create_job,
    find_idempotent,
    job_for,
    latest_import,
    list_jobs,
    mark_interrupted,
    problem_rows,
    record_commit,
    record_failure,
    record_preview,
    release_commit,
    reset_for_retry,
)
from engine.version_apply import MOVE_ROLES, apply_move
from engine.version_move import preview_move
from engine.version_rules import MovePreview, SchoolMove, move_workbook, parse_mapping

__all__ = [
    # access and accounts: who sees and does what
    "Forbidden", "audit_filter", "is_contractor", "is_school_user", "lists_schools", "may_act", "recordable_facts", "region_scope",
    "require_fact_role", "require_run", "require_write", "run_clause", "school_clause", "school_for", "scoped_views",
    "region_subtree", "require_upload", "school_clause_for", "upload_kinds",
    "user_school_clause", "region_clause", "rate_tallies", "run_tallies", "tally_drift",
    "plan_in_region", "region_level_of",
    "ROLES", "LoginResult", "UserError", "add_user", "authenticate", "disable_user", "list_users", "set_password",
    "end_session", "session_user", "start_session",
    # time, storage, errors, language
    "Clock", "FixedClock", "SystemClock", "as_utc", "parse_timestamp", "local_date",
    "DEFAULT_URL", "current_revision", "make_engine", "require_schema", "sessions", "transaction", "upgrade",
    "remember_reads",
    "database_error", "DatabaseUnavailable", "TextRefused",
    "AuditError", "ImportFileError", "NotFound", "PlanFileError", "Problem", "RolloutError", "StaleStateError",
    "TransitionRefused", "WorkflowFileError", "WorkflowVersionConflict",
    "LANGUAGES", "set_language", "tr",
    "MAX_NAME", "MAX_NOTE", "MAX_REASON", "clean_line", "clean_text",
    # the persistent state
    "Batch", "Contact", "NoticeItem", "Notification", "Plan", "Region", "SchedulerState", "School",
    "SchoolFact", "SchoolRun", "User", "WorkflowVersion", "ApiToken", "ImportJob",
    # the run rules
    "find_plan", "load_plan", "plan_summary",
    "SYSTEM", "Actor", "BulkResult", "Outcome", "advance_all_ready", "advance_auto", "find_run", "fire",
    "set_fact", "ExtensionRequest", "decide_extension", "lapse_stale_requests", "pending_request", "pending_requests", "request_extension",
    "GateResult", "failing", "ensure_current", "RateValue", "rate_total", "rate_values", "teachers_behind",
    "EntryResult", "decide_many", "import_extensions", "import_facts",
    # what officials read
    "RunView", "rework_clause", "school_detail", "status_table", "stored_views",
    "STATES", "STATE_HELP", "STATE_TITLES", "run_state", "school_state", "stage_horizon", "state_case", "state_title",
    "StateProblem", "StateReport", "verify_state",
    "action_label", "audit_triggers", "event_cells", "event_label", "fact_title", "role_title", "stage_title", "trigger_title",
    "KINDS", "Digest", "Notices", "due_digests", "due_notices", "record_notices",
    "Warnings", "due_warnings", "record_rearmed", "warning_outcomes",
    "bulletin_week", "office_contacts", "rank_rows", "ranked_regions",
    "contractor_ranking", "has_contractors", "is_province", "rate_columns",
    # changing course mid-year: moving open runs to a new workflow version
    "MOVE_ROLES", "MoveRefused", "MovePreview", "SchoolMove", "apply_move", "move_workbook", "parse_mapping",
    "preview_move",
    "PlanChange", "PlanEdit", "edit_plan", "override_deadline", "may_override_deadline",
    "CHANGE_TRIGGERS", "CHANGE_WORDS", "change_filter", "change_summary", "change_value", "sees_plan_events",
    # files people open in Excel
    "SheetColumn", "neutralise", "write_csv", "xlsx_bytes",
    # uploads: files brought in through the web and the API
    "AsOf", "Counts", "UploadRefused", "check_committable", "office_add_token", "office_revoke_token", "office_tokens", "claim_commit", "release_commit", "mark_interrupted", "reset_for_retry", "create_job", "find_idempotent", "job_for",
    "latest_import", "list_jobs", "problem_rows", "record_commit", "record_failure", "record_preview",
    # service accounts and their API tokens
    "DEFAULT_TOKEN_DAYS", "RATE_LIMIT", "Throttled", "TokenInfo", "TokenRefused", "add_token", "is_service_account", "list_tokens",
    "revoke_tokens", "token_user",
    # accounts an office manages for its subtree
    "Added", "bulk_add_users", "change_own_password", "managed_users", "manages_accounts", "may_grant", "office_add_user",
    "office_disable_user", "office_reset_password",
]
