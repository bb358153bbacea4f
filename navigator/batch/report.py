"""Per-subject report a clinician can print: one self-contained HTML file (images embedded),
optionally a PDF of the same content.

Contents: subject and source images (with SHA-256), the segmentation QC montage, the targets
(subject RAS and MNI), each plan's coil poses / electrodes with coordinates in subject scanner
RAS (the navigator's space) and the image they refer to, cortical field maps rendered from
the middle grey-matter surface, the key numbers of each simulation/optimization, software
version and the parameters of every step.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from navigator import __version__
from navigator.core.atomic import atomic_path, atomic_write_text
from navigator.core.progress import Progress, ensure_progress
from navigator.core.steps import Step
from navigator.core.workspace import Workspace

CSS = """
body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px;border-bottom:2px solid #444}h2{font-size:17px;margin-top:26px;border-bottom:1px solid #aaa}
table{border-collapse:collapse;margin:8px 0;font-size:12px}td,th{border:1px solid #bbb;padding:3px 6px;text-align:left}
th{background:#eee}.num{text-align:right;font-family:DejaVu Sans Mono,monospace}img{max-width:100%}
.warn{color:#a00;font-weight:bold}.small{font-size:11px;color:#555}
@media print{h2{page-break-after:avoid}img{page-break-inside:avoid}}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _fmt3(p) -> str:
    return "-" if p is None else ", ".join(f"{float(v):.1f}" for v in p)


def _img_tag(png: bytes, alt: str) -> str:
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    h = "".join(f"<th>{_esc(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def render_cortex_field(vertices: np.ndarray, faces: np.ndarray, values: np.ndarray, title: str,
                        unit: str = "V/m") -> bytes:
    """PNG of a surface field from three views (left, top, right), painter's-sorted triangles."""
    import matplotlib
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    vals = np.asarray(values, float)
    vmax = float(np.nanpercentile(vals, 99.5)) or 1.0
    face_val = vals[faces].mean(axis=1)
    views = [("left", (1, 2), 0, -1), ("top", (0, 1), 2, 1), ("right", (1, 2), 0, 1)]
    fig = Figure(figsize=(12, 4.2))
    axes = fig.subplots(1, 3)
    cmap = matplotlib.colormaps["inferno"]
    for ax, (name, (a, b), depth_axis, sign) in zip(axes, views):
        tri = vertices[faces]
        depth = sign * tri[:, :, depth_axis].mean(axis=1)
        order = np.argsort(depth)  # far first
        xy = tri[order][:, :, [a, b]]
        if name == "left":
            xy[:, :, 0] *= -1  # anterior to the left when seen from the left
        pc = PolyCollection(xy, array=face_val[order], cmap=cmap, clim=(0, vmax), edgecolors="none")
        ax.add_collection(pc)
        ax.autoscale_view()
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title({"left": "left (L)", "top": "top (superior; anterior up, left = L)", "right": "right (R)"}[name],
                     fontsize=9)
    fig.colorbar(pc, ax=axes, shrink=0.8, label=unit)
    fig.suptitle(title, fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _field_maps(ws: Workspace) -> list[tuple[str, bytes]]:
    from navigator.io.surfaces import read_surface

    maps = []
    for folder in sorted(list(ws.path("simulations").glob("*")) + list(ws.path("plans").glob("*"))):
        for gii in sorted(folder.glob("*middle_gm*.gii")) + sorted(folder.glob("*cortex*.gii")):
            try:
                s = read_surface(gii)
            except Exception:  # noqa: BLE001 - a damaged map must not stop the report
                continue
            key = next((k for k in ("magnE", "E_magn", "normE", "E_norm") if k in s.data), None)
            if key is None:
                continue
            title = f"{folder.parent.name}/{folder.name}: {key} on the middle grey-matter surface"
            maps.append((title, render_cortex_field(s.vertices, s.faces, s.data[key], title)))
            break
    return maps


def build_report_html(ws: Workspace) -> str:
    m = ws.manifest
    parts = [f"<html><head><meta charset='utf-8'><title>navigator report {_esc(ws.subject_id)}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>Stimulation plan report: {_esc(ws.subject_id)}</h1>",
             "<p class='small'>All coordinates are subject scanner RAS in millimetres (the world of the T1 "
             "listed below) unless marked MNI152. Check the plan against the navigation system before use. "
             "Research software, not a medical device.</p>"]
    parts.append("<h2>Subject</h2>")
    rows = [[role, s["path"], s["sha256"], s.get("original") or ""] for role, s in m["sources"].items()]
    parts.append(_table(["image", "file in workspace", "SHA-256", "original"], rows))
    qc = ws.path("qc")
    qc_png = sorted(qc.glob("*.png")) if qc.exists() else []
    if qc_png:
        parts.append("<h2>Segmentation quality control</h2>" + _img_tag(qc_png[0].read_bytes(), "segmentation QC"))
        metrics = sorted(qc.glob("*.json"))
        if metrics:
            d = json.loads(metrics[0].read_text())
            vols = d.get("volumes_ml") or d.get("tissue_volumes_ml") or {}
            if vols:
                parts.append(_table(["tissue", "volume (ml)"], [[k, f"{v:.1f}"] for k, v in vols.items()]))
    resolved = ws.root / "targets" / "resolved.json"
    if resolved.exists():
        t = json.loads(resolved.read_text())["targets"]
        rows = [[n, _fmt3(v.get("cortical_point")), _fmt3(v.get("mni")), _fmt3(v.get("scalp_entry")),
                 "-" if v.get("scalp_cortex_distance_mm") is None else f"{v['scalp_cortex_distance_mm']:.1f}",
                 v.get("reference", "")] for n, v in t.items()]
        parts.append("<h2>Targets</h2>" + _table(
            ["target", "cortical point (subject RAS mm)", "MNI152 (mm)", "scalp entry (subject RAS mm)",
             "scalp-cortex (mm)", "reference"], rows))
    for plan_path in sorted(ws.path("plans").glob("*/plan.json")):
        parts.append(_plan_section(plan_path))
    for title, png in _field_maps(ws):
        parts.append(f"<h2>Field map</h2>{_img_tag(png, title)}")
    parts.append("<h2>Software and parameters</h2>")
    parts.append(f"<p>navigator {_esc(__version__)}; workspace schema {m['schema_version']}</p>")
    rows = [[n, s["software_version"], s["completed"], json.dumps(s["parameters"], sort_keys=True)[:300]]
            for n, s in m["steps"].items()]
    parts.append(_table(["step", "version", "completed", "parameters"], rows))
    parts.append("</body></html>")
    return "\n".join(parts)


def _plan_section(plan_path: Path) -> str:
    d = json.loads(plan_path.read_text())
    out = [f"<h2>Plan: {_esc(plan_path.parent.name)}</h2>"]
    img = d.get("image") or {}
    cs = d.get("coordinate_system", "subject scanner RAS (mm)")
    out.append(f"<p>Coordinate system: <b>{_esc(cs)}</b>; image {_esc(img.get('path', '?'))} "
               f"(SHA-256 {_esc(str(img.get('sha256', '?'))[:16])}…)</p>")
    tg = d.get("targets") or []
    if tg:
        out.append(_table(["target", "position (mm)", "scalp entry (mm)", "description"],
                          [[t.get("name", ""), _fmt3(t.get("position")), _fmt3(t.get("entry")),
                            t.get("description", "")] for t in tg]))
    poses = d.get("coil_poses") or []
    if poses:
        rows = []
        for p in poses:
            M = np.asarray(p["matrix"], float)
            rows.append([p.get("name", ""), p.get("coil", ""), _fmt3(M[:3, 3]), _fmt3(M[:3, 2]), _fmt3(M[:3, 1]),
                         p.get("mso") if p.get("mso") is not None else "-",
                         p.get("didt") if p.get("didt") is not None else "-"])
        out.append(_table(["pose", "coil", "centre (mm)", "z axis (into head)", "y axis (handle)", "%MSO",
                           "dI/dt (A/s)"], rows))
    for mt in d.get("montages") or []:
        rows = [[e.get("name", ""), _fmt3(e.get("position")), e.get("current_ma", ""), e.get("shape", ""),
                 e.get("size_mm", "")] for e in mt.get("electrodes", [])]
        out.append(f"<p>Montage {_esc(mt.get('name', ''))}</p>" + _table(
            ["electrode", "position (mm)", "current (mA)", "shape", "size (mm)"], rows))
    summary = plan_path.parent / "summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())
        flat = [[k, v] for k, v in s.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
        if flat:
            out.append(_table(["quantity", "value"], flat[:40]))
    return "\n".join(out)


def write_subject_report(ws: Workspace, out: Path, pdf: bool = False) -> list[Path]:
    """Write ``out`` (HTML) and, with ``pdf``, ``out.with_suffix('.pdf')``; returns the paths."""
    html_text = build_report_html(ws)
    atomic_write_text(out, html_text)
    written = [out]
    if pdf:
        written.append(_write_pdf(ws, out.with_suffix(".pdf")))
    return written


def _write_pdf(ws: Workspace, path: Path) -> Path:
    """A PDF with the key tables and images (matplotlib pages; no browser needed)."""
    import matplotlib.image as mpimg
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        fig = Figure(figsize=(8.27, 11.69))
        lines = [f"navigator report: {ws.subject_id}", f"navigator {__version__}", ""]
        for role, s in ws.sources().items():
            lines.append(f"{role}: {s['path']}  sha256 {s['sha256'][:16]}...")
        resolved = ws.root / "targets" / "resolved.json"
        if resolved.exists():
            lines.append("")
            lines.append("Targets (subject scanner RAS mm; MNI152 mm):")
            for n, v in json.loads(resolved.read_text())["targets"].items():
                lines.append(f"  {n}: cortex ({_fmt3(v.get('cortical_point'))})  MNI ({_fmt3(v.get('mni'))})")
        for plan_path in sorted(ws.path("plans").glob("*/plan.json")):
            d = json.loads(plan_path.read_text())
            lines.append("")
            lines.append(f"Plan {plan_path.parent.name} ({d.get('coordinate_system', 'subject RAS mm')}):")
            for p in d.get("coil_poses") or []:
                M = np.asarray(p.get("matrix"), float)
                lines.append(f"  {p.get('name', '')}: centre ({_fmt3(M[:3, 3])}) handle ({_fmt3(M[:3, 1])})")
        fig.text(0.05, 0.97, "\n".join(lines), va="top", family="monospace", fontsize=8)
        pdf.savefig(fig)
        qc = ws.path("qc")
        for png in (sorted(qc.glob("*.png")) if qc.exists() else [])[:1]:
            fig = Figure(figsize=(8.27, 11.69))
            ax = fig.add_subplot()
            ax.imshow(mpimg.imread(png))
            ax.axis("off")
            pdf.savefig(fig)
        for title, png in _field_maps(ws):
            fig = Figure(figsize=(11.69, 8.27))
            ax = fig.add_subplot()
            ax.imshow(mpimg.imread(io.BytesIO(png)))
            ax.axis("off")
            pdf.savefig(fig)
    return path


# ----------------------------------------------------------------------------- the report step
REPORT_RECORD = "batch-report"
REPORT_HTML = "report/report.html"


def report_step(ws: Workspace, *, progress: Progress | None = None, force: bool = False, pdf: bool = False) -> bool:
    """The ``report`` step (:mod:`navigator.core.steps` protocol): ``report/report.html`` (and with
    ``pdf`` a PDF) from what the earlier steps recorded (labels, plans, summaries); False when
    current."""
    progress = ensure_progress(progress)
    out = ws.root / REPORT_HTML
    inputs = [p for p in [ws.path("labels"), *sorted(ws.path("plans").glob("*/plan.json")),
                          *sorted(ws.path("plans").glob("*/summary.json")),
                          *sorted(ws.path("simulations").glob("*/summary.json"))] if p.exists()]
    params = {"pdf": bool(pdf)}
    if not force and ws.step_is_current(REPORT_RECORD, params, inputs) and out.exists():
        return False
    t0 = time.perf_counter()
    written = write_subject_report(ws, out, pdf=params["pdf"])
    ws.record_step(REPORT_RECORD, params, inputs=inputs, outputs=written, seconds=round(time.perf_counter() - t0, 2))
    progress.update(1.0, "report written")
    return True


REPORT = Step("report", report_step, "the subject report (HTML, optionally PDF)", record=REPORT_RECORD,
              outputs=(REPORT_HTML,))
