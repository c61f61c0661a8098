"""The app for ``uvicorn --workers N``, which imports an app by name in each worker process.

``rollout serve --workers N`` sets the environment read here before uvicorn starts the workers:
the database, the Secure-cookie flag, the ``--now`` time if one was given, and the session key
(``ROLLOUT_SECRET_KEY``, generated once for the run when unset) so that every worker accepts the
sessions the others signed.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette

from engine import FixedClock, parse_timestamp
from web.app import DB_ENV, HTTPS_ONLY_ENV, NOW_ENV, SECRET_ENV, create_app


def _app_from_environment() -> Starlette:
    if not os.environ.get(SECRET_ENV):
        # A per-process random key would make every worker reject the others' session cookies.
        raise RuntimeError(f"{SECRET_ENV} must be set for several workers (rollout serve sets it)")
    now = os.environ.get(NOW_ENV)
    return create_app(os.environ[DB_ENV], FixedClock(parse_timestamp(now)) if now else None,
                      https_only=bool(os.environ.get(HTTPS_ONLY_ENV)))


app = _app_from_environment()
