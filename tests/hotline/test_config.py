"""One defaults mapping, overridden by the instance file, then the environment, then create_app."""

import pytest
from flask import Flask

from hotline import config as configuration
from hotline.config import DEFAULTS


def load(instance, overrides=None):
    app = Flask("hotline", instance_path=str(instance), instance_relative_config=True)
    return configuration.load(app, overrides)


def test_precedence(tmp_path, monkeypatch):
    (tmp_path / "hotline.cfg").write_text(
        'TICKET_NUMBER_PREFIX = "QD"\nMAX_PAGE_SIZE = 50\nCALLBACK_MAX_ATTEMPTS = 4\n'
        "lowercase_ignored = 1\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HOTLINE_MAX_PAGE_SIZE", "80")
    monkeypatch.setenv("HOTLINE_REDIS_URL", "redis://127.0.0.1:6379/3")
    config = load(tmp_path, {"CALLBACK_MAX_ATTEMPTS": 5})
    assert config["TICKET_NUMBER_PREFIX"] == "QD"  # instance file
    assert config["MAX_PAGE_SIZE"] == 80  # environment beats the file, parsed as int
    assert config["REDIS_URL"] == "redis://127.0.0.1:6379/3"
    assert config["CALLBACK_MAX_ATTEMPTS"] == 5  # create_app's mapping beats everything
    assert config["TIMEZONE"] == DEFAULTS["TIMEZONE"]
    assert "lowercase_ignored" not in config


def test_default_database_is_sqlite_in_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("HOTLINE_DATABASE_URL", raising=False)
    config = load(tmp_path)
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path}/hotline.sqlite"


def test_environment_reads_json_for_numbers_and_switches(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTLINE_CLASSIFIER_ENABLED", "false")
    monkeypatch.setenv("HOTLINE_LOGIN_MAX_FAILURES", "7")
    config = load(tmp_path)
    assert config["CLASSIFIER_ENABLED"] is False
    assert config["LOGIN_MAX_FAILURES"] == 7


def test_text_settings_are_taken_as_written(tmp_path, monkeypatch):
    # JSON would read these as a number and as true: they are text.
    monkeypatch.setenv("HOTLINE_SECRET_KEY", "123456789")
    monkeypatch.setenv("HOTLINE_TICKET_NUMBER_PREFIX", "true")
    config = load(tmp_path)
    assert config["SECRET_KEY"] == "123456789"
    assert config["TICKET_NUMBER_PREFIX"] == "true"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HOTLINE_CLASSIFIER_ENABLED", "off", "CLASSIFIER_ENABLED 须为 true 或 false"),
        ("HOTLINE_LOGIN_MAX_FAILURES", "five", "LOGIN_MAX_FAILURES 须为整数"),
        ("HOTLINE_LOGIN_MAX_FAILURES", "true", "LOGIN_MAX_FAILURES 须为整数"),
    ],
)
def test_a_setting_of_the_wrong_type_stops_the_start(tmp_path, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        load(tmp_path)
