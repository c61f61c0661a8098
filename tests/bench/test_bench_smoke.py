"""The benchmark kit runs end to end at tiny size (no timing assertions: numbers live in docs/benchmarks.md)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench.generate import PROGRESS_HEADER, SIZES, describe, generate
from bench.run import main


def test_generator_is_reproducible(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", SIZES["tiny"])
    b = generate(tmp_path / "b", SIZES["tiny"])
    assert a.progress_csv.read_bytes() == b.progress_csv.read_bytes()
    assert describe(tmp_path / "a", SIZES["tiny"]).ready == a.ready
    with a.progress_csv.open(encoding="gb18030", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == PROGRESS_HEADER
    assert len(rows) == SIZES["tiny"].teachers + 1
    assert a.schools.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, as Excel writes it


def test_whole_kit_runs_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ROLLOUT_TEST_PG_URL", raising=False)
    out = tmp_path / "benchmarks.md"
    assert main(["--size", "tiny", "--reps", "1", "--out", str(out), "--workdir", str(tmp_path / "data")]) == 0
    doc = out.read_text(encoding="utf-8")
    for label in ("progress import, CSV", "progress import, XLSX", "gate evaluation", "bulk advance with audit",
                  "sweep, nothing due", "sweep, reminders due", "audit verify", "status table",
                  "web overview page, province officer", "web overdue list (first page), county officer"):
        assert f"| SQLite | {label}" in doc
    # The sweep benchmark really produces the pilot schools' reminders, and bulk advance moves every ready school.
    tiny = SIZES["tiny"]
    assert f"| SQLite | sweep, reminders due (pilot schools) | {tiny.schools // 10} |" in doc
    assert f"| SQLite | bulk advance with audit (ready schools) | {tiny.schools // 5} |" in doc
    assert "PostgreSQL not run" in doc
    # A download's peak is its request's own (argon2 at sign-in would otherwise set every page's peak).
    xlsx = next(line for line in doc.splitlines() if line.startswith("| SQLite | XLSX of the pilot schools' list"))
    assert "(request " in xlsx
    plans = doc.split("Query plans of the hot queries on SQLite", 1)[1]
    assert "ix_school_run_plan_due" in plans  # the stored-status index serves the status, overdue and sweep queries


def test_upload_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    """bench/uploads.py at tiny size: the CLI import and the web upload → preview → confirm both
    finish and the other pages were requested meanwhile (the numbers are in docs/benchmarks.md)."""
    from bench.uploads import run

    result = run("tiny", idle_seconds=0.5, workdir=tmp_path)
    assert result["rows"] == SIZES["tiny"].teachers
    assert result["cli_s"] > 0 and result["web_s"] > 0 and result["web_peak_mb"] > 0
    assert result["busy_requests"] >= 1


def test_extension_queue_bench_adds_requests_once_and_times_the_pages(tmp_path: Path) -> None:
    """bench/extensions.py at tiny size: a ninth of the planning schools ask, the queue holds
    them, and a second run adds none (it times the same database again)."""
    from bench import ops
    from bench.extensions import main as extensions
    from bench.generate import generate
    from engine.db import make_engine

    url = f"sqlite:///{tmp_path / 'e.db'}"
    engine = make_engine(url)
    ops.setup(engine, generate(tmp_path / "data", SIZES["tiny"]))
    engine.dispose()
    first = extensions(url, 1)
    assert isinstance(first["added"], int) and first["added"] > 0 and first["pending"] == first["added"]
    again = extensions(url, 1)
    assert again["added"] == 0 and again["pending"] == first["added"]
    assert all(isinstance(again[k], float) and again[k] > 0 for k in ("county_queue_ms", "school_page_ms"))


def test_province_forecast_bench_runs_at_tiny_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bench.forecast_db builds 12 weekly imports and forecasts every school; both methods agree on
    which schools exist and read the same teachers."""
    import json

    from bench.forecast_db import main as forecast_db
    from bench.forecast_speed import main as forecast_speed

    db = tmp_path / "f.db"
    forecast_db(["--size", "tiny", "--db", str(db), "--samples", "50"])
    forecast_db(["--size", "tiny", "--db", str(db), "--samples", "50", "--reuse", "--method", "bootstrap"])
    forecast_db(["--size", "tiny", "--db", str(db), "--samples", "50", "--reuse", "--finished", "0.25"])
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    # Every teacher holds the hours of its last history row, as an import would leave them.
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        differ = conn.scalar(text(
            "SELECT count(*) FROM teacher t JOIN teacher_progress p ON p.teacher_id = t.id "
            "AND p.import_id = (SELECT max(import_id) FROM teacher_progress q WHERE q.teacher_id = t.id) "
            "WHERE t.online_hours != p.online_hours OR t.practice_hours != p.practice_hours"))
        # and each history row the figures before it, as an import writes them (migration 0018)
        unlike = conn.scalar(text(
            "SELECT count(*) FROM (SELECT prior_online_hours AS po, prior_practice_hours AS pp, prior_points_count AS pn, "
            "lag(online_hours) OVER w AS o, lag(practice_hours) OVER w AS p, lag(points_count) OVER w AS n "
            "FROM teacher_progress WINDOW w AS (PARTITION BY teacher_id ORDER BY import_id)) "
            "WHERE po IS NOT o OR pp IS NOT p OR pn IS NOT n"))
        studied = conn.scalar(text("SELECT count(*) FROM teacher t JOIN teacher_progress p ON p.teacher_id = t.id "
                                   "AND p.import_id = 2 WHERE p.online_hours > 0"))
    engine.dispose()
    assert differ == 0 and unlike == 0 and studied  # and the first week is not all zeros
    tiny = SIZES["tiny"]
    assert [(r["method"], r["schools"], r["teachers"]) for r in results[:2]] == [
        ("approximate", tiny.schools, tiny.teachers), ("bootstrap", tiny.schools, tiny.teachers)]
    # every fourth school left out as finished: their teachers are not forecast
    assert (results[2]["finished"], results[2]["schools"]) == (0.25, tiny.schools - tiny.schools // 4)
    assert 0 < results[2]["teachers"] < tiny.teachers
    forecast_speed(["--schools", "20", "--samples", "50", "--batch", "7"])
    assert "20 schools × 20 teachers" in capsys.readouterr().out


def test_reimport_bench_times_a_changed_then_an_unchanged_file_after_a_checkpoint(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--reimport`` changes every teacher's hours, then imports the same file again (nothing to
    change); on PostgreSQL each import follows a checkpoint, as an office's weekly import does."""
    import json

    from bench.forecast_db import main as forecast_db

    pg = db_url.startswith("postgresql")
    target = ["--pg", db_url] if pg else ["--db", db_url.removeprefix("sqlite:///")]
    forecast_db(["--size", "tiny", *target, "--samples", "50"])
    capsys.readouterr()
    forecast_db(["--size", "tiny", *target, "--reuse", "--reimport"])
    (result,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert (result["changed_updated"], result["unchanged_updated"]) == (SIZES["tiny"].teachers, 0)
    assert (result["changed_checkpointed"], result["unchanged_checkpointed"]) == (pg, pg)
