"""Secrets by name from the environment or a config file; never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifications.secrets import MissingSecret, Secret, Secrets, env_name


def test_environment_name_is_upper_cased_with_underscores() -> None:
    assert env_name("yiyuan-county.dingtalk") == "ROLLOUT_SECRET_YIYUAN_COUNTY_DINGTALK"
    secrets = Secrets({"ROLLOUT_SECRET_YIYUAN_COUNTY_DINGTALK": "SECabc"})
    secret = secrets.get("yiyuan-county.dingtalk")
    assert secret is not None and secret.reveal() == "SECabc"


def test_values_never_show_in_repr_or_str() -> None:
    secret = Secret("SEC-very-secret")
    assert "very" not in repr(secret) and "very" not in str(secret) and "very" not in f"{[secret]}"
    assert "very" not in repr(Secrets({"ROLLOUT_SECRET_X": "SEC-very-secret"}))


def test_toml_config_file(tmp_path: Path) -> None:
    config = tmp_path / "rollout.toml"
    config.write_text('[secrets]\nCOUNTY_ROBOT = "SEC-from-toml"\n', encoding="utf-8")
    secrets = Secrets({"ROLLOUT_CONFIG": str(config)})
    found = secrets.get("county_robot")
    assert found is not None and found.reveal() == "SEC-from-toml"
    env_wins = Secrets({"ROLLOUT_CONFIG": str(config), "ROLLOUT_SECRET_COUNTY_ROBOT": "SEC-env"})
    assert env_wins.require("COUNTY_ROBOT").reveal() == "SEC-env"


def test_ini_config_file(tmp_path: Path) -> None:
    config = tmp_path / "rollout.ini"
    config.write_text("[secrets]\nSMTP_PASSWORD = p%ss\n", encoding="utf-8")
    assert Secrets({"ROLLOUT_CONFIG": str(config)}).require("SMTP_PASSWORD").reveal() == "p%ss"


def test_missing_secret_names_where_to_put_it() -> None:
    with pytest.raises(MissingSecret, match="ROLLOUT_SECRET_CITY_ROBOT") as err:
        Secrets({}).require("city-robot")
    assert "city-robot" in str(err.value)
    assert Secrets({}).get("city-robot") is None
