"""Demo history benchmark: how long ``hotline demo`` takes to make its past (server/history.py).

Each run gets a fresh SQLite database (migrated and seeded; not timed) and the default model
(trained once, or ``--models-dir`` with an active one), then times ``history.generate`` and
its commit, in wall-clock and CPU seconds, as ``hotline seed --history-days`` runs it. A
second ``generate`` on the same database must add nothing (timed too). A CPU calibration
loop (10⁷ additions) is printed beside, to compare figures taken on a loaded machine.

Prints a table of medians; ``--json PATH`` writes ``{"days", "tickets", "wall_s",
"cpu_s", "again_s", "calibration_s", "runs"}``.

    python bench/history.py                       # 90 days, 3 runs (the demo's default)
    python bench/history.py --days 7 --runs 1     # smoke
"""

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from bench.intake import default_model, print_rows
from classifier import artefact
from hotline import migrate, seed
from hotline.db import make_engine
from server import history
from server.app import create_app


def calibrate():
    started = time.process_time()
    total = 0
    for i in range(10**7):
        total += i
    return time.process_time() - started


def prepare(url):
    migrate.upgrade(url)
    engine = make_engine(url)
    with sessionmaker(bind=engine)() as session:
        seed.load_all(session)
        session.commit()
    engine.dispose()


def one_run(folder, models_dir, days, seed_value):
    url = f"sqlite:///{Path(folder) / 'history.sqlite'}"
    prepare(url)
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "CLASSIFIER_MODELS_DIR": models_dir,
            "CLASSIFIER_PRELOAD": False,
        }
    )
    with app.app_context():
        factory = app.extensions["hotline.db"]
        wall, cpu = time.perf_counter(), time.process_time()
        with factory(info={"publisher": None, "notifier": None}) as session:
            summary = history.generate(session, days=days, seed=seed_value)
            session.commit()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        again = time.perf_counter()
        with factory() as session:
            repeat = history.generate(session, days=days, seed=seed_value)
            session.commit()
        again = time.perf_counter() - again
    app.extensions["hotline.db"].kw["bind"].dispose()
    assert repeat.already and repeat.tickets == summary.tickets, "a second run added tickets"
    return {
        "tickets": summary.tickets,
        "wall_s": wall,
        "cpu_s": cpu,
        "again_s": again,
        "calibration_s": calibrate(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=history.DEFAULT_DAYS)
    parser.add_argument("--seed", type=int, default=history.DEFAULT_SEED)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models-dir", help="A models folder with an active model.")
    parser.add_argument("--json", help="Write the figures to this file.")
    args = parser.parse_args()
    models_dir = args.models_dir
    if models_dir is None or artefact.active_version(models_dir) is None:
        models_dir = models_dir or tempfile.mkdtemp(prefix="hotline-bench-models-")
        default_model(models_dir)
    runs = []
    for number in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="hotline-bench-history-") as folder:
            runs.append(one_run(folder, models_dir, args.days, args.seed))
        done = runs[-1]
        print(
            f"run {number + 1}: {done['tickets']} tickets, {done['wall_s']:.1f} s wall, "
            f"{done['cpu_s']:.1f} s CPU",
            file=sys.stderr,
        )
    figures = {
        "days": args.days,
        "tickets": runs[0]["tickets"],
        **{
            key: round(statistics.median(r[key] for r in runs), 2)
            for key in ("wall_s", "cpu_s", "again_s", "calibration_s")
        },
        "runs": runs,
        "at": dt.datetime.now(dt.UTC).isoformat(),
    }
    print_rows(
        [
            ("days", figures["days"]),
            ("tickets", figures["tickets"]),
            ("runs", len(runs)),
            ("median wall s", figures["wall_s"]),
            ("median CPU s", figures["cpu_s"]),
            ("second run (adds nothing) s", figures["again_s"]),
            ("calibration loop CPU s", figures["calibration_s"]),
        ]
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
