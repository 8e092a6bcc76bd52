"""Versioned model artefacts: ``<models_dir>/<version>/model.joblib`` plus ``meta.json``.

A folder may name its active version in ``<models_dir>/ACTIVE`` (switching is an atomic
rename of that file). The application keeps the versions and which one is active in its
database (``hotline.model_versions``) and uses a folder as each process's local copy; a
folder with ``ACTIVE`` is what an older release kept, and is imported from.

``ActiveModel`` holds the loaded active version and follows a switch without a restart, asking
a callable which version is active (the database, or a folder's ``ACTIVE``).
"""

import datetime as dt
import json
import os
import platform
import threading
import time
from pathlib import Path
from secrets import token_hex

import joblib

ACTIVE = "ACTIVE"


def library_versions():
    import jieba
    import numpy
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "jieba": jieba.__version__,
    }


def save(bundle, models_dir, meta, *, activate=False):
    """Write ``bundle`` as a new version; returns the version name."""
    models_dir = Path(models_dir)
    now = dt.datetime.now(dt.UTC)
    version = "-".join(
        [now.strftime("%Y%m%dT%H%M%S"), meta.get("training_sha256", "x" * 8)[:8], token_hex(2)]
    )
    target = models_dir / version
    target.mkdir(parents=True, exist_ok=False)
    # Uncompressed: loads faster and without a decompression copy of every array in memory.
    joblib.dump(bundle, target / "model.joblib")
    meta = {
        **meta,
        "version": version,
        "created_at": now.isoformat(),
        "classes": list(bundle.category.classes_),
        "libraries": library_versions(),
    }
    (target / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2))
    if activate:
        set_active(models_dir, version)
    return version


def load(models_dir, version):
    target = Path(models_dir) / version
    return joblib.load(target / "model.joblib"), read_meta(models_dir, version)


def read_meta(models_dir, version):
    return json.loads((Path(models_dir) / version / "meta.json").read_text())


def versions(models_dir):
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if (p / "meta.json").exists())


def active_version(models_dir):
    path = Path(models_dir) / ACTIVE
    return path.read_text().strip() if path.exists() else None


def set_active(models_dir, version):
    models_dir = Path(models_dir)
    if not (models_dir / version / "model.joblib").exists():
        raise FileNotFoundError(f"no model version {version} in {models_dir}")
    tmp = models_dir / f".{ACTIVE}.{os.getpid()}"
    tmp.write_text(version + "\n")
    os.replace(tmp, models_dir / ACTIVE)


class ActiveModel:
    """Holds the loaded active bundle and reloads it when another version becomes active.

    ``which(*context)`` names the active version (None: none, the loaded one stays); it is
    asked at most every ``check_every`` seconds, so it costs nothing on the hot path.
    ``load(version, *context)`` returns ``(bundle, meta)``; loading happens on the call that
    notices the change. ``context``: what ``get`` was given (the caller's database session)."""

    def __init__(self, which, load, check_every=5.0):
        self.which = which
        self.load = load
        self.check_every = check_every
        self._lock = threading.Lock()
        self._loaded = (None, None, None)  # version, bundle, meta
        self._checked_at = None  # never: the first get() always looks

    @classmethod
    def in_folder(cls, models_dir, check_every=5.0):
        """The version ``<models_dir>/ACTIVE`` names."""
        return cls(
            lambda: active_version(models_dir),
            lambda version: load(models_dir, version),
            check_every,
        )

    def get(self, *context):
        """(version, bundle, meta) of the active model, or (None, None, None)."""
        now = time.monotonic()
        if self._due(now):
            with self._lock:
                if self._due(now):
                    version = self.which(*context)
                    if version and version != self._loaded[0]:
                        bundle, meta = self.load(version, *context)
                        self._loaded = (version, bundle, meta)
                    self._checked_at = now
        return self._loaded

    def recheck(self):
        """Ask ``which`` again on the next ``get`` (this process just switched)."""
        self._checked_at = None

    def _due(self, now):
        return self._checked_at is None or now - self._checked_at >= self.check_every
