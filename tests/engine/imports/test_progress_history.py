"""Progress history and provenance (issue 11): changes kept per teacher with their as-of date, each
import an audit event with the file's SHA-256, the same file twice recorded once, ``full`` exports
marking absent teachers as left."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from engine.audit import verify_chains
from engine.clock import FixedClock
from engine.errors import ImportFileError
from engine.imports.progress import import_progress
from engine.metrics import teacher_summary
from engine.models import AuditEvent, ProgressImport, Region, School, Teacher, TeacherProgress
from tests.engine.imports.test_progress import GOOD, write_csv

CLOCK = FixedClock(datetime(2022, 3, 1, 2, 0, tzinfo=UTC))


@pytest.fixture
def schools(db: Engine) -> Engine:
    """The two schools of ``GOOD`` under their county."""
    with Session(db) as session, session.begin():
        session.add_all([
            Region(code="370000", name="山东省", level="province", parent_code=None),
            Region(code="370300", name="淄博市", level="city", parent_code="370000"),
            Region(code="370323", name="沂源县", level="county", parent_code="370300"),
        ])
        session.flush()
        for n in (1, 2):
            session.add(School(code=f"370323000{n}", name=f"沂源县第{n}小学", county_code="370323",
                               city_code="370300", province_code="370000", kind="primary"))
    return db


def history(db: Engine) -> list[tuple[str, date, float, float, bool]]:
    with Session(db) as s:
        rows = s.execute(
            select(Teacher.platform_id, ProgressImport.as_of, TeacherProgress.online_hours,
                   TeacherProgress.practice_hours, TeacherProgress.left_school)
            .join(Teacher, Teacher.id == TeacherProgress.teacher_id)
            .join(ProgressImport, ProgressImport.id == TeacherProgress.import_id)
            .order_by(ProgressImport.as_of, Teacher.platform_id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def imports(db: Engine) -> list[ProgressImport]:
    with Session(db) as s:
        rows = list(s.scalars(select(ProgressImport).order_by(ProgressImport.id)))
        s.expunge_all()
        return rows


def events(db: Engine) -> list[AuditEvent]:
    with Session(db) as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.chain == "import:progress").order_by(AuditEvent.seq)))
        s.expunge_all()
        return rows


def later(rows: list[list[str]], **online: str) -> list[list[str]]:
    out = [r[:] for r in rows]
    for r in out[1:]:
        if r[0] in online:
            r[3] = online[r[0]]
    return out


def test_first_import_records_every_teacher_and_an_audit_event(schools: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "export-0301.csv", GOOD)
    result = import_progress(schools, path, as_of=date(2022, 3, 1), actor="王科长", clock=CLOCK)
    assert result.import_id == 1 and result.same_as is None
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert history(schools) == [
        ("T0001", date(2022, 3, 1), 25.0, 30.5, False),
        ("T0002", date(2022, 3, 1), 12.0, 0.0, False),
        ("T0003", date(2022, 3, 1), 26.0, 25.0, False),
    ]
    (row,) = imports(schools)
    assert (row.file_name, row.sha256, row.as_of, row.actor, row.mapping) == (
        "export-0301.csv", result.sha256, date(2022, 3, 1), "王科长", "built-in")
    assert (row.total, row.inserted, row.updated, row.unchanged, row.left_school) == (3, 3, 0, 0, 0)
    (event,) = events(schools)
    assert (event.actor, event.trigger, event.seq) == ("王科长", "progress_import", 1)
    assert event.gates[0]["sha256"] == result.sha256 and event.gates[0]["import_id"] == 1
    assert event.gates[0]["as_of"] == "2022-03-01" and event.gates[0]["inserted"] == 3
    assert event.gates[0]["rejected"] == 0  # all or nothing: an accepted file rejected no row
    # The event carries the file's facts, not the actor and time it already holds as columns.
    assert sorted(event.gates[0]) == ["as_of", "file_name", "full", "import_id", "inserted", "left_school",
                                      "mapping", "rejected", "sha256", "total", "unchanged", "updated"]
    # A supervisor reading the trail sees in words which file, as of when, and what it did.
    assert event.reason == "导入教师学习进度 export-0301.csv（截至 2022-03-01）：新增 3，更新 0，未变 0，离校 0"
    with Session(schools) as s:
        assert verify_chains(s).ok


def test_only_changes_are_stored_with_their_as_of(schools: Engine, tmp_path: Path) -> None:
    import_progress(schools, write_csv(tmp_path / "a.csv", GOOD), as_of=date(2022, 3, 1), clock=CLOCK)
    second = import_progress(schools, write_csv(tmp_path / "b.csv", later(GOOD, T0002="20")),
                             as_of=date(2022, 3, 15), clock=CLOCK)
    assert (second.updated, second.unchanged, second.import_id) == (1, 2, 2)
    assert history(schools)[3:] == [("T0002", date(2022, 3, 15), 20.0, 0.0, False)]
    # A new export in which nothing moved is still an observation: recorded, no history rows.
    third = import_progress(schools, write_csv(tmp_path / "c.csv", later(GOOD, T0002="20"), "utf-8-sig"),
                            as_of=date(2022, 3, 29), clock=CLOCK)
    assert (third.updated, third.import_id) == (0, 3)
    assert len(history(schools)) == 4


def test_a_new_and_a_changed_teacher_in_one_file_each_get_their_own_history_row(schools: Engine,
                                                                                 tmp_path: Path) -> None:
    """The history row of a teacher already known and of one the file brings are both written, each
    under its own teacher (the known one found by the merge, the new one by its platform id)."""
    import_progress(schools, write_csv(tmp_path / "a.csv", GOOD[:3]), as_of=date(2022, 3, 1), clock=CLOCK)
    second = import_progress(schools, write_csv(tmp_path / "b.csv", later(GOOD, T0001="27")),
                             as_of=date(2022, 3, 15), clock=CLOCK)
    assert (second.inserted, second.updated, second.unchanged) == (1, 1, 1)
    assert history(schools)[2:] == [("T0001", date(2022, 3, 15), 27.0, 30.5, False),
                                    ("T0003", date(2022, 3, 15), 26.0, 25.0, False)]
    with Session(schools) as s:  # each row is its own teacher's: the ids match the teacher table
        pairs = s.execute(select(Teacher.platform_id, TeacherProgress.online_hours)
                          .join(TeacherProgress, TeacherProgress.teacher_id == Teacher.id)
                          .where(TeacherProgress.import_id == second.import_id).order_by(Teacher.platform_id)).all()
    assert [tuple(p) for p in pairs] == [("T0001", 27.0), ("T0003", 26.0)]


def test_the_same_file_again_is_a_no_op_and_says_so(schools: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", GOOD)
    import_progress(schools, path, as_of=date(2022, 3, 1), clock=CLOCK)
    again = import_progress(schools, path, as_of=date(2022, 3, 8), clock=CLOCK)
    assert (again.import_id, again.same_as, again.unchanged) == (None, 1, 3)
    assert len(imports(schools)) == 1 and len(events(schools)) == 1 and len(history(schools)) == 3


def test_an_earlier_as_of_is_refused_and_writes_nothing(schools: Engine, tmp_path: Path) -> None:
    import_progress(schools, write_csv(tmp_path / "a.csv", GOOD), as_of=date(2022, 3, 15), clock=CLOCK)
    with pytest.raises(ImportFileError, match="2022-03-01") as refused:
        import_progress(schools, write_csv(tmp_path / "b.csv", later(GOOD, T0002="20")),
                        as_of=date(2022, 3, 1), clock=CLOCK)
    (problem,) = refused.value.problems
    assert refused.value.source == problem.source == str(tmp_path / "b.csv")  # the file it is about
    assert "2022-03-01" in problem.message and "2022-03-15" in problem.message  # both dates, to compare
    assert len(imports(schools)) == 1 and len(history(schools)) == 3


def test_a_rejected_file_records_nothing(schools: Engine, tmp_path: Path) -> None:
    import_progress(schools, write_csv(tmp_path / "a.csv", GOOD), as_of=date(2022, 3, 1), clock=CLOCK)
    bad = later(GOOD, T0002="-5")
    with pytest.raises(ImportFileError):
        import_progress(schools, write_csv(tmp_path / "b.csv", bad), as_of=date(2022, 3, 8), clock=CLOCK)
    assert len(imports(schools)) == 1 and len(events(schools)) == 1 and len(history(schools)) == 3


def test_full_export_marks_absent_teachers_left_and_they_stop_counting(schools: Engine, tmp_path: Path) -> None:
    import_progress(schools, write_csv(tmp_path / "a.csv", GOOD), as_of=date(2022, 3, 1), clock=CLOCK)
    without_t2 = [r for r in GOOD if r[0] != "T0002"]
    partial = import_progress(schools, write_csv(tmp_path / "b.csv", without_t2), as_of=date(2022, 3, 8), clock=CLOCK)
    assert partial.left == 0  # without --full nothing is removed
    full = import_progress(schools, write_csv(tmp_path / "b2.csv", without_t2 + [["T0009", "新", "3703230002", "0", "0", "", "", ""]]),
                           as_of=date(2022, 3, 15), full=True, clock=CLOCK)
    assert (full.left, full.inserted) == (1, 1)
    with Session(schools) as s:
        assert s.scalar(select(Teacher.left_on).where(Teacher.platform_id == "T0002")) == date(2022, 3, 15)
        assert s.scalar(select(func.count()).select_from(Teacher).where(Teacher.left_on.is_(None))) == 3
    assert ("T0002", date(2022, 3, 15), 12.0, 0.0, True) in history(schools)
    assert imports(schools)[-1].left_school == 1 and events(schools)[-1].gates[0]["left_school"] == 1
    # Listed again later: back at school, and the history says so.
    back = import_progress(schools, write_csv(tmp_path / "c.csv", GOOD), as_of=date(2022, 3, 22), clock=CLOCK)
    assert back.updated == 1
    with Session(schools) as s:
        assert s.scalar(select(Teacher.left_on).where(Teacher.platform_id == "T0002")) is None
    assert history(schools)[-1] == ("T0002", date(2022, 3, 22), 12.0, 0.0, False)


def test_each_history_row_keeps_the_teachers_figures_before_it(schools: Engine, tmp_path: Path) -> None:
    """Migration 0018: a forecast takes a teacher's figures as of an import from the prior figures
    of its next row, so every row must carry its teacher's previous row's figures (none on its
    first: the baseline, a new teacher), a leaving row its own, a return the figures it left with;
    and the teacher table must hold the latest row's (the base when no row follows)."""
    import_progress(schools, write_csv(tmp_path / "a.csv", GOOD), as_of=date(2022, 3, 1), clock=CLOCK)
    changed = later(GOOD, T0001="27") + [["T0009", "新", "3703230002", "4", "1", "", "", ""]]
    import_progress(schools, write_csv(tmp_path / "b.csv", changed), as_of=date(2022, 3, 8), clock=CLOCK)
    without_t2 = [r for r in changed if r[0] != "T0002"]
    import_progress(schools, write_csv(tmp_path / "c.csv", later(without_t2, T0003="30")), as_of=date(2022, 3, 15),
                    full=True, clock=CLOCK)
    back = later(changed, T0002="14", T0003="30")
    import_progress(schools, write_csv(tmp_path / "d.csv", back), as_of=date(2022, 3, 22), clock=CLOCK)
    with Session(schools) as s:
        rows = s.execute(
            select(Teacher.platform_id, TeacherProgress.import_id, TeacherProgress.online_hours,
                   TeacherProgress.practice_hours, TeacherProgress.points_count, TeacherProgress.evidence_count,
                   TeacherProgress.prior_online_hours, TeacherProgress.prior_practice_hours,
                   TeacherProgress.prior_points_count, TeacherProgress.prior_evidence_count)
            .join(Teacher, Teacher.id == TeacherProgress.teacher_id)
            .order_by(Teacher.platform_id, TeacherProgress.import_id)).all()
        now = {r[0]: tuple(r[1:]) for r in s.execute(select(
            Teacher.platform_id, Teacher.online_hours, Teacher.practice_hours, Teacher.points_count,
            Teacher.evidence_count))}
    before: dict[str, tuple[float | None, ...]] = {}
    for pid, _import_id, *figures in rows:
        assert tuple(figures[4:]) == before.get(pid, (None,) * 4), pid
        before[pid] = tuple(figures[:4])
    assert before == now  # the teacher table holds each teacher's latest row
    t2 = [(r[1], r[2], r[6]) for r in rows if r[0] == "T0002"]
    assert t2 == [(1, 12.0, None), (3, 12.0, 12.0), (4, 14.0, 12.0)]  # baseline, leaving, back with more
    assert [(r[1], r[6]) for r in rows if r[0] == "T0009"] == [(2, None)]  # new: no figures before


