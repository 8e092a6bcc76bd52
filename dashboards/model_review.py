"""What the model page (分类模型) shows of the classifier's versions and retraining runs, and
the administrator's 立即重新训练.

The acceptance figures are ``hotline.acceptance``'s (shared with the JSON API); switching
versions is ``hotline.model_versions``' (admin-only, audited); asking for a retraining is
``dispatch.learning.request``'s. This module reads the ``model_versions``,
``model_activations`` and ``model_retrains`` rows and names what they hold in Chinese; it
lives in ``dashboards`` because it sits above ``dispatch`` (the retraining) and reads no
ticket of any requester.
"""

import sqlalchemy as sa

from classifier import learning as model_learning
from dispatch import learning
from hotline import model_versions
from hotline.models import ModelRetrain, ModelVersion, User

#: Who may open the page; only administrators act on it (``model_versions.activate``).
VIEW_ROLES = learning.READ_ROLES
ACT_ROLES = learning.REQUEST_ROLES

#: The gate's headline figures (the others a run records are shown greyed).
HEADLINE = {key for key, _, _ in model_learning.HEADLINE}
#: Figure names by key (``dispatch.learning.FIGURES``, their one home).
FIGURE_NAMES = {key: name for key, _, name in learning.FIGURES}
#: Retraining runs listed.
RUNS = 30
#: Switches listed.
SWITCHES = 20


def _names(session, ids):
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(sa.select(User.id, User.name).where(User.id.in_(ids))).all())


def _comparison(figures):
    """A run's figures, candidate beside active (``dispatch.learning.figure_rows``), the
    gate's headline ones marked."""
    return [{**row, "headline": row["key"] in HEADLINE} for row in learning.figure_rows(figures)]


def _check(check):
    """A gate check as the page shows it: {"label", "ok", "text", "candidate", "active"}."""
    if not isinstance(check, dict):
        return {"label": None, "ok": None, "text": str(check), "candidate": None, "active": None}
    key = check.get("figure")
    return {
        "label": FIGURE_NAMES.get(key) or check.get("name") or key,
        "ok": check.get("passed", check.get("ok")),
        "text": check.get("note") or check.get("reason"),
        "candidate": check.get("candidate"),
        "active": check.get("active"),
    }


def runs(session, limit=RUNS):
    """The latest retraining runs, newest first, as the page shows them."""
    rows = learning.recent(session, limit)
    names = _names(session, (r.requested_by_id for r in rows))
    found = []
    for row in rows:
        figures = row.figures or {}
        found.append(
            {
                "id": row.id,
                "status": row.status,
                "status_label": learning.STATUS_LABELS.get(row.status, row.status),
                "trigger_label": learning.TRIGGER_LABELS.get(row.trigger, row.trigger),
                "requested_at": row.requested_at,
                "requested_by": names.get(row.requested_by_id),
                "started_at": row.started_at,
                "finished_at": row.finished_at,
                "candidate_version": row.candidate_version,
                "active_version": row.active_version,
                "reason": row.reason,
                "comparison": _comparison(figures),
                "checks": [_check(c) for c in figures.get("checks") or []],
                "tolerance": figures.get("tolerance"),
                "holdout": figures.get("holdout") or {},
                "training": figures.get("training") or {},
            }
        )
    return found


def versions(session, run_list, active):
    """Every registered version, newest first: the ``active`` one marked, with its training
    figures (``meta``) and the latest run that trained it (from ``run_list``, else read)."""
    rows = session.scalars(
        sa.select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.version)
    ).all()
    by_candidate = {}
    for run in run_list:
        by_candidate.setdefault(run["candidate_version"], run)
    missing = [r.version for r in rows if r.version not in by_candidate]
    if missing:
        for row in session.scalars(
            sa.select(ModelRetrain)
            .where(ModelRetrain.candidate_version.in_(missing))
            .order_by(ModelRetrain.id.desc())
        ):
            by_candidate.setdefault(
                row.candidate_version,
                {
                    "id": row.id,
                    "status_label": learning.STATUS_LABELS.get(row.status, row.status),
                    "comparison": _comparison(row.figures or {}),
                },
            )
    names = _names(session, (r.created_by_id for r in rows))
    used = {a.version for a in model_versions.activations(session, limit=1000)}
    found = []
    for row in rows:
        meta = row.meta or {}
        metrics = meta.get("metrics") or {}
        found.append(
            {
                "version": row.version,
                "active": row.version == active,
                "state": "当前启用"
                if row.version == active
                else ("曾启用" if row.version in used else "候选"),
                "created_at": row.created_at,
                "created_by": names.get(row.created_by_id),
                "source": meta.get("source"),
                "training_rows": meta.get("training_rows"),
                "macro_f1": metrics.get("macro_f1"),
                "accuracy": metrics.get("accuracy"),
                "run": by_candidate.get(row.version),
            }
        )
    return found


def switches(session, limit=SWITCHES):
    """The latest switches of the active version, newest first."""
    rows = model_versions.activations(session, limit=limit)
    names = _names(session, (r.activated_by_id for r in rows))
    return [
        {
            "version": r.version,
            "previous": r.previous,
            "reason": r.reason,
            "at": r.activated_at,
            "by": names.get(r.activated_by_id),
        }
        for r in rows
    ]


def request_retrain(session, actor):
    """立即重新训练: a pending run (or the one already pending or running). The caller
    commits. Returns the ``ModelRetrain`` row."""
    return learning.request(session, actor, "page")
