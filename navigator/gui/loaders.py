"""Qt-free loading helpers run on worker threads: workspace display data, simulation results.

Everything here returns plain records of numpy arrays so the UI thread only has to hand
them to the views.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.errors import InputError, NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.surface import Surface
from navigator.core.volume import Volume
from navigator.core.workspace import MANIFEST_NAME, Workspace

log = logging.getLogger("navigator.gui")

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".mgz", ".img", ".hdr", ".nrrd", ".nhdr", ".mha", ".mhd")


def ras_volume(vol: Volume) -> Volume:
    """The volume with its first three axes permuted/flipped to the closest RAS order (no
    resampling): array axis 0 increases to the right, 1 anterior, 2 superior."""
    from navigator.io.images import reorient_to_ras

    data, affine, _ = reorient_to_ras(np.asarray(vol.data), vol.affine)
    return Volume(np.ascontiguousarray(data), affine, source=vol.source, meta=dict(vol.meta))


def resample_to(vol: Volume, grid: Volume, order: int = 0) -> np.ndarray:
    """``vol`` sampled on the voxel centres of ``grid`` (3-D scalar data; 0 outside)."""
    data = np.asarray(vol.data)
    if data.ndim == 4:
        data = np.linalg.norm(data, axis=3) if data.shape[3] == 3 else data[..., 0]
    if data.shape == grid.shape and np.allclose(vol.affine, grid.affine, atol=1e-4):
        return data
    from scipy.ndimage import map_coordinates

    m = np.linalg.inv(vol.affine) @ grid.affine
    ijk = np.indices(grid.shape, dtype=np.float32).reshape(3, -1)
    src = m[:3, :3] @ ijk + m[:3, 3:4]
    out = map_coordinates(np.asarray(data, np.float32), src, order=order, mode="constant", cval=0.0)
    return out.reshape(grid.shape)


@dataclass
class SubjectData:
    """What the views show of one subject (all world RAS mm)."""

    ws: Workspace | None
    image: Volume | None  # RAS-ordered T1 (or the opened image)
    labels: np.ndarray | None = None  # on the image grid
    scalp: Surface | None = None
    cortex: Surface | None = None
    fiducials: dict[str, np.ndarray] = field(default_factory=dict)
    eeg: dict[str, np.ndarray] = field(default_factory=dict)
    #: the 10-05 cap positions (a superset of the 10-10 names; ``targets/eeg_caps/EEG10-05.csv``),
    #: so that electrodes an optimizer put on the 10-05 cap keep their names in the montage editor
    eeg_1005: dict[str, np.ndarray] = field(default_factory=dict)
    has_mesh: bool = False
    has_transform: bool = False
    messages: list[str] = field(default_factory=list)
    #: the segmentation's QC (``labels/qc/segmentation_qc.json``: verdict, warnings, volumes) and
    #: its report figure; None when the workspace has no segmentation of its own
    qc: dict[str, Any] | None = None
    qc_png: Path | None = None
    ctx: Any = None  # navigator.targets.head.Head, warmed up on the worker thread


def _stored_cap(ws: Workspace, system: str, messages: list[str]) -> dict[str, np.ndarray]:
    """The workspace's stored ``system`` cap (name -> subject RAS mm; empty when not stored)."""
    from navigator.targets.step import stored_cap

    try:
        cap = stored_cap(ws, system)
        return {} if cap is None else {k: np.asarray(v, float) for k, v in cap.as_dict().items()}
    except NavigatorError as exc:
        messages.append(str(exc))
        return {}


def named_positions(subject: SubjectData | None) -> dict[str, np.ndarray]:
    """Every named scalp position of the subject the montage editor accepts: the 10-10 positions
    and, where stored, the 10-05 cap's (name -> subject RAS mm; the 10-10 value wins on a name
    both hold)."""
    if subject is None:
        return {}
    return {**subject.eeg_1005, **subject.eeg}


def load_image_volume(path: str | Path) -> Volume:
    from navigator.io.images import load_image

    return ras_volume(load_image(path))


