"""`navigator info` and `navigator convert` through the CLI entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from navigator.cli import main

REPO = Path(__file__).resolve().parents[1]


def _lps_affine():
    return np.array([[-2.0, 0, 0, 20], [0, -2.0, 0, 22], [0, 0, 2.0, -18], [0, 0, 0, 1]])


def test_info_human_readable(tmp_image, capsys):
    path = tmp_image(np.random.default_rng(0).integers(0, 300, (20, 22, 18)).astype(np.int16), _lps_affine())
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "LPS" in out and "20 x 22 x 18" in out and "sform" in out and "modality (guess)" in out
    assert "loadable" in out


def test_info_json(tmp_image, capsys):
    path = tmp_image(np.zeros((6, 7, 8), np.float32) + 0.5, _lps_affine())
    assert main(["info", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["axcodes"] == ["L", "P", "S"] and d["shape"] == [6, 7, 8]
    assert d["voxel_size_mm"] == [2.0, 2.0, 2.0] and d["transform"] == "sform"
    assert d["sform_code"] == 1 and d["sform_qform_disagree"] is False
    assert d["min"] == 0.5 and "modality_guess" in d and "p50" in d["percentiles"]


def test_info_errors_are_one_line(tmp_path, capsys):
    fake = tmp_path / "fake.nii.gz"
    fake.write_text("hello\n" * 100)
    assert main(["info", str(fake)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("navigator: error:") and str(fake) in err and err.count("\n") == 1
    assert main(["info", str(tmp_path / "missing.nii")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_help(capsys):
    for cmd in ("info", "convert"):
        with pytest.raises(SystemExit) as ex:
            main([cmd, "--help"])
        assert ex.value.code == 0
        assert "usage: navigator " + cmd in capsys.readouterr().out


def test_convert_and_series_choice(tmp_path, tmp_dicom_series, capsys):
    data = np.random.default_rng(0).integers(0, 500, (12, 10, 8)).astype(np.int16)
    tmp_dicom_series(tmp_path / "dcm" / "a", data, series_uid="1.2.826.0.1.1", description="T1 MPRAGE")
    tmp_dicom_series(
        tmp_path / "dcm" / "b",
        data[:, :, :5],
        series_uid="1.2.826.0.1.2",
        description="T2 TSE",
        series_number=2,
    )
    out = tmp_path / "out" / "t1.nii.gz"
    assert main(["convert", str(tmp_path / "dcm"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "--series" in err and "1.2.826.0.1.2" in err and err.count("\n") == 1
    assert not out.exists()
    assert main(["convert", str(tmp_path / "dcm"), "--out", str(out), "--series", "1.2.826.0.1.1"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "orientation LPS" in printed
    img = nib.load(str(out))
    assert img.shape == (12, 10, 8) and int(img.header["sform_code"]) == 1
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    assert main(["info", str(tmp_path / "dcm"), "--series", "1.2.826.0.1.2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (
        d["format"] == "dicom" and d["shape"] == [12, 10, 5] and d["dicom"]["series_description"] == "T2 TSE"
    )


def test_python_dash_m_subprocess(tmp_image):
    path = tmp_image(np.ones((5, 6, 7), np.float32), _lps_affine())
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run(
        [sys.executable, "-m", "navigator", "info", "--json", str(path)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["axcodes"] == ["L", "P", "S"]
    bad = subprocess.run(
        [sys.executable, "-m", "navigator", "info", str(path) + ".nope"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 1 and "no such file" in bad.stderr
