"""The web dashboard for offices, schools and supervisors: a Starlette app over the engine's API.

``create_app`` builds it; ``rollout serve`` runs it under uvicorn, passing the database, ``--now``
and the session key to its workers through the environment variables named here.
"""

from web.app import DB_ENV, HTTPS_ONLY_ENV, NOW_ENV, SECRET_ENV, create_app

__all__ = ["DB_ENV", "HTTPS_ONLY_ENV", "NOW_ENV", "SECRET_ENV", "create_app"]
