"""Shared, generic test fixtures: the ../shared/data folder and small synthetic image writers; the
``--cli-coverage`` option (which command-line commands the run executed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# ----------------------------------------------------------------------------- CLI coverage
def pytest_addoption(parser) -> None:
    parser.addoption("--cli-coverage", action="store_true",
                     help="record every navigator.cli.main call of the run and list, at the end, the CLI "
                          "commands (leaves of the parser) it ran and those it did not")


_CLI_CALLS: list[list[str]] = []


def pytest_configure(config) -> None:
    if not config.getoption("--cli-coverage", default=False):
        return
    import navigator.cli as cli

    original = cli.main

    def recording_main(argv=None):
        _CLI_CALLS.append([str(a) for a in argv] if argv is not None else [])
        return original(argv)

    # test modules import `main` after this runs (conftest first), so they get the recording one
    cli.main = recording_main


def cli_subparsers(parser, prefix: tuple[str, ...] = ()):
    """(command path, parser) of every command and sub-command under ``parser``."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,), sub
                yield from cli_subparsers(sub, prefix + (name,))


def cli_leaf_commands() -> set[tuple[str, ...]]:
    """Every command path of the CLI that has no sub-commands, e.g. ("simulate", "tms")."""
    from navigator.cli import build_parser

    commands = {path for path, _ in cli_subparsers(build_parser())}
    return {c for c in commands if not any(o[:len(c)] == c and len(o) > len(c) for o in commands)}


def command_path(argv: list[str], leaves: set[tuple[str, ...]]) -> tuple[str, ...] | None:
    """The leaf command an argument list runs (the common options before it take no value)."""
    words = tuple(w for w in argv if not w.startswith("-"))
    return next((words[:n] for n in range(len(words), 0, -1) if words[:n] in leaves), None)


def pytest_sessionfinish(session) -> None:
    """Under pytest-xdist the tests run in worker processes: each worker hands its recorded calls
    to the controller (``workeroutput``), which merges them in :func:`pytest_testnodedown`."""
    config = session.config
    if config.getoption("--cli-coverage", default=False) and hasattr(config, "workeroutput"):
        config.workeroutput["navigator_cli_calls"] = _CLI_CALLS


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # pytest-xdist controller: a worker finished
    _CLI_CALLS.extend(getattr(node, "workeroutput", {}).get("navigator_cli_calls", []))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not config.getoption("--cli-coverage", default=False) or hasattr(config, "workeroutput"):
        return
    leaves = cli_leaf_commands()
    run = {command_path(argv, leaves) for argv in _CLI_CALLS} - {None}
    missing = sorted(" ".join(c) for c in leaves - run)
    terminalreporter.write_line(f"CLI coverage: {len(run)} of {len(leaves)} commands run by this session's tests "
                                f"({len(_CLI_CALLS)} calls); not run: {missing or 'none'}")


@pytest.fixture
def shared_data() -> Path:
    """Path to ../shared/data (real development data); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared development data not found at {SHARED_DATA}")
    return SHARED_DATA


def write_nifti(
    path: Path,
    data: np.ndarray,
    affine: np.ndarray,
    *,
    sform_code: int = 1,
    qform_code: int = 1,
    qform_affine: np.ndarray | None = None,
    slope: float | None = None,
    inter: float | None = None,
    dtype=None,
) -> Path:
    """Write a NIfTI-1 file with explicit sform/qform codes (qform may differ from the sform)."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(data), affine)
    if dtype is not None:
        img.set_data_dtype(dtype)
    img.set_sform(affine, code=sform_code)
    img.set_qform(affine if qform_affine is None else qform_affine, code=qform_code)
    if slope is not None:
        img.header.set_slope_inter(slope, 0.0 if inter is None else inter)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    if slope is not None:  # nibabel may rescale on save; force the stored scaling we asked for
        img2 = nib.load(str(path))
        assert img2.dataobj.slope == slope, "test helper could not store scl_slope"
    return path


@pytest.fixture
def tmp_image(tmp_path) -> Callable[..., Path]:
    """Factory: ``tmp_image(data, affine=eye, name='img.nii.gz', **write_nifti options) -> Path``."""
    counter = {"n": 0}

    def make(data: np.ndarray, affine: np.ndarray | None = None, name: str | None = None, **kw) -> Path:
        counter["n"] += 1
        name = name or f"img{counter['n']}.nii.gz"
        return write_nifti(tmp_path / name, data, np.eye(4) if affine is None else affine, **kw)

    return make


