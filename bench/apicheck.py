"""The JSON API checked by a machine: schemathesis against ``/api/v1/openapi.json``.

Serves the application with gunicorn on a fresh, migrated and seeded database (PostgreSQL
with ``--database-url``, else a SQLite file), issues an API token for each of several roles
(the seed's demo users: 话务员, 派单员, 承办人, 领导, 系统管理员) and runs ``st run`` once per
role with the checks ``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance`` and ``response_schema_conformance``: no 5xx, every status and
every answer as the description says. Generated data covers the examples, the coverage of
each field's bounds, and fuzzing (``--max-examples`` cases per operation), and a stateful
phase follows the description's links.

A failing check exits non-zero; each role's schemathesis report (JUnit) goes to
``--report-dir``. Prints a table per role; ``--json PATH`` writes
``{"roles": {role: {"operations", "failures", "exit", "seconds"}}, "failures"}``.

    python bench/apicheck.py --smoke
    python bench/apicheck.py --database-url postgresql+psycopg://…/db --max-examples 50
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from bench.intake import fresh_database, start_server  # noqa: E402
from hotline import migrate, seed  # noqa: E402
from hotline.auth import token_hash  # noqa: E402
from hotline.db import make_engine  # noqa: E402
from hotline.models import ApiToken, User  # noqa: E402

ST = Path(sys.executable).with_name("st")
#: Whose tokens the API is checked with (seed's demo users).
ROLES = ["admin", "operator", "dispatcher", "cgj", "leader"]
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]


def prepare(url):
    """Migrate, seed; an API token for each user of ``ROLES``."""
    migrate.upgrade(url)
    engine = make_engine(url)
    tokens = {}
    with sessionmaker(bind=engine)() as session:
        seed.load_all(session)
        for username in ROLES:
            user = session.scalars(sa.select(User).where(User.username == username)).one()
            token = "apicheck_" + uuid.uuid4().hex
            session.add(ApiToken(user_id=user.id, token_hash=token_hash(token), label="apicheck"))
            tokens[username] = token
        session.commit()
    engine.dispose()
    return tokens


def run_role(port, username, token, args, report_dir):
    """``st run`` with ``username``'s token; (exit code, operations, failures, seconds)."""
    base = f"http://127.0.0.1:{port}"
    command = [
        str(ST),
        "run",
        f"{base}/api/v1/openapi.json",
        "--url",
        base,
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(args.max_examples),
        "--seed",
        str(args.seed),
        # One worker: schemathesis's own generation is not thread-safe on Python 3.11 (its
        # lambda descriptions and lazy imports parse source with ``ast``, which two threads
        # at once break: "AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--phases",
        args.phases,
        # The token is the only credential sent (the description also names the session
        # cookie and the CSRF header, which schemathesis would otherwise generate).
        "--generation-with-security-parameters",
        "false",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report_dir / f"{username}.xml"),
    ]
    if args.max_time:
        command += ["--max-time", str(args.max_time)]
    began = time.monotonic()
    # In the report folder: schemathesis keeps its own cache (.schemathesis/) where it runs.
    done = subprocess.run(command, capture_output=True, text=True, cwd=report_dir)
    seconds = time.monotonic() - began
    output = done.stdout + done.stderr
    (report_dir / f"{username}.log").write_text(output)
    operations = _count(r"(\d+) operations? tested", output) or _count(r"Tested: *(\d+)", output)
    failures = _count(r"(\d+) failures?", output)
    if done.returncode != 0:
        print(output[-6000:], file=sys.stderr)
    return done.returncode, operations, failures, seconds


def _count(pattern, text):
    match = re.search(pattern, text)
    return int(match.group(1)) if match else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL server's database to recreate")
    parser.add_argument("--port", type=int, default=18300)
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument("--max-time", type=int, default=0, help="seconds per role (0: none)")
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument(
        "--smoke", action="store_true", help="CI size: 5 examples, 60 s a role at most"
    )
    parser.add_argument("--report-dir", default="ci-artifacts/apicheck")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    if args.smoke:
        args.max_examples = min(args.max_examples, 5)
        args.max_time = args.max_time or 60
    report_dir = Path(args.report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    if args.database_url:
        given = sa.make_url(args.database_url)
        server_url = given.set(database="postgres").render_as_string(hide_password=False)
        url = fresh_database(server_url, given.database)
    else:
        url = "sqlite:///" + os.path.join(tempfile.mkdtemp(prefix="apicheck-"), "hotline.sqlite")
    tokens = prepare(url)
    models_dir = tempfile.mkdtemp(prefix="apicheck-models-")
    env = {
        "HOTLINE_ATTACHMENT_DIR": tempfile.mkdtemp(prefix="apicheck-attachments-"),
        "HOTLINE_RATELIMIT_KEY_PREFIX": f"hotline-limits:apicheck:{uuid.uuid4().hex}",
    }
    server = start_server(url, args.port, 2, 4, models_dir, classifier=False, env=env)
    results = {}
    try:
        for username in args.roles.split(","):
            code, operations, failures, seconds = run_role(
                args.port, username, tokens[username], args, report_dir
            )
            results[username] = {
                "operations": operations,
                "failures": failures,
                "exit": code,
                "seconds": round(seconds, 1),
            }
    finally:
        server.terminate()
        server.wait(20)
    print(f"{'role':<12}{'operations':>12}{'failures':>10}{'exit':>6}{'seconds':>9}")
    for username, r in results.items():
        print(
            f"{username:<12}{r['operations']:>12}{r['failures']:>10}{r['exit']:>6}{r['seconds']:>9}"
        )
    failed = sum(1 for r in results.values() if r["exit"] != 0)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"roles": results, "failures": failed}, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
