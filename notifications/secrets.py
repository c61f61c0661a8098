"""Secrets by name: robot signing secrets and the SMTP password live outside the database and the repo.

A contact stores only ``secret_ref`` (a name). The value comes from the environment variable
``ROLLOUT_SECRET_<NAME>`` (name upper-cased, every non-alphanumeric character turned into ``_``)
or from the ``[secrets]`` table/section of a TOML or INI file named by ``ROLLOUT_CONFIG``, kept
outside the repository. Values are wrapped in :class:`Secret` so a stray ``print``/log shows ``***``.
"""

from __future__ import annotations

import configparser
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from engine import RolloutError, tr

ENV_PREFIX = "ROLLOUT_SECRET_"
CONFIG_ENV = "ROLLOUT_CONFIG"


class Secret:
    """A secret value that does not show itself in repr/str, tracebacks or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class MissingSecret(RolloutError):
    """A contact names a secret that is configured nowhere."""


def env_name(name: str) -> str:
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _read_config(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise RolloutError(tr(f"{CONFIG_ENV} 指向的配置文件不存在：{path}", f"{CONFIG_ENV} points to a missing file: {path}"))
    if path.suffix.lower() == ".toml":
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        table = data.get("secrets", {})
        if not isinstance(table, dict):
            raise RolloutError(tr(f"{path}：[secrets] 应为表", f"{path}: [secrets] must be a table"))
        return {str(k): str(v) for k, v in table.items()}
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return dict(parser["secrets"]) if parser.has_section("secrets") else {}


class Secrets:
    """Looks secrets up by name: environment first, then the config file."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._file: dict[str, str] | None = None

    def __repr__(self) -> str:
        return "Secrets(***)"

    def _file_values(self) -> dict[str, str]:
        if self._file is None:
            path = self._environ.get(CONFIG_ENV)
            self._file = _read_config(Path(path)) if path else {}
        return self._file

    def get(self, name: str) -> Secret | None:
        value = self._environ.get(env_name(name))
        if value is None:
            values = self._file_values()
            value = values.get(name)
            if value is None:
                folded = {k.casefold(): v for k, v in values.items()}
                value = folded.get(name.casefold())
        return None if value is None else Secret(value)

    def require(self, name: str) -> Secret:
        secret = self.get(name)
        if secret is None:
            raise MissingSecret(tr(
                f"未配置密钥“{name}”：请设置环境变量 {env_name(name)}，或在 {CONFIG_ENV} 文件的 [secrets] 中配置",
                f"secret '{name}' is not configured: set {env_name(name)} or add it under [secrets] in the {CONFIG_ENV} file",
            ))
        return secret
