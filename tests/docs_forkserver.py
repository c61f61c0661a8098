"""A fork server for the ``rollout`` command, so the docs test can run ~40 documented commands fast.

Importing the CLI costs about a second of CPU per command (SQLAlchemy, Alembic, the web app's
modules); forty of them made the docs run take minutes on a busy machine. This process imports
``cli.main`` once and forks a child per command. The shell's ``rollout`` (a function the docs test
defines) runs ``client``: it passes its own stdin/stdout/stderr, argv, working directory and
environment over a Unix socket, and exits with the child's status. The child runs exactly what the
``rollout`` console script runs, ``cli.main:main``, with those — so pipes, ``--password-stdin``,
relative paths and exported variables behave as in a terminal.

Server: ``python -m tests.docs_forkserver SOCKET``. Client: ``python -S tests/docs_forkserver.py
--client SOCKET ARGS…`` (``-S``: no site imports, ~20 ms).
"""

from __future__ import annotations

import json
import os
import socket
import sys

MAX_MESSAGE = 1 << 20


def client(path: str, args: list[str]) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        request = json.dumps({"argv": args, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(conn, [request], [0, 1, 2])
        answer = conn.recv(16)
    return int(answer or b"1")


def _child(request: dict, fds: list[int]) -> None:  # never returns
    code = 1
    try:
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["rollout", *request["argv"]]
        from cli.main import main

        try:
            main.main(args=request["argv"], prog_name="rollout")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - a crash of the command is its failure, printed as a traceback
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(path: str) -> None:
    import cli.main  # noqa: F401 - the point: import once, before any fork

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(8)
        print("ready", flush=True)
        while True:
            conn, _ = server.accept()
            with conn:
                message, fds, _flags, _addr = socket.recv_fds(conn, MAX_MESSAGE, 3)
                sys.stdout.flush()
                pid = os.fork()
                if pid == 0:
                    server.close()
                    _child(json.loads(message), fds)
                for fd in fds:
                    os.close(fd)
                _, status = os.waitpid(pid, 0)
                conn.sendall(str(os.waitstatus_to_exitcode(status)).encode())


if __name__ == "__main__":
    if sys.argv[1] == "--client":
        sys.exit(client(sys.argv[2], sys.argv[3:]))
    serve(sys.argv[1])