def test_a_left_teacher_no_longer_holds_back_an_every_teacher_metric(schools: Engine, tmp_path: Path) -> None:
    import_progress(schools, write_csv(tmp_path / "a.csv", GOOD), as_of=date(2022, 3, 1), clock=CLOCK)
    with Session(schools) as s:
        assert teacher_summary(s, "3703230001")["online_below_25h"] == 1  # 李四, 12 h
    import_progress(schools, write_csv(tmp_path / "b.csv", [r for r in GOOD if r[0] != "T0002"]),
                    as_of=date(2022, 3, 8), full=True, clock=CLOCK)
    with Session(schools) as s:
        summary = teacher_summary(s, "3703230001")
    assert (summary["teachers"], summary["online_below_25h"]) == (1, 0)


def test_a_teacher_who_moves_school_is_moved_and_the_others_keep_theirs(schools: Engine, tmp_path: Path) -> None:
    """On SQLite the merge sets school and leaving mark in a statement of their own, only for the
    teachers whose school changed or who were marked left (so it does not rewrite the school indexes
    of a million teachers whose hours changed); PostgreSQL sets them in its one UPDATE. Either way
    both kinds of change land, and are counted once."""
    import_progress(schools, write_csv(tmp_path / "a.csv", GOOD), as_of=date(2022, 3, 1), clock=CLOCK)
    moved = later(GOOD, T0001="27")
    moved[2] = ["T0002", "李四", "3703230002", "13", "0", "", "", ""]  # another school, and an hour more
    result = import_progress(schools, write_csv(tmp_path / "b.csv", moved), as_of=date(2022, 3, 8), clock=CLOCK)
    assert (result.updated, result.unchanged) == (2, 1)
    with Session(schools) as s:
        where = {p: c for p, c in s.execute(select(Teacher.platform_id, Teacher.school_code))}
        assert where == {"T0001": "3703230001", "T0002": "3703230002", "T0003": "3703230002"}
        assert s.scalar(select(Teacher.online_hours).where(Teacher.platform_id == "T0001")) == 27.0
    assert history(schools)[-2:] == [("T0001", date(2022, 3, 8), 27.0, 30.5, False),
                                     ("T0002", date(2022, 3, 8), 13.0, 0.0, False)]


