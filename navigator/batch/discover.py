"""Find the subjects of a batch: a BIDS dataset or an explicit list of T1 images."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from navigator.batch.config import BatchConfig


@dataclass
class BatchSubject:
    """One subject (session) of a batch."""

    subject_id: str  # e.g. "sub-01" or "sub-01_ses-02"
    t1: Path
    t2: Path | None = None
    rest: Path | None = None


def _first(paths: list[Path]) -> Path | None:
    return sorted(paths)[0] if paths else None


def discover_bids(root: Path) -> list[BatchSubject]:
    """``sub-*/[ses-*/]anat/*_T1w.nii[.gz]`` (+ T2w, func/*task-rest*_bold)."""
    out = []
    for sub in sorted(p for p in root.glob("sub-*") if p.is_dir()):
        sessions = sorted(p for p in sub.glob("ses-*") if p.is_dir()) or [sub]
        for ses in sessions:
            anat = ses / "anat"
            t1s = sorted(list(anat.glob("*_T1w.nii.gz")) + list(anat.glob("*_T1w.nii")))
            if not t1s:
                continue
            sid = sub.name if ses is sub else f"{sub.name}_{ses.name}"
            t2 = _first(list(anat.glob("*_T2w.nii.gz")) + list(anat.glob("*_T2w.nii")))
            func = ses / "func"
            rest = _first(list(func.glob("*task-rest*_bold.nii.gz")) + list(func.glob("*task-rest*_bold.nii")))
            out.append(BatchSubject(sid, t1s[0], t2, rest))
    return out


def _id_from_path(p: Path) -> str:
    name = p.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    m = re.match(r"(sub-[A-Za-z0-9]+(?:_ses-[A-Za-z0-9]+)?)", name)
    return m.group(1) if m else re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def discover(cfg: BatchConfig) -> list[BatchSubject]:
    subjects = discover_bids(cfg.bids) if cfg.bids else []
    subjects += [BatchSubject(_id_from_path(p), p) for p in cfg.subjects]
    if not cfg.use_t2:
        for s in subjects:
            s.t2 = None
    seen: dict[str, int] = {}
    for s in subjects:  # make ids unique
        n = seen.get(s.subject_id, 0)
        seen[s.subject_id] = n + 1
        if n:
            s.subject_id = f"{s.subject_id}-{n + 1}"
    return subjects
