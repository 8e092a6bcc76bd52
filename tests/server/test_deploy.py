"""The deployment files (deploy/): the systemd units and the Procfile run commands that exist
with options they accept, and the environment template names only real settings — every one
of them — with values of the right type (commented ones: the defaults)."""

import configparser
import importlib
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from gunicorn.config import Config as GunicornConfig

from hotline import config
from server.cli import main

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
ENV_TEMPLATE = DEPLOY / "hotline.env.example"
BIN = "/opt/hotline/.venv/bin/"
_ASSIGNMENT = re.compile(r"^(#?)([A-Z][A-Z0-9_]*)=(.*)$")
_REFERENCE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


def template():
    """{name: (value, commented)} of every assignment line, quotes removed as systemd does."""
    found = {}
    for line in ENV_TEMPLATE.read_text().splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            commented, name, value = match.groups()
            assert name not in found, f"{name} twice"
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found[name] = (value, bool(commented))
    return found


def subcommands():
    """The commands ``hotline --help`` lists."""
    shown = CliRunner().invoke(main, ["--help"]).output
    listing = shown.split("Commands:", 1)[1]
    return {line.split()[0] for line in listing.splitlines() if line.startswith("  ")}


def unit(path):
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str
    parser.read_string(path.read_text())
    return parser


def exec_words(line):
    """An ExecStart line as its words: continuations joined, systemd's %% undone."""
    return shlex.split(line.replace("\\\n", " ").replace("%%", "%"))


def expand(words, values):
    """${NAME} and ${NAME:-default} replaced by the template's value (or the default)."""

    def one(match):
        name, default = match.groups()
        if name in values:
            return values[name][0]
        assert default is not None, f"${{{name}}} is not in {ENV_TEMPLATE.name}"
        return default

    return [_REFERENCE.sub(one, word) for word in words]


def check_command(words):
    """``words`` run an existing ``hotline`` subcommand with arguments it accepts, or gunicorn
    with options it knows on the application factory."""
    program = Path(words[0]).name
    if program == "hotline":
        assert words[1] in subcommands(), words
        command = main.get_command(click.Context(main), words[1])
        command.make_context(words[1], list(words[2:]))  # raises on an unknown option
    elif program == "gunicorn":
        parsed = GunicornConfig().parser().parse_args(words[1:])
        assert parsed.worker_class == "gthread" and parsed.threads and parsed.workers
        (app,) = parsed.args
        module, _, factory = app.partition(":")
        assert callable(getattr(importlib.import_module(module), factory.removesuffix("()")))
    else:
        pytest.fail(f"unexpected program {words[0]}")


def test_the_env_template_names_every_real_setting_and_no_other():
    values = template()
    settings = {f"{config.ENV_PREFIX}_{key}" for key in config.DEFAULTS}
    named = {name for name in values if name.startswith(config.ENV_PREFIX + "_")}
    assert named - settings == set(), "not settings of hotline/config.py"
    assert settings - named == set(), "settings missing from the template"
    referenced = set()
    for path in [*UNITS, DEPLOY / "Procfile"]:
        referenced |= {m.group(1) for m in _REFERENCE.finditer(path.read_text())}
    assert set(values) - named == referenced, "process variables the units and Procfile use"


def test_the_env_template_values_have_the_settings_types():
    for name, (value, commented) in template().items():
        key = name.removeprefix(config.ENV_PREFIX + "_")
        if key not in config.DEFAULTS:
            continue
        default = config.DEFAULTS[key]
        parsed = value if isinstance(default, str) else json.loads(value)
        config.check({**config.DEFAULTS, key: parsed})  # the application's own type check
        if commented and default is not None:
            assert parsed == default, f"{name}: a commented setting shows its default"


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_every_unit_runs_a_command_that_exists(path):
    service = unit(path)["Service"]
    assert service["User"] == "hotline"
    assert service["EnvironmentFile"] == "/etc/hotline/hotline.env"
    words = expand(exec_words(service["ExecStart"]), template())
    assert words[0].startswith(BIN), words[0]
    check_command(words)


def test_the_units_are_web_scheduler_publisher_and_the_nightly_backup():
    commands = {path.stem: exec_words(unit(path)["Service"]["ExecStart"])[1] for path in UNITS}
    assert commands == {
        "hotline-web": "-c",
        "hotline-scheduler": "scheduler",
        "hotline-board-publisher": "board-publisher",
        "hotline-backup": "backup",
    }
    timer = unit(DEPLOY / "systemd" / "hotline-backup.timer")
    assert timer["Install"]["WantedBy"] == "timers.target"
    analyze = shutil.which("systemd-analyze")
    if analyze:  # Debian has it; the calendar expression is systemd's own to judge
        checked = subprocess.run(
            [analyze, "calendar", timer["Timer"]["OnCalendar"]], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr


def test_the_procfile_lists_the_three_processes_with_commands_that_exist():
    processes = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            processes[name] = shlex.split(command)
    assert set(processes) == {"web", "scheduler", "publisher"}
    for words in processes.values():
        check_command(expand(words, {}))  # the Procfile's own defaults
        check_command(expand(words, template()))
    assert processes["scheduler"] == ["hotline", "scheduler"]
    assert processes["publisher"] == ["hotline", "board-publisher"]


def test_a_unit_naming_a_missing_subcommand_would_fail():
    with pytest.raises(AssertionError):
        check_command([BIN + "hotline", "no-such-command"])
    with pytest.raises(SystemExit):
        check_command([BIN + "gunicorn", "--no-such-option", "server.app:create_app()"])


def test_the_env_template_reads_the_same_in_a_shell(tmp_path):
    """Sourced by bash (``hl`` in the README, cron), every line — the commented ones switched
    on — gives the value systemd's EnvironmentFile reads."""
    switched_on = tmp_path / "all.env"
    switched_on.write_text(re.sub(r"(?m)^#([A-Z])", r"\1", ENV_TEMPLATE.read_text()))
    shown = subprocess.run(
        ["bash", "-c", f'set -a; . "{switched_on}"; set +a; env -0'],
        capture_output=True,
        text=True,
        check=True,
        env={},
    ).stdout
    environment = dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)
    for name, (value, _) in template().items():
        assert environment[name] == value, name
