"""Group outputs of a batch: one-row-per-subject table (CSV and Parquet) and group figures."""

from __future__ import annotations

import json
from pathlib import Path

from navigator.batch.tasks import SubjectResult
from navigator.core.atomic import atomic_path, atomic_write_json


def results_table(results: list[SubjectResult]):
    import pandas as pd

    rows = []
    for r in results:
        row = {"subject": r.subject_id, "ok": r.ok, "error": r.error or "", "workspace": r.workspace}
        for step, o in r.steps.items():
            row[f"{step}_status"] = o.status
            row[f"{step}_seconds"] = round(o.seconds, 2)
        row.update(r.numbers)
        rows.append(row)
    return pd.DataFrame(rows)


def write_group_outputs(results: list[SubjectResult], root: Path) -> tuple[Path, Path, list[Path]]:
    df = results_table(results)
    csv = root / "summary.csv"
    with atomic_path(csv) as tmp:
        df.to_csv(tmp, index=False)
    parquet = root / "summary.parquet"
    with atomic_path(parquet) as tmp:
        df.astype({c: "string" for c in df.columns if df[c].dtype == object}).to_parquet(tmp, index=False)
    atomic_write_json(root / "results.json", [r.to_json() for r in results])
    figures = _group_figures(df, root)
    return csv, parquet, figures


def _group_figures(df, root: Path) -> list[Path]:
    from matplotlib.figure import Figure

    out = []
    mni_cols = [c for c in df.columns if c.endswith("_mni_x")]
    if mni_cols:
        fig = Figure(figsize=(9, 4))
        axes = fig.subplots(1, 2)
        for c in mni_cols:
            base = c[:-1]
            name = c[len("target_"):-len("_mni_x")]
            axes[0].scatter(df[base + "x"], df[base + "y"], label=name)
            axes[1].scatter(df[base + "y"], df[base + "z"], label=name)
        axes[0].set_xlabel("MNI x (mm)"), axes[0].set_ylabel("MNI y (mm)"), axes[0].set_title("axial")
        axes[1].set_xlabel("MNI y (mm)"), axes[1].set_ylabel("MNI z (mm)"), axes[1].set_title("sagittal")
        axes[0].legend(fontsize=7)
        fig.suptitle("target positions (cortical points) in MNI space, one point per subject")
        fig.tight_layout()
        p = root / "group_targets_mni.png"
        with atomic_path(p) as tmp:
            fig.savefig(tmp, dpi=110)
        out.append(p)
    field_cols = [c for c in df.columns if c.endswith("field_at_target_v_per_m")]
    if field_cols:
        fig = Figure(figsize=(max(4, 0.5 * len(df) + 2), 3.5))
        ax = fig.subplots()
        width = 0.8 / len(field_cols)
        for k, c in enumerate(field_cols):
            ax.bar([i + k * width for i in range(len(df))], df[c].astype(float), width, label=c)
        ax.set_xticks(range(len(df)))
        ax.set_xticklabels(df["subject"], rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("|E| at target (V/m)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = root / "group_field_at_target.png"
        with atomic_path(p) as tmp:
            fig.savefig(tmp, dpi=110)
        out.append(p)
    return out
