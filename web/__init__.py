"""The web dashboard for offices, schools and supervisors (issue 4): a Starlette app over the engine."""