def write_dicom_series(
    folder: Path,
    data: np.ndarray,
    *,
    row_dir: Sequence[float] = (1, 0, 0),
    col_dir: Sequence[float] = (0, 1, 0),
    pixel_spacing: Sequence[float] = (1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    slice_step: Sequence[float] | None = None,
    thickness: float = 2.0,
    series_uid: str | None = None,
    description: str = "test T1",
    series_number: int = 1,
    skip_slices: Sequence[int] = (),
    duplicate_slices: Sequence[int] = (),
    slope: float = 1.0,
    intercept: float = 0.0,
    repetition_time: float = 8.0,
    echo_time: float = 3.0,
    n_volumes: int = 1,
    seed: int = 0,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "M", "ND"),
) -> list[Path]:
    """Write a synthetic MR DICOM series (Explicit VR Little Endian, int16, one file per slice).

    ``data`` is (columns, rows, slices[, volumes]) in navigator voxel order: voxel (i, j, k) lies at
    LPS ``origin + i*pixel_spacing[1]*row_dir + j*pixel_spacing[0]*col_dir + k*slice_step``
    (DICOM PixelSpacing is [row spacing, column spacing]); ``slice_step`` defaults to
    ``thickness`` along row_dir x col_dir. Files are named in a shuffled order.
    """
    import pydicom
    from pydicom.uid import MRImageStorage, generate_uid

    from dicom_variants import dicom_dataset

    folder.mkdir(parents=True, exist_ok=True)
    row_dir = np.asarray(row_dir, float)
    col_dir = np.asarray(col_dir, float)
    step = np.cross(row_dir, col_dir) * thickness if slice_step is None else np.asarray(slice_step, float)
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid(entropy_srcs=["navigator-test-study"])
    frame_uid = generate_uid(entropy_srcs=["navigator-test-frame"])
    data = np.asarray(data)
    if data.ndim == 3:
        data = data[..., None]
    n_slices = data.shape[2]
    entries = []
    for t in range(n_volumes if data.shape[3] == 1 else data.shape[3]):
        for k in range(n_slices):
            if k in skip_slices:
                continue
            for copy in range(2 if k in duplicate_slices else 1):
                entries.append((t, k, copy))
    rng = np.random.default_rng(seed)
    names = rng.permutation(len(entries))
    paths = []
    for n, (t, k, copy) in enumerate(entries):
        vol = data[..., min(t, data.shape[3] - 1)]
        stored = np.round((vol[:, :, k].T - intercept) / slope).astype(np.int16)  # (rows, cols)
        ds = dicom_dataset(MRImageStorage, generate_uid())
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = "MR"
        ds.SeriesDescription = description
        ds.SeriesNumber = series_number
        ds.InstanceNumber = n_slices * t + k + 1
        ds.AcquisitionNumber = t + 1
        ds.PatientName = "Phantom^Test"
        ds.PatientID = "TEST"
        ds.ImageType = list(image_type)
        ds.ImagePositionPatient = [f"{v:.6f}" for v in (np.asarray(origin, float) + k * step)]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [f"{pixel_spacing[0]:g}", f"{pixel_spacing[1]:g}"]
        ds.SliceThickness = f"{thickness:g}"
        ds.RepetitionTime = f"{repetition_time:g}"
        ds.EchoTime = f"{echo_time:g}"
        ds.RescaleSlope = f"{slope:g}"
        ds.RescaleIntercept = f"{intercept:g}"
        ds.Rows, ds.Columns = stored.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.PixelData = stored.astype("<i2").tobytes()
        path = folder / f"IM{names[n]:04d}.dcm"
        ds.save_as(str(path), enforce_file_format=True)
        paths.append(path)
    assert pydicom.dcmread(str(paths[0])).pixel_array.shape == data.shape[1::-1]
    return paths


@pytest.fixture
def tmp_dicom_series() -> Callable[..., list[Path]]:
    """Factory ``tmp_dicom_series(folder, data, **options)``; see :func:`write_dicom_series`."""
    return write_dicom_series


@pytest.fixture()
def empty_window(qapp, tmp_path):
    """The app's main window with no subject, dialogs answered from ``dialogs.ANSWERS`` /
    ``dialogs.FILE_ANSWERS`` (non-blocking), its settings in ``tmp_path``; closed afterwards.
    Needs PyQt6 and pytest-qt (modules using it skip without them)."""
    from PyQt6.QtCore import QSettings

    from navigator.gui import dialogs
    from navigator.gui.app import create_app
    from navigator.gui.main_window import MainWindow

    dialogs.NON_BLOCKING = True
    create_app()
    w = MainWindow(QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat))
    w.show()
    yield w
    if dialogs.LAST_FILE_OFFER is not None:
        dialogs.LAST_FILE_OFFER.close()
    w.close()
    dialogs.NON_BLOCKING = False
    dialogs.ANSWERS.clear()
    dialogs.FILE_ANSWERS.clear()
