"""Model cards: what a registered model is, how it was trained, on whose data (as counts and
hashes only), how well it does at each institution and what privacy it spent. JSON for
machines, markdown for people (after Mitchell et al., "Model Cards for Model Reporting")."""

from __future__ import annotations

from typing import Any

from healthmesh.learning.registry import ModelVersion


def card_json(model: ModelVersion) -> dict[str, Any]:
    """The card as a JSON-ready dict."""
    spec = model.spec
    return {
        "model": {"name": model.name, "version": model.version, "kind": model.kind,
                  "digest": model.digest, "created_at": model.created_at.isoformat()},
        "intended_use": "research within the approving study only; scores are computed at "
        "each institution's node and never centrally",
        "study_id": model.study_id,
        "training_job_id": model.job_id,
        "training": {k: spec.get(k) for k in (
            "task", "strategy", "rounds", "local_steps", "batch_size", "lr", "optimizer",
            "secagg", "seed", "n_features")},
        "evaluation": {"metric": model.metric_name, "mean_over_institutions": model.metric,
                       "per_institution": model.per_institution},
        "lineage": model.lineage,
        "privacy": model.lineage.get("privacy"),
    }


def card_markdown(model: ModelVersion) -> str:
    """The card as markdown."""
    c = card_json(model)
    m, t, ev = c["model"], c["training"], c["evaluation"]
    lines = [
        f"# Model card: {m['name']} v{m['version']}",
        "",
        f"- kind: {m['kind']} ({t['task']}), {t['n_features']} features",
        f"- digest: `{m['digest']}`",
        f"- study: {c['study_id']}; training job: {c['training_job_id']}; "
        f"created {m['created_at']}",
        f"- intended use: {c['intended_use']}",
        "",
        "## Training",
        "",
        f"{t['strategy']} over {t['rounds']} rounds ({t['local_steps']} local steps, batch "
        f"{t['batch_size']}, {t['optimizer']} lr {t['lr']}); secure aggregation (SecAgg+): "
        f"{'on' if t['secagg'] else 'off'}; seed {t['seed']}.",
        "",
        "## Evaluation",
        "",
        f"{ev['metric']} averaged over institutions' test sets: "
        + (f"{ev['mean_over_institutions']:.4f}" if ev["mean_over_institutions"] is not None
           else "n/a"),
        "",
        "| institution | " + ev["metric"] + " |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in sorted(ev["per_institution"].items())],
        "",
        "## Data and lineage",
        "",
    ]
    lin = c["lineage"]
    for inst, info in sorted(lin.get("institutions", {}).items()):
        lines.append(
            f"- {inst}: {info.get('n_train')} training / {info.get('n_test')} test patients; "
            f"consent snapshot `{info.get('consent_snapshot')}`"
        )
    if "cohort" in lin:
        lines += ["", f"Cohort definition digest: `{lin.get('cohort_digest')}`"]
    p = c["privacy"]
    lines += ["", "## Privacy", ""]
    if p:
        lines.append(
            f"Differential privacy ({p['level']} level): epsilon {p['epsilon']:.3f}, "
            f"delta {p['delta']:g}, clipping norm {p['clip']}; accountant: {p['accountant']}."
        )
    else:
        lines.append("No differential privacy (only secure aggregation, if on above).")
    return "\n".join(lines) + "\n"
