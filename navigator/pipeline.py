"""The preparation pipeline: image -> workspace -> labels -> head mesh -> head coordinates.

`prepare` creates (or reopens) a subject workspace and runs every preparation stage in order,
skipping stages that are current (same inputs and parameters, outputs unchanged; see
:meth:`navigator.core.workspace.Workspace.step_is_current`). On request it skips segmentation
when the workspace's labels were given by their source (a sample subject, an imported head
model). Each stage is a step of the workspace step protocol (:mod:`navigator.core.steps`:
``stage(ws, *, progress=None, force=False, **params) -> bool``, True when it ran), declared
here from the function its package owns; :data:`PREPARE` is the whole preparation as one step
(the first step of a batch subject and of ``navigator demo``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from navigator.core.errors import NavigatorError, WorkspaceError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.steps import Step
from navigator.core.workspace import MANIFEST_NAME, Workspace
from navigator.meshing.step import mesh_workspace
from navigator.segmentation.step import segment_workspace
from navigator.targets.step import head_coordinates_workspace

if TYPE_CHECKING:
    from navigator.io.dicom import DicomSeries

log = logging.getLogger("navigator")


#: the preparation stages in order, with their shares of the progress bar
STAGES: list[Step] = [
    Step("segment", segment_workspace, "tissue segmentation and MNI registration", weight=0.55),
    Step("mesh", mesh_workspace, "tetrahedral head mesh and surfaces", weight=0.35),
    Step("head-coordinates", head_coordinates_workspace, "fiducials and EEG 10-10 positions", weight=0.10),
]


@dataclass
class PrepareReport:
    """What `prepare` did: per stage, 'ran' or 'skipped' (current) and seconds."""

    workspace: Path
    stages: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class _DicomExam:
    """The DICOM folder the T1 is read from, listed at most once for every series taken from it
    (the T1, and a T2 or INV2 given as the same folder). ``folder`` None: the T1 is not a folder."""

    def __init__(self, image: str | Path) -> None:
        self.folder = Path(image) if Path(image).is_dir() else None
        self._listing: list[DicomSeries] | None = None

    def holds(self, path: str | Path | None) -> bool:
        """Whether ``path`` is this exam's folder."""
        return self.folder is not None and path is not None and Path(path).resolve() == self.folder.resolve()

    def listing(self) -> list[DicomSeries]:
        from navigator.io import dicom

        if self._listing is None:
            self._listing = dicom.list_dicom_series(self.folder)
        return self._listing

    def pick(self, series: str | DicomSeries | None, weighting: str | None) -> DicomSeries:
        """The series (UID, number, already listed, or None: the only one of ``weighting``)."""
        from navigator.io import dicom

        if isinstance(series, dicom.DicomSeries):
            return series
        return dicom.select_series(self.folder, series, weighting, listing=self.listing())

    def inv2_of(self, t1_volume: Any) -> DicomSeries | None:
        """The exam's INV2 series when the T1 taken from it is a raw MP2RAGE uniform image
        (logged), else None."""
        from navigator.io import dicom

        desc = str(t1_volume.meta.get("series_description") or "")
        if self.folder is None or not dicom.is_raw_mp2rage_uni(desc):
            return None
        found = dicom.mp2rage_inv2_of(self.listing(), desc)
        if found is not None:
            log.warning("%s: the T1 is the MP2RAGE uniform image %r; using the exam's second inversion %s "
                        "(choose another with --inv2 and --inv2-series)", self.folder, desc, found.summary())
        return found


