"""The bad-input corpus: every malformed file gets a clear one-line error, never a traceback.

Layout: ``tests/bad_inputs/<group>/cases.json`` lists the cases of a group as JSON objects::

    {"file": "<file or folder in that group folder>",
     "argv": ["info", "{file}"],           # navigator command line
     "error": "<regex the error line must match>"}

``{file}`` is replaced by the path of a copy of the file (a folder is copied whole) in a fresh
temporary directory, ``{out}`` by a path inside that directory that does not exist yet (both may
be part of a longer argument, e.g. ``"{out}.nii.gz"``). The CLI runs in-process
(:func:`navigator.cli.main`) with that temporary directory as the working directory and the
copy given by a relative path; each case must

* exit non-zero,
* write exactly one line to stderr (Python and C-level output both count), with no
  "Traceback", matching ``error`` (``re.search``),
* leave the corpus and the directory holding the temporary directory unchanged (nothing is
  written outside the temporary directory).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from navigator.cli import main

CORPUS = Path(__file__).resolve().parent / "bad_inputs"


def _cases() -> list:
    params = []
    for cases_file in sorted(CORPUS.glob("*/cases.json")):
        group = cases_file.parent.name
        for n, case in enumerate(json.loads(cases_file.read_text(encoding="utf-8"))):
            params.append(pytest.param(group, case, id=f"{group}/{case['file']}/{n}:{case['argv'][0]}"))
    return params


def _tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def test_corpus_is_large_enough() -> None:
    mine = {"images", "dicom", "meshes"}
    files = {(g, c["file"]) for g, c in (p.values[:2] for p in _cases()) if g in mine}
    assert len(files) >= 20, f"only {len(files)} files in the image/DICOM/mesh corpus"
    for group, name in files:
        assert (CORPUS / group / name).exists(), f"{group}/cases.json names a missing file {name}"


@pytest.mark.parametrize("group, case", _cases())
def test_bad_input_gives_one_clear_line(group: str, case: dict, tmp_path: Path, monkeypatch, capfd) -> None:
    src = CORPUS / group / case["file"]
    assert src.exists(), f"{src} is missing from the corpus"
    work = tmp_path / "work"
    work.mkdir()
    copy = work / src.name
    if src.is_dir():
        shutil.copytree(src, copy)
    else:
        shutil.copyfile(src, copy)
    out = work / "out"
    argv = [a.replace("{file}", copy.name).replace("{out}", out.name) for a in case["argv"]]
    corpus_before = _tree_digest(CORPUS / group)
    outside_before = sorted(p.name for p in tmp_path.parent.iterdir())
    monkeypatch.chdir(work)
    capfd.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors exit directly
        rc = exc.code
    captured = capfd.readouterr()
    err_lines = [line for line in captured.err.splitlines() if line.strip()]
    assert rc not in (0, None), f"{case['file']}: exit code 0 for a bad input; stdout: {captured.out[-500:]}"
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    assert len(err_lines) == 1, f"expected one error line, got {len(err_lines)}:\n{captured.err}"
    assert re.search(case["error"], err_lines[0]), f"{err_lines[0]!r} does not match {case['error']!r}"
    assert _tree_digest(CORPUS / group) == corpus_before, "the corpus changed"
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == outside_before, "wrote beside the temp dir"
