"""Every error the engine raises on purpose derives from :class:`RolloutError`.

The CLI and the web layer catch ``RolloutError`` and print its message as one line; anything
else is a bug and keeps its traceback. Errors about a file carry the place they are about so a
clerk can open the file and fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.i18n import tr


class RolloutError(Exception):
    """Base class: a problem the user can act on."""


@dataclass(frozen=True)
class Problem:
    """One problem in an input file: where it is and what is wrong, in plain words."""

    source: str
    message: str
    line: int | None = None
    column: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        place = self.source
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        where = f" [{self.field}]" if self.field else ""
        return f"{place}:{where} {self.message}"


class InputFileError(RolloutError):
    """A file was refused as a whole; ``problems`` lists every problem found, not just the first."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        head = f"{source}: " + tr(f"{len(problems)} 个问题", f"{len(problems)} problem(s)")
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in problems))


class WorkflowFileError(InputFileError):
    """A workflow file failed validation."""


class PlanFileError(InputFileError):
    """A plan file failed validation."""


class ImportFileError(InputFileError):
    """A data import (regions, schools, teacher progress, facts) was rejected whole."""


class NotFound(RolloutError):
    """A school, region, plan or workflow named by the user does not exist."""


class TransitionRefused(RolloutError):
    """The trigger is not allowed: wrong stage, wrong role, failing gates or missing reason."""


class StaleStateError(RolloutError):
    """The school run changed between reading and writing: someone else acted first."""


class WorkflowVersionConflict(RolloutError):
    """A workflow id+version was loaded again with different content after schools started on it."""


class TextRefused(RolloutError):
    """Free text that cannot be stored: longer than its documented cap (engine/text.py)."""


class DatabaseUnavailable(RolloutError):
    """The database could not be reached or stayed busy: nothing was changed, try again."""


class AuditError(RolloutError):
    """The audit trail could not be written or read as expected."""


class MoveRefused(RolloutError):
    """A workflow version move (or a plan edit) was refused before anything changed.

    ``lines`` are the problems in an official's words, each naming the schools it is about;
    ``details`` the same as data (kind, stage, target, schools) for ``--json`` and tests.
    """

    def __init__(self, lines: list[str], details: list[dict[str, object]] | None = None):
        self.lines = lines
        self.details = details or []
        super().__init__("\n".join(lines) if len(lines) == 1 else
                         tr(f"{len(lines)} 个问题，未做任何更改：", f"{len(lines)} problem(s), nothing was changed:")
                         + "\n" + "\n".join(f"  {line}" for line in lines))