def create_workspace_from_image(
    image: str | Path,
    out_dir: str | Path,
    *,
    t2: str | Path | None = None,
    subject_id: str | None = None,
    series: str | DicomSeries | None = None,
    t2_series: str | DicomSeries | None = None,
    inv2: str | Path | None = None,
    inv2_series: str | DicomSeries | None = None,
) -> Workspace:
    """Create a workspace from a T1 (NIfTI file or DICOM folder), or reopen it if it exists.

    A DICOM folder holding a whole exam gives the series ``series`` (UID or series number, or the
    :class:`navigator.io.dicom.DicomSeries` the caller already listed), or without it its only
    3-D T1-weighted series (``t2_series`` / 3-D T2-weighted for ``t2``).
    ``inv2`` is the second inversion of an MP2RAGE whose UNI image is the T1 (written to
    ``input/INV2.nii.gz``, source "INV2"; from a DICOM exam its series ``inv2_series``); the
    segmentation combines the two (:mod:`navigator.segmentation.mp2rage`). A raw MP2RAGE uniform
    image taken from a DICOM exam without ``inv2`` gets the exam's INV2 series
    (:func:`navigator.io.dicom.mp2rage_inv2_of`); ``inv2_series`` without ``inv2`` is a series
    of the same exam.

    The image is loaded (reoriented to RAS without resampling) and written to
    ``input/T1.nii.gz``. Reopening a workspace whose recorded T1 came from a *different* image
    is an error: a workspace holds one subject. Given the workspace's own ``input/T1.nii.gz``
    the workspace is returned as it is.
    """
    from navigator.core.atomic import sha256_file
    from navigator.io.images import load_image, save_nifti

    out_dir = Path(out_dir)
    if t2 is None and inv2 is None and (out_dir / MANIFEST_NAME).exists():
        ws = Workspace.open(out_dir)
        if "T1" in ws.sources() and Path(image).resolve() == ws.source_path("T1").resolve():
            return ws  # the workspace's own T1 (e.g. `demo` on the sample it wrote): nothing to load or compare
    exam = _DicomExam(image)
    if exam.folder is not None:
        series = exam.pick(series, "T1")
    t1_volume = load_image(image, series_uid=series, dicom_weighting="T1")
    if inv2 is None and inv2_series is not None and exam.folder is not None:
        inv2 = image  # --inv2-series alone: a series of the same exam
    elif inv2 is None:
        inv2_series = exam.inv2_of(t1_volume)
        inv2 = image if inv2_series is not None else None
    if exam.holds(inv2):
        inv2_series = exam.pick(inv2_series, None)
    if inv2 is not None:  # checked before anything is written: the error names the user's file
        from navigator.segmentation.mp2rage import check_inv2

        inv2_volume = load_image(inv2, series_uid=inv2_series)
        check_inv2(t1_volume, inv2_volume, inv2)
    if (out_dir / MANIFEST_NAME).exists():
        ws = Workspace.open(out_dir)
        existing = ws.sources().get("T1")
        if existing is not None:
            import numpy as np

            from navigator.io.images import load_image as _load

            current = _load(ws.source_path("T1"))
            same = (current.shape == t1_volume.shape and np.allclose(current.affine, t1_volume.affine, atol=1e-5)
                    and np.array_equal(np.asarray(current.data), np.asarray(t1_volume.data)))
            if not same:
                raise WorkspaceError(
                    f"{out_dir}: this workspace was prepared from another T1 ({existing.get('original')}); "
                    "use a new output folder"
                )
            log.info("reusing workspace %s", out_dir)
        else:
            _add_image(ws, "T1", "t1", t1_volume, image, save_nifti)
    else:
        ws = Workspace.create(out_dir, subject_id=subject_id)
        _add_image(ws, "T1", "t1", t1_volume, image, save_nifti)
    if t2 is not None:
        if exam.holds(t2):
            t2_series = exam.pick(t2_series, "T2")
        t2_volume = load_image(t2, series_uid=t2_series, dicom_weighting="T2")
        src = ws.sources().get("T2")
        tmp_hash = None
        if src is not None:
            tmp_hash = src["sha256"]
        _add_image(ws, "T2", "t2", t2_volume, t2, save_nifti)
        if tmp_hash is not None and tmp_hash != sha256_file(ws.path("t2")):
            log.warning("T2 image replaced; steps that used it will run again")
    if inv2 is not None:
        before = (ws.sources().get("INV2") or {}).get("sha256")
        _add_image(ws, "INV2", "inv2", inv2_volume, inv2, save_nifti)
        if before is not None and before != sha256_file(ws.path("inv2")):
            log.warning("INV2 image replaced; steps that used it will run again")
    return ws


