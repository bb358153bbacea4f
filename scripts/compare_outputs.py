"""Compare two output folders of the same job (e.g. `navigator demo` before and after a change).

    python scripts/compare_outputs.py BEFORE_DIR AFTER_DIR [--rtol 1e-9] [--report FILE.md]

Per file present in either folder:

* head meshes (``mesh/head.msh``) and surfaces must be byte-identical (SHA-256);
* field meshes (``fields.msh``), NIfTI maps and GIFTI surfaces: every array equal within
  ``rtol`` relative to the largest magnitude of that array (nodes, elements and tags exactly);
* JSON (plans, summaries, manifests): equal after dropping wall-clock entries (keys naming
  seconds or timings, durations ``*_s``, creation times, host), numbers within ``rtol``;
* anything else: byte-identical, else reported (with the count of differing text lines).

The workspace manifest's hashes of JSON files are not compared (those files hold timings and are
compared on their own). Absolute paths of the BEFORE folder are read as the AFTER folder's in JSON and text files.

Exit code 0 when everything matches, 1 otherwise. Needs the navigator package (readers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

#: JSON keys whose values change from run to run (wall clock, machine)
VOLATILE = {"created", "created_at", "added", "completed", "last_commit", "modified", "updated", "date", "time", "timestamp", "host", "hostname",
            "python", "platform", "placements_per_s"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _volatile(key: str) -> bool:
    """Wall-clock entries: listed names, anything naming seconds or timings, durations "*_s"."""
    k = key.lower()
    return (k in VOLATILE or "seconds" in k or "timing" in k
            or (k.endswith("_s") and "per_s" not in k))


def _rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    scale = max(float(np.nanmax(np.abs(b))) if np.isfinite(b).any() else 0.0, 1e-300)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    d = np.abs(np.nan_to_num(a) - np.nan_to_num(b))
    return float(d.max() / scale)


def _cmp_json(a, b, rtol: float, where: str, out: list[str], roots: tuple[str, str] = ("", "")) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if _volatile(str(k)):
                continue
            if k not in a or k not in b:
                out.append(f"{where}/{k}: only in {'after' if k not in a else 'before'}")
                continue
            _cmp_json(a[k], b[k], rtol, f"{where}/{k}", out, roots)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: list length {len(a)} != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            _cmp_json(x, y, rtol, f"{where}[{i}]", out, roots)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if not np.isclose(a, b, rtol=rtol, atol=0.0):
            out.append(f"{where}: {a!r} != {b!r}")
    elif isinstance(a, str) and isinstance(b, str) and where.endswith(".json") and len(a) == len(b) == 64:
        return  # manifest hash of a JSON file holding timings; the file itself is compared on its own
    elif isinstance(a, str) and isinstance(b, str) and roots[0]:
        if a.replace(roots[0], roots[1]) != b:
            out.append(f"{where}: {a!r} != {b!r}")
    elif a != b:
        out.append(f"{where}: {a!r} != {b!r}")


def _arrays_msh(path: Path) -> dict[str, np.ndarray]:
    from navigator.io.gmsh import read_msh

    m = read_msh(path)
    arrays = {"nodes": m.nodes, "tetrahedra": m.tetrahedra, "tet_tags": m.tet_tags, "triangles": m.triangles,
              "triangle_tags": m.triangle_tags}
    arrays.update({f"node:{k}": v for k, v in m.node_data.items()})
    arrays.update({f"tet:{k}": v for k, v in m.tet_data.items()})
    return arrays


def _arrays_nifti(path: Path) -> dict[str, np.ndarray]:
    import nibabel as nib

    img = nib.load(str(path))
    return {"data": np.asarray(img.dataobj), "affine": img.affine}


def _arrays_gifti(path: Path) -> dict[str, np.ndarray]:
    import nibabel as nib

    img = nib.load(str(path))
    return {f"{i}:{d.meta.get('Name', d.intent)}": np.asarray(d.data) for i, d in enumerate(img.darrays)}


def compare_file(a: Path, b: Path, rel: str, rtol: float, roots: tuple[str, str] = ("", "")) -> tuple[str, list[str]]:
    """(kind, problems) for one file present in both folders."""
    name = a.name
    if name == "head.msh" or name.endswith(".surf.gii") and "fields" not in name:
        return "sha256", ([] if _sha(a) == _sha(b) else ["SHA-256 differs"])
    if _sha(a) == _sha(b):
        return "identical", []
    if name.endswith(".msh") or name.endswith(".nii.gz") or name.endswith(".nii") or name.endswith(".gii"):
        reader = _arrays_msh if name.endswith(".msh") else _arrays_gifti if name.endswith(".gii") else _arrays_nifti
        xa, xb = reader(a), reader(b)
        problems = [f"{k}: only in one" for k in set(xa) ^ set(xb)]
        worst = 0.0
        for k in sorted(set(xa) & set(xb)):
            exact = k in ("tetrahedra", "tet_tags", "triangles", "triangle_tags")
            d = _rel_diff(xa[k], xb[k])
            worst = max(worst, d)
            if (exact and d != 0.0) or d > rtol:
                problems.append(f"{k}: relative difference {d:.3g}")
        return f"arrays (max rel. diff {worst:.2g})", problems
    if name.endswith(".json"):
        problems: list[str] = []
        _cmp_json(json.loads(a.read_text()), json.loads(b.read_text()), rtol, "", problems, roots)
        return "json", problems
    try:
        ta, tb = a.read_text().splitlines(), b.read_text().replace(roots[1], roots[0]).splitlines()
    except UnicodeDecodeError:
        return "bytes", ["bytes differ"]
    if ta == tb:
        return "text (paths aside)", []
    n = sum(x != y for x, y in zip(ta, tb)) + abs(len(ta) - len(tb))
    return "text", [f"{n} of {max(len(ta), len(tb))} lines differ"]


def compare_trees(before: Path, after: Path, rtol: float) -> tuple[list[tuple[str, str, list[str]]], bool]:
    files_a = {p.relative_to(before).as_posix() for p in before.rglob("*") if p.is_file()}
    files_b = {p.relative_to(after).as_posix() for p in after.rglob("*") if p.is_file()}
    rows = []
    ok = True
    for rel in sorted(files_a | files_b):
        if rel not in files_a or rel not in files_b:
            rows.append((rel, "missing", [f"only in {'before' if rel in files_a else 'after'}"]))
            ok = False
            continue
        kind, problems = compare_file(before / rel, after / rel, rel, rtol, (str(before.resolve()), str(after.resolve())))
        ok &= not problems
        rows.append((rel, kind, problems))
    return rows, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rtol", type=float, default=1e-9)
    ap.add_argument("--report", type=Path, help="write the table as Markdown")
    args = ap.parse_args(argv)
    rows, ok = compare_trees(args.before, args.after, args.rtol)
    lines = [f"| file | compared as | result |", "|---|---|---|"]
    for rel, kind, problems in rows:
        lines.append(f"| `{rel}` | {kind} | {'same' if not problems else '; '.join(problems[:3])} |")
    lines.append("")
    lines.append(f"{len(rows)} files; {sum(1 for r in rows if not r[2])} the same; "
                 f"{'ALL MATCH' if ok else 'DIFFERENCES FOUND'} (rtol {args.rtol:g})")
    text = "\n".join(lines)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
