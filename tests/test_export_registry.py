"""Plugin discovery through entry points, and the export / import-plan command line."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from test_export_support import make_plan

from navigator.cli import main
from navigator.core.errors import NavigatorError
from navigator.export import registry
from navigator.export.plan import load_plan, save_plan
from navigator.export.registry import Plugin, discover, get_plugin, plugins

FIRST_PARTY = {"localite", "localite-entrytarget", "localite-triggers", "brainsight", "brainsight-samples",
               "ant-visor2", "invesalius", "slicer", "slicer-fcsv", "csv", "json"}


def test_first_party_plugins_are_registered_by_entry_points():
    found = discover(reload=True)
    assert FIRST_PARTY <= set(found)
    for p in found.values():
        assert p.extensions and p.coordinate_space and p.coil_axes
    assert {p.name for p in plugins("pulse-log")} >= {"localite-triggers", "brainsight-samples"}
    assert all(p.can_import for p in plugins("importer"))


def test_unknown_format_lists_choices():
    with pytest.raises(NavigatorError, match="unknown exporter format 'nope'; available: .*localite"):
        get_plugin("nope", "exporter")


class _FakeEP:
    def __init__(self, name, obj=None, exc=None):
        self.name, self.value, self._obj, self._exc = name, f"fake:{name}", obj, exc

    def load(self):
        if self._exc:
            raise self._exc
        return self._obj


def test_no_entry_points_gives_install_hint(monkeypatch):
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    with pytest.raises(NavigatorError, match="pip install -e"):
        discover(reload=True)
    monkeypatch.undo()
    discover(reload=True)


def test_broken_and_foreign_plugins_are_skipped(monkeypatch, caplog, tmp_path):
    def write(plan, path, space):
        path.write_text(f"{len(plan.coil_poses)} {space}")

    good = Plugin(name="thirdparty", kind="exporter", description="x", extensions=(".tp",),
                  coordinate_space="ras", spaces=("ras",), coil_axes="ours", write=write)
    eps = [_FakeEP("thirdparty", good), _FakeEP("broken", exc=ImportError("no module")),
           _FakeEP("foreign", object())]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    with caplog.at_level(logging.WARNING):
        found = discover(reload=True)
    assert set(found) == {"thirdparty"}
    assert "broken" in caplog.text and "not a navigator Plugin" in caplog.text
    from navigator.export import export_plan

    plan, _ = make_plan(tmp_path, n_random=2)
    out = export_plan(plan, "thirdparty", tmp_path / "x.tp")
    assert out.read_text() == "3 ras"
    monkeypatch.undo()
    discover(reload=True)


def test_plugin_declaration_is_checked():
    with pytest.raises(ValueError, match="unknown kind"):
        Plugin(name="x", kind="magic", description="", extensions=(), coordinate_space="ras", coil_axes="")
    with pytest.raises(ValueError, match="no write"):
        Plugin(name="x", kind="exporter", description="", extensions=(), coordinate_space="ras", coil_axes="")


def test_cli_list(capsys):
    assert main(["export", "--list"]) == 0
    out = capsys.readouterr().out
    for name in FIRST_PARTY:
        assert name in out


def test_cli_export_then_import_plan(tmp_path, capsys):
    plan, t1 = make_plan(tmp_path, n_random=3)
    plan_path = save_plan(plan, tmp_path / "plans" / "plan.json")
    out = tmp_path / "targets.txt"
    assert main(["export", str(plan_path), "--format", "brainsight", "--out", str(out)]) == 0
    back_path = tmp_path / "back.json"
    assert main(["import-plan", str(out), "--out", str(back_path), "--image", str(t1), "--subject-id", "sub-asym"]) == 0
    back = load_plan(back_path)
    assert back.image.sha256 == plan.image.sha256 and back.subject == "sub-asym"
    for a, b in zip(plan.coil_poses, back.coil_poses):
        np.testing.assert_allclose(a.matrix, b.matrix, atol=1e-9, rtol=0)
    assert "brainsight" in json.loads(back_path.read_text())["source"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.json"), "-f", "csv", "-o", str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.json: no such plan file" in err
    assert main(["export"]) == 1
    plan, _ = make_plan(tmp_path, n_random=1)
    p = save_plan(plan, tmp_path / "plan.json")
    assert main(["export", str(p), "-f", "slicer", "-o", str(tmp_path / "x.mrk.json"), "--space", "ras"]) == 0
    assert main(["export", str(p), "-f", "brainsight", "-o", str(tmp_path / "x.txt"), "--space", "lps"]) == 1
    assert "fixed coordinate space" in capsys.readouterr().err


def test_export_all_plans(tmp_path):
    from navigator.export.batch import export_all_plans

    plan, t1 = make_plan(tmp_path / "s", n_random=2)
    p = save_plan(plan, tmp_path / "plans" / "left" / "plan.json")
    written = export_all_plans([p], tmp_path / "export", t1=t1)
    names = {w.name for w in written}
    assert {"localite.xml", "brainsight.txt", "ant-visor2.mrk", "invesalius.mkss", "slicer.mrk.json",
            "json.json"} <= names
    assert all(w.parent == tmp_path / "export" / "left" for w in written)
    other = tmp_path / "other.nii.gz"
    other.write_bytes(t1.read_bytes() + b"\0")
    with pytest.raises(NavigatorError, match="different image"):
        export_all_plans([p], tmp_path / "export2", t1=other)
