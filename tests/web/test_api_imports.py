"""POST /api/imports/{kind} with a service account's token: dry run, import, retry, scope, revocation, limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

import engine.tokens as tokens_module
import web.multipart as multipart_module
from engine.db import sessions, transaction
from engine.models import AuditEvent, Teacher
from engine.tokens import add_token, revoke_tokens
from tests.engine.builders import COUNTY, EARLY, OTHER
from tests.web.conftest import Site
from tests.web.test_uploads import GOOD, count, progress_csv


@pytest.fixture
def folder(tmp_path: Path, site: Site) -> Path:
    path = tmp_path / "uploads"
    path.mkdir()
    site.app.state.rollout.uploads = path
    return path


def token_for(site: Site, role: str = "county_office", scope: str = COUNTY, name: str = "platform") -> str:
    with transaction(sessions(site.engine)) as s:
        return add_token(s, site.clock, name=name, role=role, scope=scope)


def post(client: TestClient, token: str, body: bytes, *, query: str = "", key: str | None = None,
         kind: str = "progress") -> object:
    headers = {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": key} if key else {})
    return client.post(f"/api/imports/{kind}{query}", headers=headers, files={"file": ("进度.csv", body, "text/csv")})


def test_dry_run_then_import_then_retry_imports_once(site: Site, folder: Path) -> None:
    client, token = site.client(), token_for(site)
    r = post(client, token, progress_csv(GOOD), query="?dry_run=1")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["dry_run"] and data["inserted"] == 6 and data["encoding"] == "gb18030" and data["problems"] == []
    assert {g["code"] for g in data["groups"]} == set(EARLY)
    assert count(site, Teacher) == 0
    r = post(client, token, progress_csv(GOOD), key="nightly-2021-07-01")
    assert r.status_code == 201 and r.json()["state"] == "imported" and r.json()["inserted"] == 6
    assert count(site, Teacher) == 6
    again = post(client, token, progress_csv(GOOD), key="nightly-2021-07-01")
    assert again.status_code == 200 and again.json()["replayed"] and again.json()["job"] == r.json()["job"]
    # Without a key the body's hash names the import: the same file twice is one import.
    other = [f"V{i},教师,{EARLY[0]},30,30,\"1,2,3\",3,合格\n" for i in range(2)]
    first = post(client, token, progress_csv(other))
    second = post(client, token, progress_csv(other))
    assert first.status_code == 201 and second.status_code == 200 and second.json()["replayed"]
    assert count(site, Teacher) == 8
    with transaction(sessions(site.engine)) as s:
        assert s.scalar(select(func.count()).where(AuditEvent.trigger == "import_progress")) == 2
    clash = post(client, token, progress_csv(GOOD[:2]), key="nightly-2021-07-01")
    assert clash.status_code == 409


def test_bad_rows_and_other_regions_are_422_with_row_and_field(site: Site, folder: Path) -> None:
    client, token = site.client(), token_for(site)
    body = progress_csv([*GOOD, f"U9,越界,{OTHER},30,30,\"1,2,3\",3,合格\n"])
    r = post(client, token, body)
    assert r.status_code == 422
    [problem] = r.json()["problems"]
    assert (problem["row"], problem["field"], problem["column"]) == (8, "学校标识码", 3)
    assert "不在您的管辖范围内" in problem["message"]
    assert count(site, Teacher) == 0


def test_json_rows_go_through_the_same_importer(site: Site, folder: Path) -> None:
    client, token = site.client(), token_for(site)
    rows = [{"platform_id": "J1", "name": "张三", "school_code": EARLY[0], "online_hours": 30, "practice_hours": 28,
             "points": "1,5,9"},
            {"platform_id": "J2", "name": "李四", "school_code": EARLY[0], "online_hours": "x", "practice_hours": 28,
             "points": "1,5,9"}]
    r = client.post("/api/imports/progress?dry_run=1", headers={"Authorization": f"Bearer {token}"}, json={"rows": rows})
    assert r.status_code == 422
    [problem] = r.json()["problems"]
    assert (problem["index"], problem["field"]) == (1, "online_hours")
    r = client.post("/api/imports/progress", headers={"Authorization": f"Bearer {token}"}, json={"rows": rows[:1]})
    assert r.status_code == 201 and r.json()["inserted"] == 1, r.text
    bad = client.post("/api/imports/progress", headers={"Authorization": f"Bearer {token}"}, json={"rows": [{"a": {"b": 1}}]})
    assert bad.status_code == 400
    assert list(folder.iterdir()) and all(p.suffix != ".json" for p in folder.iterdir())  # raw bodies not kept


def test_revoked_unknown_and_no_token_are_401_and_nothing_is_stored(site: Site, folder: Path) -> None:
    client, token = site.client(), token_for(site)
    with transaction(sessions(site.engine)) as s:
        revoke_tokens(s, site.clock, "platform")
    assert post(client, token, progress_csv(GOOD)).status_code == 401
    assert post(client, "rlt_nonsense", progress_csv(GOOD)).status_code == 401
    r = client.post("/api/imports/progress", files={"file": ("a.csv", progress_csv(GOOD), "text/csv")})
    assert r.status_code == 401
    assert list(folder.iterdir()) == []
    assert count(site, Teacher) == 0


@pytest.mark.parametrize(("role", "scope", "status"), [("school_admin", EARLY[0], 403), ("supervisor", COUNTY, 403),
                                                       ("city_office", "370300", 201)])
def test_roles(site: Site, folder: Path, role: str, scope: str, status: int) -> None:
    r = post(site.client(), token_for(site, role, scope), progress_csv(GOOD))
    assert r.status_code == status, r.text


def test_a_token_is_no_way_around_the_other_endpoints_csrf(site: Site, folder: Path) -> None:
    """Tokens are taken by the import API only: elsewhere a bearer header is no sign-in."""
    token = token_for(site)
    r = site.client().get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_limits_413_and_429(site: Site, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client, token = site.client(), token_for(site)
    monkeypatch.setattr(multipart_module, "MAX_UPLOAD", 500)
    monkeypatch.setattr(multipart_module, "UPLOAD_SLACK", 0)
    assert post(client, token, progress_csv(GOOD * 10)).status_code == 413
    monkeypatch.setattr(multipart_module, "MAX_UPLOAD", 10**8)
    monkeypatch.setattr(tokens_module, "RATE_LIMIT", 2)
    assert post(client, token, progress_csv(GOOD), query="?dry_run=1").status_code == 200
    assert post(client, token, progress_csv(GOOD), query="?dry_run=1").status_code == 200
    r = post(client, token, progress_csv(GOOD), query="?dry_run=1")
    assert r.status_code == 429 and "每分钟" in r.json()["error"]
    assert list(folder.iterdir()) and count(site, Teacher) == 0


def test_the_import_api_is_in_the_openapi_document(site: Site) -> None:
    doc = site.client().get("/api/openapi.json").json()
    op = doc["paths"]["/api/imports/{kind}"]["post"]
    assert "curl" in op["description"] and {"200", "201", "413", "422", "429"} <= {str(k) for k in op["responses"]}