def labels_given(ws: Workspace) -> str | None:
    """Where the workspace's tissue labels came from when they were given rather than
    segmented (step "labels" recorded by a sample or an importer, no "segment" step); else None."""
    record = ws.step("labels")
    if record is None or ws.step("segment") is not None or not ws.has("labels"):
        return None
    return str(record.parameters.get("source") or record.parameters.get("generator") or "another source")


def _add_image(ws: Workspace, role: str, key: str, volume, original, save_nifti) -> None:
    save_nifti(volume, ws.path(key))
    ws.add_source(role, ws.path(key), original=Path(original).resolve())


def prepare(
    ws: Workspace,
    *,
    progress: Progress | None = None,
    force: bool = False,
    stop_after: str | None = None,
    stage_params: dict[str, dict] | None = None,
    use_given_labels: bool = False,
) -> PrepareReport:
    """Run every preparation stage on ``ws`` in order; current stages are skipped.

    ``stage_params`` maps a stage name to keyword parameters for it (e.g.
    ``{"mesh": {"cell_size_mm": 5.0}}``); they are recorded in the manifest like the defaults.
    ``use_given_labels`` meshes the labels the workspace was given (:func:`labels_given`)
    instead of segmenting the T1; an error when it has none.
    """
    stage_params = stage_params or {}
    unknown = set(stage_params) - {s.name for s in STAGES}
    if unknown:
        raise NavigatorError(f"unknown preparation stage(s) {', '.join(sorted(unknown))}; "
                             f"stages: {', '.join(s.name for s in STAGES)}")
    progress = ensure_progress(progress)
    report = PrepareReport(workspace=ws.root)
    names = [s.name for s in STAGES]
    if stop_after is not None and stop_after not in names:
        raise NavigatorError(f"unknown stage {stop_after!r}; stages: {', '.join(names)}")
    total = sum(s.weight for s in STAGES)
    done = 0.0
    given = labels_given(ws) if use_given_labels else None
    if use_given_labels and given is None:
        raise NavigatorError(f"{ws.root}: no given tissue labels (a sample's or an imported model's) to mesh; "
                             "leave out --use-labels to segment the T1")
    for stage in STAGES:
        sub = progress.sub(done / total, (done + stage.weight) / total, stage.name)
        t0 = time.perf_counter()
        if stage.run is segment_workspace and given is not None:
            log.info("%s: labels given by %s; not segmenting", ws.root, given)
            report.stages[stage.name] = f"skipped (labels given: {given})"
            ran = False
        else:
            ran = stage.run(ws, progress=sub, force=force, **stage_params.get(stage.name, {}))
            report.stages[stage.name] = "ran" if ran else "skipped (current)"
        report.seconds[stage.name] = time.perf_counter() - t0
        done += stage.weight
        if stage.name == stop_after:
            break
    progress.update(1.0, "done")
    return report


def prepare_step(ws: Workspace, *, progress: Progress | None = None, force: bool = False, use_labels: bool = False,
                 **stage_params: dict[str, Any]) -> bool:
    """:func:`prepare` as one step (:mod:`navigator.core.steps` protocol); True when a stage ran.

    ``stage_params`` maps a stage name to its parameters (``mesh={"cell_size_mm": 6.0}``; the
    ``[prepare.mesh]`` section of a batch TOML); ``use_labels`` meshes the labels the workspace
    was given instead of segmenting its T1.
    """
    report = prepare(ws, progress=progress, force=force, stage_params=stage_params, use_given_labels=use_labels)
    return any(v == "ran" for v in report.stages.values())


def prepare_numbers(ws: Workspace) -> dict[str, float]:
    """``prepare_<stage>_s``: the seconds each stage took when it last ran (its manifest record)."""
    out = {}
    for stage in STAGES:
        record = ws.step(stage.record_name)
        if record is not None and record.seconds is not None:
            out[f"prepare_{stage.name}_s"] = round(float(record.seconds), 2)
    return out


PREPARE = Step("prepare", prepare_step, "segmentation and MNI registration, head mesh, fiducials and EEG positions",
               outputs=("mesh/head.msh",), numbers=prepare_numbers)
