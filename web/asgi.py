"""The app for ``uvicorn --workers N``, which imports an app by name in each worker process.

``rollout serve --workers N`` sets the environment read here; set ``ROLLOUT_SECRET_KEY`` too so
every worker accepts the others' session cookies.
"""

from __future__ import annotations

import os

from .app import create_app

app = create_app(os.environ["ROLLOUT_WEB_DB"], https_only=bool(os.environ.get("ROLLOUT_WEB_HTTPS_ONLY")))