def load_subject(ws: Workspace, progress: Progress | None = None) -> SubjectData:
    """Read the workspace's T1, labels, surfaces, fiducials and EEG positions (what exists)."""
    from navigator.io.images import load_image
    from navigator.io.surfaces import read_surface

    progress = ensure_progress(progress)
    data = SubjectData(ws=ws, image=None)
    progress.update(0.05, "reading T1")
    t1_path = None
    try:
        t1_path = ws.source_path("T1")
    except NavigatorError:
        if ws.has("t1"):
            t1_path = ws.path("t1")
    if t1_path is not None and t1_path.exists():
        data.image = ras_volume(load_image(t1_path))
    if ws.has("labels"):
        progress.update(0.3, "reading labels")
        lab = load_image(ws.path("labels"))
        if data.image is None:
            data.image = ras_volume(lab.with_data(np.asarray(lab.data, np.float32)))
        data.labels = resample_to(lab, data.image, order=0).astype(np.uint8)
        from navigator.segmentation.step import QC_PNG, load_qc

        try:
            data.qc = load_qc(ws)
        except (OSError, ValueError) as exc:  # a damaged QC file must not stop the subject opening
            data.messages.append(f"segmentation QC unreadable: {exc}")
        png = ws.path("qc") / QC_PNG
        data.qc_png = png if png.exists() else None
    progress.update(0.5, "reading surfaces")
    from navigator.targets.head import Head

    head = data.ctx = Head.of(ws)  # the subject's head session: what is read here is read once
    if ws.has("scalp"):
        data.scalp = head.scalp
    if ws.has("middle_gm"):
        data.cortex = head.cortex
    elif ws.has("gm_surface"):
        data.cortex = read_surface(ws.path("gm_surface"))
    data.has_mesh = ws.has("mesh")
    from navigator.core.transforms import AFFINE_NAME

    data.has_transform = (ws.path("transforms") / AFFINE_NAME).exists()
    progress.update(0.8, "reading head coordinates")
    if ws.has("fiducials"):
        try:
            fid = head.fiducials
            data.fiducials = {(f"{k} (estimated)" if k in fid.estimated else k): np.asarray(v, float)
                              for k, v in fid.as_dict().items()}
            if fid.estimated:
                data.messages.append(
                    f"CHECK {', '.join(fid.estimated)}: estimated from the MNI template (the image has no scalp "
                    "there: defaced or cut); correct it before registering a navigation system "
                    "(navigator fiducials WORKSPACE --nasion X,Y,Z)")
        except NavigatorError as exc:
            data.messages.append(str(exc))
    if head.has_eeg:
        try:
            data.eeg = {k: np.asarray(v, float) for k, v in head.eeg.as_dict().items()}
        except NavigatorError as exc:
            data.messages.append(str(exc))
    data.eeg_1005 = _stored_cap(ws, "10-05", data.messages)
    if data.image is None and data.scalp is None:
        raise NavigatorError(f"{ws.root}: workspace holds no image and no surfaces to show")
    progress.update(0.9, "preparing target lookup")
    _ = head.transform  # loads the MNI deformation fields (large) here, not on the UI thread
    if data.scalp is not None:
        _ = head.scalp_query
    if data.cortex is not None and ws.has("middle_gm"):
        _ = head.cortex_query
    progress.update(1.0, "loaded")
    return data