def test_audit_verify_finds_history_that_names_a_teacher_or_an_import_that_does_not_exist(
        schools: Engine, tmp_path: Path) -> None:
    """The history has no foreign keys (migration 0017): ``audit verify`` is what notices a row
    whose teacher or import is gone."""
    from engine.projection import verify_state

    import_progress(schools, write_csv(tmp_path / "export.csv", GOOD), as_of=date(2022, 3, 1), clock=CLOCK)
    with Session(schools) as s:
        assert [p for p in verify_state(s).problems if p.kind == "history"] == []
    with Session(schools) as s, s.begin():
        s.add(TeacherProgress(teacher_id=9999, import_id=1, online_hours=1, practice_hours=0, points_count=0,
                              evidence_count=0, left_school=False))
        s.add(TeacherProgress(teacher_id=1, import_id=77, online_hours=1, practice_hours=0, points_count=0,
                              evidence_count=0, left_school=False))
    with Session(schools) as s:
        found = [p for p in verify_state(s).problems if p.kind == "history"]
    assert len(found) == 1 and "1 名教师、1 次导入" in found[0].message


def test_postgresql_samples_again_only_the_tables_an_import_changed(schools: Engine, tmp_path: Path) -> None:
    """The history and the runs' verdicts change with every import that changes a figure; the
    teacher table's planner statistics only when teachers come or leave (each ANALYZE is 0.1–0.3 s
    at a province's size). SQLite samples its whole database either way (0.1 s)."""
    if schools.dialect.name != "postgresql":
        pytest.skip("SQLite's ANALYZE is one sampled statement for the whole database")
    analysed: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("ANALYZE") and "rollout_" not in statement:
            analysed.append(statement.split()[1])

    event.listen(schools, "before_cursor_execute", seen)
    try:
        import_progress(schools, write_csv(tmp_path / "a.csv", GOOD), as_of=date(2022, 3, 1), clock=CLOCK)
        assert sorted(analysed) == ["school_run", "teacher", "teacher_progress"]
        analysed.clear()
        import_progress(schools, write_csv(tmp_path / "b.csv", later(GOOD, T0001="27")), as_of=date(2022, 3, 8),
                        clock=CLOCK)
        assert sorted(analysed) == ["school_run", "teacher_progress"]
        analysed.clear()
        import_progress(schools, write_csv(tmp_path / "c.csv", later(GOOD, T0001="28")[:-1]), as_of=date(2022, 3, 15),
                        full=True, clock=CLOCK)
        assert sorted(analysed) == ["school_run", "teacher", "teacher_progress"]  # one teacher left
    finally:
        event.remove(schools, "before_cursor_execute", seen)
