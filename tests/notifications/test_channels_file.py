"""The folder channel: one file per message, deterministic names, idempotent rewrites."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default
from pathlib import Path

from notifications.channels.file import FileChannel, file_name
from notifications.channels.http import truncate_utf8
from notifications.message import OutgoingMessage


def test_chat_message_becomes_markdown_and_mail_becomes_eml(tmp_path: Path) -> None:
    chat = OutgoingMessage(channel="file", address=str(tmp_path), subject="逾期提醒", text="t",
                           markdown="**3** 所学校", key="overdue:county:370323")
    mail = OutgoingMessage(channel="file", address=str(tmp_path), subject="通报", text="正文",
                           html="<p>正文</p>", attachment_name="通报.xlsx", attachment=b"xlsx", key="bulletin:2022-08")
    FileChannel().send(chat)
    FileChannel().send(mail)
    md = tmp_path / file_name(chat)
    eml = tmp_path / file_name(mail)
    assert md.suffix == ".md" and md.read_text(encoding="utf-8") == "# 逾期提醒\n\n**3** 所学校\n"
    parsed = message_from_bytes(eml.read_bytes(), policy=default)
    assert eml.suffix == ".eml" and parsed["Subject"] == "通报"
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["通报.xlsx"]  # type: ignore[attr-defined]


def test_resend_rewrites_the_same_file(tmp_path: Path) -> None:
    msg = OutgoingMessage(channel="file", address=str(tmp_path / "new"), subject="s", text="t", key="k/1")
    FileChannel().send(msg)
    FileChannel().send(msg)
    assert [p.name for p in (tmp_path / "new").iterdir()] == [file_name(msg)]
    other = OutgoingMessage(channel="file", address=str(tmp_path / "new"), subject="s", text="t", key="k:1")
    assert file_name(other) != file_name(msg)  # same slug, different key: different file


def test_truncate_utf8_never_splits_a_character() -> None:
    text = "一二三四五六七八九十" * 10
    for limit in range(1, 60):
        cut = truncate_utf8(text, limit, "…")
        assert len(cut.encode()) <= max(limit, len("…".encode()))
        assert text.startswith(cut[:-1]) and cut.endswith("…")
    assert truncate_utf8("short", 100, "…") == "short"


def test_eml_files_are_readable_utf8_text(tmp_path: Path) -> None:
    """Every message was a base64 .eml, never readable text (issue 17, 16)."""
    mail = OutgoingMessage(channel="file", address=str(tmp_path), subject="逾期提醒", text="沂源县实验小学逾期 3 天",
                           html="<p>沂源县实验小学</p>", key="overdue:1")
    FileChannel().send(mail)
    raw = (tmp_path / file_name(mail)).read_bytes()
    assert "沂源县实验小学逾期 3 天".encode() in raw and b"base64" not in raw
    parsed = message_from_bytes(raw, policy=default)
    assert parsed.get_body(("plain",)).get_content().strip() == "沂源县实验小学逾期 3 天"  # type: ignore[union-attr]