def classify_path(path: str | Path) -> str:
    """What an opened path is: "workspace", "m2m", "mesh", "plan", "dicom" or "image".

    Raises InputError for paths that are none of these.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file or folder")
    if p.is_dir():
        if (p / MANIFEST_NAME).exists():
            return "workspace"
        if p.name.startswith("m2m_") or (p / "toMNI").is_dir() or any(p.glob("*.msh")):
            return "m2m"
        return "dicom"
    name = p.name.lower()
    if name.endswith(".msh"):
        return "mesh"
    if name.endswith(".json"):
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(p, f"not a valid plan JSON file ({exc})") from None
        if isinstance(d, dict) and d.get("kind") == "navigator-plan":
            return "plan"
        raise InputError(p, "JSON file is not a navigator plan (kind 'navigator-plan')")
    if name.endswith(IMAGE_SUFFIXES) or name.endswith(".dcm"):
        return "image" if not name.endswith(".dcm") else "dicom"
    raise InputError(p, "unknown file type: open a NIfTI/NRRD/MetaImage image, a DICOM folder, a subject workspace, "
                        "a SimNIBS m2m folder, a gmsh .msh head mesh or a plan.json")


def default_workspace_dir(path: str | Path) -> Path:
    """Where a workspace made from ``path`` goes by default: ``<parent>/<stem>_navigator``."""
    p = Path(path)
    stem = p.name
    for suf in (".nii.gz", *IMAGE_SUFFIXES, ".msh", ".dcm"):
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
            break
    stem = stem.removeprefix("m2m_")
    return p.parent / f"{stem or 'subject'}_navigator"


# ------------------------------------------------------------------------------ results
@dataclass
class FieldResult:
    """A simulation result ready for display.

    ``quantity`` names the map shown: "magnE" (|E|), or for temporal interference "TInormal" /
    "TImax" (:mod:`navigator.gui.ti_result`); ``maps`` holds the volume of every map the result
    offers (the shown one is ``field_volume``), ``histograms`` their grey-matter values and
    ``histogram_pngs`` their pictures, so :meth:`set_quantity` switches without reading again.
    """

    kind: str  # "tms", "tdcs", "tms-optimization", "tdcs-optimization"
    out_dir: Path | None
    summary: dict[str, Any]
    field_volume: np.ndarray | None = None  # the shown map (V/m) on the subject image grid
    cortex: Surface | None = None  # middle GM with data["magnE"] (TI: "TImax", "TInormal")
    histogram_values: np.ndarray | None = None  # map samples (V/m) for the histogram
    histogram_weights: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    key: str | None = None  # where it is stored, relative to the workspace ("simulations/tms")
    quantity: str = "magnE"
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    histograms: dict[str, tuple] = field(default_factory=dict)
    histogram_pngs: dict[str, bytes | None] = field(default_factory=dict)

    @property
    def is_ti(self) -> bool:
        return self.quantity in ("TImax", "TInormal")

    @property
    def quantities(self) -> list[str]:
        """The maps this result can show (TI: those available of TInormal, TImax)."""
        if not self.is_ti:
            return [self.quantity]
        have = set(self.maps) | set(self.histograms) | set((self.cortex.data if self.cortex is not None else {}))
        return [q for q in ("TInormal", "TImax") if q in have]

    @property
    def map_title(self) -> str:
        """Legend title of the shown map, with its unit."""
        if self.is_ti:
            from navigator.gui.ti_result import TI_TITLES

            return TI_TITLES[self.quantity]
        return "E magnitude (V/m)"

    @property
    def short_name(self) -> str:
        if self.is_ti:
            from navigator.gui.ti_result import TI_SHORT

            return TI_SHORT[self.quantity]
        return "|E|"

    @property
    def cortex_values(self) -> np.ndarray | None:
        """Per-vertex values of the shown map on the cortex (None without a cortex map)."""
        if self.cortex is None:
            return None
        v = self.cortex.data.get(self.quantity)
        return None if v is None else np.asarray(v, float)

    def set_quantity(self, quantity: str) -> None:
        """Show another of :attr:`quantities` (volume, histogram and its picture switch)."""
        if quantity not in self.quantities:
            raise NavigatorError(f"this result has no {quantity} map (it has {', '.join(self.quantities)})")
        self.quantity = quantity
        if self.maps:
            self.field_volume = self.maps.get(quantity)
        self.histogram_values, self.histogram_weights = self.histograms.get(quantity, (None, None))
        if quantity in self.histogram_pngs:
            self.extra["histogram_png"] = self.histogram_pngs[quantity]

    @property
    def peak(self) -> float | None:
        s = self.summary
        if self.quantity == "TInormal":
            v = (s.get("middle_gm") or {}).get("TInormal_p99_9_V_per_m")
            return None if v is None else float(v)
        keys = ("TImax_gm_p99_9_V_per_m", "TImax_roi_p99_9_V_per_m") if self.quantity == "TImax" else \
            ("E_gm_p99_9_V_per_m", "E_roi_p99_9_V_per_m")
        for k in keys:
            if s.get(k) is not None:
                return float(s[k])
        return None

    @property
    def target_field(self) -> float | None:
        """Mean of the shown map in the target sphere (V/m; TI normal: over the cortex vertices in it)."""
        t = self.summary.get("target") or {}
        key = {"TInormal": "mean_TInormal_V_per_m", "TImax": "mean_TImax_V_per_m"}.get(self.quantity,
                                                                                      "mean_magnE_V_per_m")
        v = t.get(key)
        return None if v is None else float(v)

    @property
    def focality(self) -> dict[str, float]:
        return {k: float(v) for k, v in (self.summary.get("focality_mm3") or {}).items()}


def load_field_result(kind: str, out_dir: str | Path, grid: Volume | None,
                      progress: Progress | None = None, extra: dict[str, Any] | None = None,
                      ti_quantity: str | None = None) -> FieldResult:
    """Read a simulation folder (summary.json, magnE.nii.gz, middle_gm_fields.surf.gii, fields.msh).

    A temporal-interference folder gives its envelope maps (:mod:`navigator.gui.ti_result`);
    ``ti_quantity`` ("TInormal" | "TImax") is the one shown first (default: along the normal
    when the folder has a cortex map)."""
    from navigator.io.images import load_image
    from navigator.io.surfaces import read_surface

    progress = ensure_progress(progress)
    out = Path(out_dir)
    sp = out / "summary.json"
    if not sp.exists():
        raise InputError(out, "not a simulation folder (no summary.json)")
    summary = json.loads(sp.read_text(encoding="utf-8"))
    res = FieldResult(kind, out, summary, extra=dict(extra or {}))
    if summary.get("stimulus") == "ti":
        from navigator.gui.ti_result import load_ti_maps

        ti = load_ti_maps(out, grid, progress)
        res.cortex, res.maps, res.histograms = ti["cortex"], ti["volumes"], ti["histograms"]
        res.quantity = "TImax"  # a TI result (see quantities)
        available = res.quantities
        if not available:
            raise InputError(out, "temporal-interference folder without envelope maps (fields.msh or middle_gm_fields.surf.gii)")
        want = ti_quantity if ti_quantity in available else available[0]
        res.set_quantity(want)
        return res
    progress.update(0.3, "reading |E| map")
    if grid is not None and (out / "magnE.nii.gz").exists():
        res.field_volume = resample_to(load_image(out / "magnE.nii.gz"), grid, order=1).astype(np.float32)
    if (out / "middle_gm_fields.surf.gii").exists():
        res.cortex = read_surface(out / "middle_gm_fields.surf.gii")
    progress.update(0.5, "field histogram")
    if (out / "fields.msh").exists():
        from navigator.core.tissues import GM
        from navigator.io.gmsh import read_msh

        m = read_msh(out / "fields.msh")
        magn = m.tet_data.get("magnE")
        if magn is not None and grid is not None and res.field_volume is None:
            # no volume map written (the default): sample |E| on the display grid in memory
            progress.update(0.7, "sampling |E| on the image grid")
            res.field_volume = tets_on_grid(m, np.asarray(magn, float), grid)
        if magn is not None:
            sel = m.tet_tags == GM if np.any(m.tet_tags == GM) else np.ones(m.n_tets, bool)
            res.histogram_values = np.asarray(magn)[sel]
            res.histogram_weights = np.abs(m.tet_volumes()[sel])
    elif res.cortex is not None and "magnE" in res.cortex.data:
        res.histogram_values = np.asarray(res.cortex.data["magnE"])
    progress.update(1.0, "result loaded")
    return res


def tets_on_grid(mesh, tet_values: np.ndarray, grid: Volume) -> np.ndarray:
    """Per-tetrahedron values sampled at the voxel centres of ``grid`` (0 outside the mesh),
    float32, without writing a file (:mod:`navigator.fem.sampling`)."""
    from navigator.fem.sampling import fill_voxels, rasterize_tets

    shape = tuple(int(v) for v in grid.shape[:3])
    flat, tet, bary = rasterize_tets(mesh, np.asarray(grid.affine, float), shape, None)
    out = np.zeros((int(np.prod(shape)), 1), np.float32)
    v_out = np.zeros(int(np.prod(shape)), np.float32)
    fill_voxels(flat, tet, bary, np.ascontiguousarray(mesh.tetrahedra, dtype=np.int64),
                np.ascontiguousarray(tet_values.reshape(-1, 1), dtype=np.float64),
                np.zeros(0, np.float64), out, v_out)
    return out[:, 0].reshape(shape)
