"""The service layer: what composes the engine and notifications into the office's daily work.

The sweep (auto-advance, then queue what is due), the weekly bulletins, and the scheduler that
runs them with dispatch on a timetable — with exactly one scheduler per database (``leader``) —
and the uploads offices make in the browser or platforms through the API (``uploads``).
Above ``engine`` and ``notifications``, below ``cli`` and ``web``.
"""

from service.leader import SchedulerAlreadyRunning
from service.scheduler import (
    ScheduleError,
    Settings,
    bulletin_trigger,
    parse_every,
    run_once,
    serve,
    status,
)
from service.sweep import SweepResult, run_bulletins, run_sweep
from service.upload_jobs import (
    BACKGROUND_BYTES,
    WORKER_NICENESS,
    JobRunner,
    Progress,
    hold,
    progress_of,
    recover_jobs,
    worker_gone,
)
from service.uploads import (
    DEFAULT_MAPPING,
    FIELD_TITLES,
    KIND_TITLES,
    MAPPINGS_ENV,
    MAX_UPLOAD,
    UPLOAD_DIR_ENV,
    UploadError,
    UploadTooLarge,
    check_mapping,
    check_upload,
    commit_upload,
    field_title,
    mapping_choices,
    preview_upload,
    problems_xlsx,
    rows_from_json,
    sha256_of,
    stored_name,
    upload_dir,
)

__all__ = [
    "SweepResult", "run_bulletins", "run_sweep",
    "ScheduleError", "SchedulerAlreadyRunning", "Settings", "bulletin_trigger", "parse_every", "run_once",
    "serve", "status",
    "DEFAULT_MAPPING", "FIELD_TITLES", "KIND_TITLES", "field_title", "MAPPINGS_ENV", "MAX_UPLOAD", "UPLOAD_DIR_ENV", "UploadError", "UploadTooLarge",
    "check_mapping", "check_upload", "commit_upload", "mapping_choices", "preview_upload", "problems_xlsx",
    "rows_from_json", "sha256_of", "stored_name", "upload_dir",
    "BACKGROUND_BYTES", "WORKER_NICENESS", "JobRunner", "Progress", "progress_of", "hold", "recover_jobs", "worker_gone",
]
