"""Email over SMTP: multipart/alternative plain text + HTML, optional attachment.

``email.message.EmailMessage`` with the default (SMTPUTF8-aware) policy encodes a Chinese subject
and attachment name per RFC 2047/2231, so no hand-made encoded words are needed. The Message-ID is
derived from the outbox key: if the unavoidable crash window (accepted by the server, not yet
marked sent) ever resends, mail clients see the same Message-ID.

Configuration: ``ROLLOUT_SMTP_HOST``, ``ROLLOUT_SMTP_PORT``, ``ROLLOUT_SMTP_USER``,
``ROLLOUT_SMTP_FROM``, ``ROLLOUT_SMTP_STARTTLS`` (1/0), ``ROLLOUT_SMTP_SSL`` (1/0); the password is
the secret ``SMTP_PASSWORD`` (see ``notifications.secrets``).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from notifications.message import DeliveryError, OutgoingMessage
from notifications.secrets import Secrets

PASSWORD_SECRET = "SMTP_PASSWORD"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class SmtpConfig:
    host: str | None
    port: int = 25
    user: str | None = None
    sender: str = "rollout@localhost"
    starttls: bool = False
    use_ssl: bool = False
    timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpConfig:
        env = os.environ if environ is None else environ
        use_ssl = _flag(env.get("ROLLOUT_SMTP_SSL"))
        starttls = _flag(env.get("ROLLOUT_SMTP_STARTTLS"))
        default_port = 465 if use_ssl else (587 if starttls else 25)
        user = env.get("ROLLOUT_SMTP_USER") or None
        return cls(
            host=env.get("ROLLOUT_SMTP_HOST") or None,
            port=int(env.get("ROLLOUT_SMTP_PORT") or default_port),
            user=user,
            sender=env.get("ROLLOUT_SMTP_FROM") or user or "rollout@localhost",
            starttls=starttls,
            use_ssl=use_ssl,
            timeout=float(env.get("ROLLOUT_SMTP_TIMEOUT") or 30),
        )


def message_id(key: str) -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@rollout.invalid>"


def build_email(msg: OutgoingMessage, sender: str, cte: str | None = None) -> EmailMessage:
    """The message as mail. ``cte="8bit"`` keeps the text readable in a file (the file channel): the
    default picks base64 for Chinese text, which no one can read in an ``.eml`` (issue 17, 16)."""
    email = EmailMessage()
    email["Subject"] = msg.subject
    email["From"] = sender
    email["To"] = msg.address
    if msg.key:
        email["Message-ID"] = message_id(msg.key)
    if msg.date is not None:
        email["Date"] = format_datetime(msg.date)
    email.set_content(msg.text, cte=cte)
    if msg.html:
        email.add_alternative(msg.html, subtype="html", cte=cte)
    if msg.attachment is not None:
        name = msg.attachment_name or "attachment.bin"
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        email.add_attachment(msg.attachment, maintype=maintype, subtype=subtype, filename=name)
    return email


class EmailChannel:
    def __init__(self, config: SmtpConfig, secrets: Secrets | None = None) -> None:
        self.config = config
        self.secrets = secrets or Secrets()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        assert cfg.host is not None
        if cfg.use_ssl:
            return smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context())
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        if cfg.starttls:
            smtp.starttls(context=ssl.create_default_context())
        return smtp

    def send(self, msg: OutgoingMessage) -> None:
        cfg = self.config
        if not cfg.host:
            raise DeliveryError("email is not configured: set ROLLOUT_SMTP_HOST", retryable=False)
        email = build_email(msg, cfg.sender)
        try:
            with self._connect() as smtp:
                if cfg.user:
                    password = self.secrets.get(msg.secret_ref or PASSWORD_SECRET)
                    if password is None:
                        raise DeliveryError("SMTP password secret is not configured", retryable=False)
                    smtp.login(cfg.user, password.reveal())
                smtp.send_message(email)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP login refused ({exc.smtp_code})", retryable=False) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            retryable = all(400 <= c < 500 for c in codes)
            raise DeliveryError(f"SMTP refused recipient(s) {codes}", retryable=retryable) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP error {exc.smtp_code}: {exc.smtp_error!r}", retryable=400 <= exc.smtp_code < 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP connection to {cfg.host}:{cfg.port} failed: {exc}", retryable=True) from exc
