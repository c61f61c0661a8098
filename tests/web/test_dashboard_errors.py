"""404/403/500 in the site's layout and language, with the navigation; the API answers JSON."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.engine.builders import EARLY, OTHER
from tests.web.conftest import Site, csrf_of


def test_unknown_address_is_a_chinese_page_with_navigation(site: Site) -> None:
    r = site.as_user("county").get("/no/such/page")
    assert r.status_code == 404 and "页面不存在" in r.text and "Not Found" not in r.text
    assert '<a href="/overdue">' in r.text and "/static/style.css" in r.text
    assert "Not found" in site.client().get("/nowhere?lang=en").text
    api = site.client().get("/api/nowhere")
    assert api.status_code == 404 and api.json()["error"]


def test_engine_refusals_render_in_the_layout(site: Site) -> None:
    r = site.as_user("county").get(f"/schools/{OTHER}")
    assert r.status_code == 404 and "页面不存在" in r.text and f"没有学校 {OTHER}" in r.text and "<nav>" in r.text
    sup = site.as_user("sup")
    page = sup.get(f"/schools/{EARLY[0]}")
    r = sup.post(f"/schools/{EARLY[0]}/actions/advance", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 403 and "无权访问" in r.text and "督导账号只读" in r.text


def test_server_error_shows_no_traceback(site: Site, monkeypatch: object) -> None:
    import web.overview as overview

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(overview, "overview", boom)  # type: ignore[attr-defined]
    client = TestClient(site.app, raise_server_exceptions=False, follow_redirects=False)
    site.login(client, "county")
    r = client.get("/")
    assert r.status_code == 500 and "服务器出错" in r.text and "secret detail" not in r.text and "<nav>" in r.text
