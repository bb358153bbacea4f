"""Compare the outputs of two `navigator demo` runs, e.g. before and after a refactor, or two runs
of one commit (determinism).

    nice -n 10 navigator demo --out /tmp/demo_a --no-gui            # tree or commit A
    nice -n 10 navigator demo --out /tmp/demo_b --no-gui            # tree or commit B
    python benchmarks/compare_demo_outputs.py /tmp/demo_a /tmp/demo_b [--rtol 1e-9] [--report FILE.md]

(Run another tree with ``PYTHONPATH=TREE:TREE/plugins python -m navigator demo ...``.) Either the
``--out`` folders or the workspaces inside them can be given. The files are compared by
``scripts/compare_outputs.py``'s rules, which are the issue's criteria:

* the head model (labels, ``mesh/head.msh``, surfaces) must have the same SHA-256;
* field arrays (``fields.msh`` node/element data, NIfTI and GIFTI maps, transforms) must agree
  within ``--rtol`` relative to the largest magnitude of the array (nodes, elements, tags exactly);
* plans and summaries (JSON) must be equal once wall-clock entries are left out, numbers within
  ``--rtol``;
* the rest byte for byte (paths of the one folder read as the other's, wall-clock times left out).

Left out as well: throughputs (JSON keys naming ``per_s``) and, in the manifest ``subject.json``,
the SHA-256 of files and the step keys built from them (every file is compared on its own, and
files that hold paths or timings have other hashes in every run).

It prints one line per group (head model, fields, plans, summaries and records, other) and then
every differing file: for arrays, each differing array with its largest relative difference and
the share of its entries that differ, so a difference can be traced to where it starts (e.g. the
MNI transform, then every MNI-space map). Exit code 0 when everything matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from compare_outputs import _arrays_gifti, _arrays_msh, _arrays_nifti, _cmp_json  # noqa: E402

#: arrays that must be equal exactly (connectivity and labels)
EXACT = ("tetrahedra", "tet_tags", "triangles", "triangle_tags")
#: wall-clock times written into text files (the report's step table)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _clean_json(obj, manifest: bool):
    """Leave out what changes from run to run beyond scripts/compare_outputs.py's rules: throughputs
    (keys naming ``per_s``) and, in the manifest, the SHA-256 of files and step keys (hashes of
    file contents, which are compared file by file; files holding paths or timings differ)."""
    if isinstance(obj, dict):
        return {k: _clean_json(v, manifest) for k, v in obj.items() if "per_s" not in str(k).lower()}
    if isinstance(obj, list):
        return [_clean_json(v, manifest) for v in obj]
    if manifest and isinstance(obj, str) and SHA256.match(obj):
        return "<sha256>"
    return obj


@dataclass
class FileResult:
    rel: str
    group: str
    how: str
    problems: list[str] = field(default_factory=list)
    worst: float = 0.0  # largest relative difference of its arrays (0 when identical or not arrays)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _workspace(folder: Path) -> Path:
    """The workspace of a demo output folder (the folder itself when it is one)."""
    if (folder / "subject.json").exists():
        return folder
    found = sorted(p.parent for p in folder.glob("*/subject.json"))
    if len(found) != 1:
        raise SystemExit(f"{folder}: expected one workspace (*/subject.json), found {len(found)}")
    return found[0]


def group_of(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    if rel.startswith(("labels/", "mesh/", "surfaces/")) or rel == "input/T1.nii.gz":
        return "head model"
    if rel.startswith("transforms/") or "/fields/" in rel or name.endswith((".msh", ".nii.gz", ".nii", ".gii")):
        return "fields and maps"
    if name == "plan.json" or rel.startswith("plans/export/"):
        return "plans and exports"
    if name.endswith(".json"):
        return "summaries and records"
    return "other"


def rel_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(largest |a - b| relative to max |b|, share of entries that differ); inf when the shapes or
    NaN patterns differ."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf"), 1.0
    if a.size == 0:
        return 0.0, 0.0
    d = np.abs(np.nan_to_num(a) - np.nan_to_num(b))
    scale = max(float(np.nanmax(np.abs(b))) if np.isfinite(b).any() else 0.0, 1e-300)
    return float(d.max() / scale), float(np.count_nonzero(d) / d.size)


def compare_file(a: Path, b: Path, rel: str, rtol: float, roots: tuple[str, str]) -> FileResult:
    group = group_of(rel)
    name = a.name
    same = _sha(a) == _sha(b)
    if group == "head model" and not name.endswith(".json"):
        return FileResult(rel, group, "sha256", [] if same else ["SHA-256 differs"])
    if same:
        return FileResult(rel, group, "identical")
    if name.endswith((".msh", ".nii.gz", ".nii", ".gii")):
        reader = _arrays_msh if name.endswith(".msh") else _arrays_gifti if name.endswith(".gii") else _arrays_nifti
        xa, xb = reader(a), reader(b)
        res = FileResult(rel, group, "arrays", [f"{k}: only in {'before' if k in xa else 'after'}"
                                                for k in sorted(set(xa) ^ set(xb))])
        for k in sorted(set(xa) & set(xb)):
            d, share = rel_diff(xa[k], xb[k])
            res.worst = max(res.worst, d)
            if (k in EXACT and d != 0.0) or d > rtol:
                res.problems.append(f"{k}: max rel. diff {d:.3g} ({100 * share:.3g} % of entries differ)")
        return res
    if name.endswith(".json"):
        problems: list[str] = []
        manifest = rel == "subject.json"
        _cmp_json(_clean_json(json.loads(a.read_text()), manifest), _clean_json(json.loads(b.read_text()), manifest),
                  rtol, "", problems, roots)
        return FileResult(rel, group, "json", problems)
    try:
        ta = TIMESTAMP.sub("<time>", a.read_text()).splitlines()
        tb = TIMESTAMP.sub("<time>", b.read_text().replace(roots[1], roots[0])).splitlines()
    except UnicodeDecodeError:
        return FileResult(rel, group, "bytes", ["bytes differ"])
    if ta == tb:
        return FileResult(rel, group, "text (paths aside)")
    n = sum(x != y for x, y in zip(ta, tb)) + abs(len(ta) - len(tb))
    return FileResult(rel, group, "text", [f"{n} of {max(len(ta), len(tb))} lines differ"])


def compare_demos(before: Path, after: Path, rtol: float = 1e-9) -> list[FileResult]:
    """One :class:`FileResult` per file of either workspace."""
    wa, wb = _workspace(before), _workspace(after)
    files_a = {p.relative_to(wa).as_posix() for p in wa.rglob("*") if p.is_file()}
    files_b = {p.relative_to(wb).as_posix() for p in wb.rglob("*") if p.is_file()}
    roots = (str(wa.resolve()), str(wb.resolve()))
    out = []
    for rel in sorted(files_a | files_b):
        if rel not in files_a or rel not in files_b:
            out.append(FileResult(rel, group_of(rel), "missing", [f"only in {'before' if rel in files_a else 'after'}"]))
        else:
            out.append(compare_file(wa / rel, wb / rel, rel, rtol, roots))
    return out


def report(results: list[FileResult], rtol: float) -> str:
    lines = [f"rtol {rtol:g}"]
    for group in ("head model", "fields and maps", "plans and exports", "summaries and records", "other"):
        rs = [r for r in results if r.group == group]
        if not rs:
            continue
        bad = [r for r in rs if r.problems]
        worst = max((r.worst for r in rs), default=0.0)
        lines.append(f"{group}: {len(rs) - len(bad)}/{len(rs)} the same"
                     + (f"; largest array difference {worst:.3g}" if worst else ""))
    bad = [r for r in results if r.problems]
    if bad:
        lines.append("")
        lines.append("differences:")
        for r in bad:
            lines.append(f"  {r.rel} ({r.how})")
            lines.extend(f"      {p}" for p in r.problems[:8])
            if len(r.problems) > 8:
                lines.append(f"      ... {len(r.problems) - 8} more")
    lines.append("")
    lines.append(f"{len(results)} files, {len(results) - len(bad)} the same: "
                 + ("ALL MATCH" if not bad else "DIFFERENCES FOUND"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path, help="demo output folder (or its workspace)")
    ap.add_argument("after", type=Path, help="demo output folder (or its workspace)")
    ap.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance of arrays and numbers (default 1e-9)")
    ap.add_argument("--report", type=Path, help="also write the text to this file")
    args = ap.parse_args(argv)
    results = compare_demos(args.before, args.after, args.rtol)
    text = report(results, args.rtol)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")
    return 0 if not any(r.problems for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
