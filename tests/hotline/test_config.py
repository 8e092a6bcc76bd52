"""One defaults mapping, overridden by the instance file, then the environment, then create_app."""

from hotline.config import DEFAULTS, load_config


def test_precedence(tmp_path, monkeypatch):
    (tmp_path / "hotline.cfg").write_text(
        'TICKET_NUMBER_PREFIX = "QD"\nMAX_PAGE_SIZE = 50\nCALLBACK_MAX_ATTEMPTS = 4\n'
        "lowercase_ignored = 1\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HOTLINE_MAX_PAGE_SIZE", "80")
    monkeypatch.setenv("HOTLINE_REDIS_URL", "redis://127.0.0.1:6379/3")
    config = load_config(str(tmp_path), {"CALLBACK_MAX_ATTEMPTS": 5})
    assert config["TICKET_NUMBER_PREFIX"] == "QD"  # instance file
    assert config["MAX_PAGE_SIZE"] == 80  # environment beats the file, parsed as int
    assert config["REDIS_URL"] == "redis://127.0.0.1:6379/3"
    assert config["CALLBACK_MAX_ATTEMPTS"] == 5  # create_app's mapping beats everything
    assert config["TIMEZONE"] == DEFAULTS["TIMEZONE"]
    assert "lowercase_ignored" not in config


def test_default_database_is_sqlite_in_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("HOTLINE_DATABASE_URL", raising=False)
    config = load_config(str(tmp_path))
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path}/hotline.sqlite"
