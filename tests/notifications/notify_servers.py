"""Real servers on loopback for the notification tests: a webhook robot (http.server in a thread) that
checks DingTalk/Feishu signatures like the real ones, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.models import Notification
from notifications.secrets import Secrets

DT_SECRET = "SEC-test-dingtalk-0123456789"
FS_SECRET = "feishu-test-secret"
SECRETS = Secrets({"ROLLOUT_SECRET_DT_ROBOT": DT_SECRET, "ROLLOUT_SECRET_FS_ROBOT": FS_SECRET})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    path: str
    query: dict[str, str]
    body: dict[str, Any]


@dataclass
class RobotState:
    """What the fake robot does: ``script`` is consumed one entry per request, then ``default``.

    Entries: "ok", "http:N" (that HTTP status), "sleep" (sleep ``sleep_s`` and then drop the request unanswered),
    or "errcode:N" (HTTP 200 with that code in the body). Only accepted requests are recorded
    in ``accepted``; ``attempts`` counts every request.
    """

    script: list[str] = field(default_factory=list)
    default: str = "ok"
    sleep_s: float = 1.0
    attempts: int = 0
    accepted: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _dingtalk_sign_ok(query: dict[str, str]) -> bool:
    ts = query.get("timestamp", "")
    expected = base64.b64encode(hmac.new(DT_SECRET.encode(), f"{ts}\n{DT_SECRET}".encode(), hashlib.sha256).digest()).decode()
    return query.get("sign") == expected  # parse_qs already url-decoded the sign


def _feishu_sign_ok(body: dict[str, Any]) -> bool:
    ts = body.get("timestamp", "")
    expected = base64.b64encode(hmac.new(f"{ts}\n{FS_SECRET}".encode(), b"", hashlib.sha256).digest()).decode()
    return body.get("sign") == expected


def _handler(state: RobotState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length).decode("utf-8"))
            url = urllib.parse.urlsplit(self.path)
            query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
            with state.lock:
                state.attempts += 1
                action = state.script.pop(0) if state.script else state.default
            if action == "sleep":
                time.sleep(state.sleep_s)
                self.close_connection = True
                return
            if action.startswith("http:"):
                self._answer(int(action.split(":", 1)[1]), {"error": "scripted"})
                return
            if action.startswith("errcode:"):
                code = int(action.split(":", 1)[1])
                self._answer(200, {"errcode": code, "errmsg": "scripted", "code": code, "msg": "scripted"})
                return
            signed_ok = True
            if url.path.startswith("/robot/send") and "sign" in query:
                signed_ok = _dingtalk_sign_ok(query)
            if url.path.startswith("/open-apis/bot/v2/hook/") and "sign" in body:
                signed_ok = _feishu_sign_ok(body)
            if not signed_ok:
                with state.lock:
                    state.bad_signatures += 1
                self._answer(200, {"errcode": 310000, "errmsg": "sign not match", "code": 19021, "msg": "sign match fail"})
                return
            with state.lock:
                state.accepted.append(Received(url.path, query, body))
            self._answer(200, {"errcode": 0, "errmsg": "ok", "code": 0, "msg": "success"})

    return Handler


class RobotServer:
    """A webhook server that can be stopped and started again on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.state = RobotState()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RobotServer:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self.state))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def statuses(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.scalars(select(Notification.status)).all()
    out: dict[str, int] = {}
    for status in rows:
        out[status] = out.get(status, 0) + 1
    return out


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


class SmtpSink:
    """aiosmtpd handler that keeps every accepted message and can refuse recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content)))
        return "250 Message accepted for delivery"
