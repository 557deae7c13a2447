"""The settings table: defaults, environment, flags, validation, the generated secret key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from touchpoint.errors import ConfigError
from touchpoint.settings import Settings


def test_defaults() -> None:
    settings = Settings.load(environ={})
    assert (settings.host, settings.port, settings.prefix) == ("127.0.0.1", 8000, "/tp")
    assert settings.cookie_max_age_days == 395
    assert settings.database_path == Path("data/touchpoint.db")


def test_environment_and_flags() -> None:
    env = {"TOUCHPOINT_PORT": "9000", "TOUCHPOINT_DEMO": "yes", "TOUCHPOINT_PREFIX": "/p"}
    settings = Settings.load({"port": "9100"}, environ=env)
    assert (settings.port, settings.demo, settings.prefix) == (9100, True, "/p")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"port": "eighty"}, "--port: expected a whole number, got 'eighty'"),
        ({"demo": "maybe"}, "--demo: expected true or false"),
        ({"prefix": "tp"}, "prefix must look like /tp"),
        ({"prefix": "/tp/"}, "prefix must look like /tp"),
        ({"cookie_max_age_days": 400}, "cookie_max_age_days must be between 1 and 395"),
        ({"cookie_secure": "sometimes"}, "cookie_secure must be one of auto, always, never"),
        ({"max_body_bytes": 10}, "max_body_bytes must be at least 1024"),
        ({"colour": "red"}, "unknown setting(s): colour"),
    ],
)
def test_bad_settings_are_clear_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(overrides, environ={})
    assert message in str(info.value)


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="TOUCHPOINT_WORKERS: expected a whole number"):
        Settings.load(environ={"TOUCHPOINT_WORKERS": "many"})


def test_secret_key_is_generated_once_with_private_permissions(tmp_path: Path) -> None:
    settings = Settings.load({"data_dir": str(tmp_path / "d")}, environ={})
    key = settings.resolve_secret_key()
    path = tmp_path / "d" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(key) >= 48
    assert settings.resolve_secret_key() == key
    other = Settings.load({"data_dir": str(tmp_path / "e")}, environ={}).resolve_secret_key()
    assert other != key


def test_explicit_secret_key_wins(tmp_path: Path) -> None:
    settings = Settings.load({"data_dir": str(tmp_path), "secret_key": "k" * 40}, environ={})
    assert settings.resolve_secret_key() == "k" * 40
    assert not (tmp_path / "secret.key").exists()


def test_truncated_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("short\n")
    with pytest.raises(ConfigError, match="holds no usable key"):
        Settings.load({"data_dir": str(tmp_path)}, environ={}).resolve_secret_key()


def test_workers_zero_is_one_per_core_the_server_may_use() -> None:
    import os

    assert Settings.load({}, environ={}).worker_processes == 1
    assert Settings.load({"workers": 0}, environ={}).worker_processes == len(
        os.sched_getaffinity(0)
    )
    assert Settings.load({"workers": 3}, environ={}).worker_processes == 3
    with pytest.raises(ConfigError, match="workers"):
        Settings.load({"workers": -1}, environ={})
