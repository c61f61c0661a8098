"""Templates: strict variables, HTML autoescape, markdown escaping, the office sandbox, overrides."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from notifications.rendering import RenderError, md_escape, render

DIGEST: dict[str, Any] = {
    "kind": "overdue",
    "recipient": {"name": "沂源县项目办", "level": "county", "region_name": "沂源县"},
    "plan_title": "沂源县提升工程2.0",
    "now": "2022-09-01 09:00",
    "items": [
        {"school_code": "3703230001", "school_name": "沂源县第一中学", "county_name": "沂源县",
         "stage_title": "校本实践", "due_date": "2022-08-31", "days_left": None, "days_overdue": 7,
         "failing_gates": ["实践学时≥25"], "provisional_calendar": False},
        {"school_code": "3703230002", "school_name": "沂源县实验小学", "county_name": "沂源县",
         "stage_title": "网络研修", "due_date": "2022-09-05", "days_left": 4, "days_overdue": None,
         "failing_gates": [], "provisional_calendar": True},
    ],
}
BULLETIN: dict[str, Any] = {
    "office": {"name": "淄博市项目办", "level": "city"}, "period": "2022年8月", "plan_title": "提升工程2.0",
    "rows": [{"rank": 1, "region_code": "370323", "region_name": "沂源县", "schools": 120, "done": 60,
              "done_share": 0.5, "overdue": 3, "overdue_share": 0.025, "stage_counts": {"校本实践": 50}}],
}


def digest(**changes: Any) -> dict[str, Any]:
    ctx = copy.deepcopy(DIGEST)
    ctx.update(changes)
    return ctx


@pytest.mark.parametrize("kind", ["reminder", "overdue", "escalation", "bulletin"])
@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("fmt", ["txt", "html", "md", "subject"])
def test_every_builtin_template_renders(kind: str, lang: str, fmt: str) -> None:
    ctx = BULLETIN if kind == "bulletin" else digest(kind=kind)
    out = render(kind, lang, fmt, ctx)
    assert ctx["plan_title"] in out  # every message says which programme it is about
    if fmt == "subject":
        assert "\n" not in out
        # a digest's subject counts its schools; a bulletin's names the office that issues it
        expected = ctx["office"]["name"] if kind == "bulletin" else {"zh": "2 所学校", "en": "2 school(s)"}[lang]
        assert expected in out
        return
    # a body names whom it addresses and every school (digest) or region (bulletin) it lists
    who = ctx["office"]["name"] if kind == "bulletin" else ctx["recipient"]["name"]
    listed = [r["region_name"] for r in ctx["rows"]] if kind == "bulletin" else [i["school_name"] for i in ctx["items"]]
    assert who in out and all(name in out for name in listed), out


def test_digest_text_content() -> None:
    out = render("overdue", "zh", "txt", DIGEST)
    assert "已逾期 7 天" in out and "剩余 4 天" in out and "实践学时≥25" in out
    assert "暂定工作日历" in out  # provisional calendar is flagged
    assert render("escalation", "zh", "subject", digest(kind="escalation")).startswith("【沂源县提升工程2.0】逾期督办")
    assert "2 school(s)" in render("reminder", "en", "subject", digest(kind="reminder"))


def test_bulletin_percentages() -> None:
    out = render("bulletin", "zh", "txt", BULLETIN)
    assert "（50.0%）" in out and "（2.5%）" in out and "校本实践 50" in out


def test_missing_variable_raises() -> None:
    ctx = digest()
    del ctx["plan_title"]
    with pytest.raises(RenderError, match="plan_title"):
        render("overdue", "zh", "txt", ctx)
    ctx = digest()
    del ctx["items"][0]["stage_title"]
    with pytest.raises(RenderError, match="stage_title"):
        render("overdue", "en", "md", ctx)


def test_html_is_autoescaped() -> None:
    ctx = digest()
    ctx["items"][0]["school_name"] = "<script>alert(1)</script>学校"
    out = render("overdue", "zh", "html", ctx)
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;学校" in out
    assert "<script>" in render("overdue", "zh", "txt", ctx)  # plain text is left as typed


def test_md_filter_escapes_markdown() -> None:
    assert md_escape("*_[]()#`|<>~!\\") == "\\*\\_\\[\\]\\(\\)\\#\\`\\|\\<\\>\\~\\!\\\\"
    assert md_escape("1. first") == "\\1. first" and md_escape("- item") == "\\- item"
    assert md_escape("a\n# heading") == "a \\# heading"  # no new line, no heading
    assert md_escape("2022-08-31 50.0%") == "2022-08-31 50.0%"  # ordinary text stays readable
    assert md_escape(md_escape("*x*")) == "\\*x\\*"  # never escaped twice


def test_md_templates_escape_values_by_default() -> None:
    ctx = digest()
    ctx["items"][0]["school_name"] = "[点我](http://evil.example)"
    out = render("overdue", "zh", "md", ctx)
    assert "\\[点我\\]\\(http://evil.example\\)" in out
    assert "](http" not in out
    assert "**逾期 7 天**" in out  # the template's own markdown is kept


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_office_override_wins_over_builtin(tmp_path: Path) -> None:
    office = write(tmp_path / "370323", "digest.zh.txt.j2", "本县模板：{{ recipient.name }}，共 {{ items|length }} 所")
    assert render("overdue", "zh", "txt", DIGEST, override_dir=office) == "本县模板：沂源县项目办，共 2 所"
    assert "本县模板" not in render("overdue", "en", "txt", DIGEST, override_dir=office)  # no override: built-in
    write(office, "overdue.zh.txt.j2", "逾期专用")
    assert render("overdue", "zh", "txt", DIGEST, override_dir=office) == "逾期专用"  # per-kind beats shared


def test_override_html_is_autoescaped_and_strict(tmp_path: Path) -> None:
    office = write(tmp_path, "digest.zh.html.j2", "<p>{{ items[0].school_name }}{{ nothing_here }}</p>")
    with pytest.raises(RenderError, match="nothing_here"):
        render("overdue", "zh", "html", DIGEST, override_dir=office)
    write(office, "digest.zh.html.j2", "<p>{{ recipient.name }}</p>")
    ctx = digest(recipient={"name": "<b>x</b>", "level": "county", "region_name": "r"})
    assert render("overdue", "zh", "html", ctx, override_dir=office) == "<p>&lt;b&gt;x&lt;/b&gt;</p>"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ recipient.__class__ }}",
    "{{ items.append(1) }}",
    "{{ 'a{0.__class__}'.format(1) }}",
])
def test_sandbox_blocks_unsafe_templates(tmp_path: Path, source: str) -> None:
    office = write(tmp_path, "digest.zh.txt.j2", source)
    with pytest.raises(RenderError):
        render("overdue", "zh", "txt", DIGEST, override_dir=office)


@pytest.mark.parametrize("source", [
    "{{ 'x' * 10**7 }}",
    "{{ 10**7 * 'x' }}",
    "{{ [1] * 10**8 }}",
    "{{ 2 ** 10000 }}",
    "{% for i in range(100000) %}{{ 'abcdefgh' }}{% endfor %}",
])
def test_sandbox_stops_huge_output(tmp_path: Path, source: str) -> None:
    office = write(tmp_path, "digest.zh.txt.j2", source)
    with pytest.raises(RenderError):
        render("overdue", "zh", "txt", DIGEST, override_dir=office)


def test_sandbox_still_allows_ordinary_arithmetic(tmp_path: Path) -> None:
    office = write(tmp_path, "digest.zh.txt.j2", "{{ '-' * 20 }}{{ 2 ** 10 }}{{ items|length * 3 }}")
    assert render("overdue", "zh", "txt", DIGEST, override_dir=office) == "-" * 20 + "10246"


def test_unknown_kind_language_or_format() -> None:
    for args in (("notice", "zh", "txt"), ("overdue", "fr", "txt"), ("overdue", "zh", "pdf")):
        with pytest.raises(RenderError):
            render(*args, DIGEST)


@pytest.mark.parametrize("source", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",  # ran forever
    "{{ 'x'|center(10**9) }}",  # built 1 GB
    "{{ 'x'|indent(10**9, true) }}{{ 'y'|indent(10**9, true) }}",  # reached 2 GB
])
def test_override_render_is_bounded_in_time_and_memory(tmp_path: Path, source: str) -> None:
    """Issue 12, Medium 8: every failure is a RenderError, and the next render still works."""
    office = write(tmp_path, "digest.zh.txt.j2", source)
    with pytest.raises(RenderError):
        render("overdue", "zh", "txt", DIGEST, override_dir=office)
    fine = write(tmp_path / "fine", "digest.zh.txt.j2", "{{ recipient.name }}")
    assert render("overdue", "zh", "txt", DIGEST, override_dir=fine) == DIGEST["recipient"]["name"]
