"""Triangle surface files: GIFTI (read/write), meshio formats and FreeSurfer (read).

* GIFTI ``.gii`` / ``.surf.gii``: a NIFTI_INTENT_POINTSET array (float32 vertices, world RAS
  mm, coordinate system scanner) and a NIFTI_INTENT_TRIANGLE array (int32 faces); each entry of
  ``Surface.data`` is an extra float32 array with intent NIFTI_INTENT_NONE (NIFTI_INTENT_VECTOR
  for (N, C) data) and its name in the array's ``Name`` meta entry.
* ``.stl``, ``.ply``, ``.obj``, ``.vtk``, ``.vtu``, ``.off``: read through meshio (triangles
  only; point data with one value per vertex is kept).
* FreeSurfer surfaces (``lh.pial``, ``rh.white``, ``*.inflated``...): coordinates are
  tkregister RAS; with ``reference`` (the subject's ``orig.mgz``/``T1.mgz`` or any image on the
  same conformed grid) they are converted to scanner RAS with vox2ras @ inv(vox2ras-tkr);
  without one, the ``cras`` stored in the file (newer FreeSurfer) is added, else a warning says
  the coordinates stay in tkRAS.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_path
from navigator.core.errors import InputError
from navigator.core.surface import Surface

log = logging.getLogger(__name__)

MESHIO_SUFFIXES = (".stl", ".ply", ".obj", ".vtk", ".vtu", ".off")
FREESURFER_SUFFIXES = (".pial", ".white", ".inflated", ".sphere", ".orig", ".smoothwm", ".reg", ".central", ".mid")


def read_surface(path: str | Path, reference: str | Path | None = None) -> Surface:
    """Read a triangle surface; see the module docstring for formats and frames.

    Args:
        path: surface file.
        reference: for FreeSurfer surfaces only, an image on the FreeSurfer conformed grid
            used to convert tkRAS to scanner RAS.
    Returns:
        :class:`Surface` in world RAS mm.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    name = path.name.lower()
    try:
        if name.endswith(".gii"):
            return _read_gifti(path)
        if name.endswith(MESHIO_SUFFIXES):
            return _read_meshio(path)
        return _read_freesurfer(path, reference)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes a one-line message
        raise InputError(path, f"cannot read surface ({type(exc).__name__}: {exc})") from None


def _read_gifti(path: Path) -> Surface:
    import nibabel as nib

    img = nib.load(str(path))
    if not isinstance(img, nib.gifti.GiftiImage):
        raise InputError(path, "not a GIFTI file")
    points = img.get_arrays_from_intent("NIFTI_INTENT_POINTSET")
    tris = img.get_arrays_from_intent("NIFTI_INTENT_TRIANGLE")
    if not points or not tris:
        raise InputError(path, "GIFTI file holds no surface (needs POINTSET and TRIANGLE arrays)")
    vertices = np.asarray(points[0].data, np.float64)
    xform = _gifti_xform(points[0])
    if xform is not None:
        vertices = vertices @ xform[:3, :3].T + xform[:3, 3]
    faces = np.asarray(tris[0].data, np.int64)
    data = {}
    for i, da in enumerate(img.darrays):
        if da is points[0] or da is tris[0]:
            continue
        key = da.meta.get("Name") if da.meta is not None else None
        data[key or f"data{i}"] = np.asarray(da.data)
    _check_faces(path, vertices, faces)
    return Surface(vertices, faces, data)


def _gifti_xform(da) -> np.ndarray | None:
    """The point set's transform to scanner space when it is not the identity."""
    cs = getattr(da, "coordsys", None)
    if cs is None or cs.xform is None:
        return None
    x = np.asarray(cs.xform, np.float64)
    if x.shape != (4, 4) or np.allclose(x, np.eye(4)):
        return None
    if cs.dataspace == cs.xformspace:
        return None
    return x


def _read_meshio(path: Path) -> Surface:
    import meshio

    m = meshio.read(str(path))
    faces = [c.data for c in m.cells if c.type == "triangle"]
    if not faces:
        raise InputError(path, "file holds no triangles")
    faces = np.concatenate(faces).astype(np.int64)
    used = np.unique(faces)
    vertices = np.asarray(m.points, np.float64)[:, :3] if m.points.shape[1] >= 3 else np.column_stack(
        [m.points, np.zeros(len(m.points))])
    data = {k: np.asarray(v) for k, v in m.point_data.items() if len(v) == len(vertices)}
    if len(used) < len(vertices):  # drop points no triangle uses (e.g. lines or vertex cells)
        remap = np.full(len(vertices), -1, np.int64)
        remap[used] = np.arange(len(used))
        vertices, faces = vertices[used], remap[faces]
        data = {k: v[used] for k, v in data.items()}
    _check_faces(path, vertices, faces)
    return Surface(vertices, faces, data)


def _read_freesurfer(path: Path, reference: str | Path | None) -> Surface:
    import nibabel as nib

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="(Unknown extension code|No volume information)")
            vertices, faces, meta = nib.freesurfer.read_geometry(str(path), read_metadata=True)
    except Exception:
        raise InputError(path, "unknown surface format (expected .gii, "
                         f"{', '.join(MESHIO_SUFFIXES)} or a FreeSurfer surface)") from None
    vertices = np.asarray(vertices, np.float64)
    if reference is not None:
        m = tkr_to_scanner(reference)
        vertices = vertices @ m[:3, :3].T + m[:3, 3]
    elif meta and "cras" in meta:
        vertices = vertices + np.asarray(meta["cras"], np.float64)
        log.info("%s: tkRAS converted to scanner RAS with the file's c_ras", path)
    else:
        warnings.warn(f"{path}: FreeSurfer surface left in tkregister RAS (no reference image and no "
                      "c_ras in the file); pass the subject's orig.mgz to get scanner coordinates",
                      stacklevel=3)
    faces = np.asarray(faces, np.int64)
    _check_faces(path, vertices, faces)
    return Surface(vertices, faces)


def tkr_to_scanner(reference: str | Path) -> np.ndarray:
    """4x4 matrix taking FreeSurfer tkregister RAS to scanner RAS for an image's grid.

    vox2ras-tkr is FreeSurfer's convention for conformed volumes (LIA, centre of the grid at
    the origin): [[-dx,0,0,dx*nx/2],[0,0,dz,-dz*nz/2],[0,-dy,0,dy*ny/2]].
    """
    import nibabel as nib

    img = nib.load(str(reference))
    if hasattr(img.header, "get_vox2ras_tkr"):
        tkr = np.asarray(img.header.get_vox2ras_tkr(), np.float64)
    else:
        d = np.asarray(img.header.get_zooms()[:3], np.float64)
        n = np.asarray(img.shape[:3], np.float64)
        tkr = np.array([[-d[0], 0, 0, d[0] * n[0] / 2], [0, 0, d[2], -d[2] * n[2] / 2],
                        [0, -d[1], 0, d[1] * n[1] / 2], [0, 0, 0, 1]])
    return np.asarray(img.affine, np.float64) @ np.linalg.inv(tkr)


def _check_faces(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise InputError(path, "faces are not triangles")
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise InputError(path, "faces refer to vertices that do not exist")


def write_surface(surface: Surface, path: str | Path) -> Path:
    """Write ``surface`` as GIFTI (``.gii``/``.surf.gii``), atomically; returns ``path``.

    Vertices are stored as float32 world RAS mm (sub-micrometre rounding), faces as int32,
    and each ``surface.data`` entry as a named float32 data array.
    """
    import nibabel as nib
    from nibabel.gifti import GiftiCoordSystem, GiftiDataArray, GiftiImage, GiftiMetaData

    path = Path(path)
    if not path.name.lower().endswith(".gii"):
        raise InputError(path, "surfaces are written as GIFTI: use a .surf.gii file name")
    coord = GiftiCoordSystem(dataspace="NIFTI_XFORM_SCANNER_ANAT", xformspace="NIFTI_XFORM_SCANNER_ANAT",
                             xform=np.eye(4))
    arrays = [
        GiftiDataArray(np.asarray(surface.vertices, np.float32), intent="NIFTI_INTENT_POINTSET",
                       datatype="NIFTI_TYPE_FLOAT32", coordsys=coord,
                       meta=GiftiMetaData({"AnatomicalStructurePrimary": "Unknown"})),
        GiftiDataArray(np.asarray(surface.faces, np.int32), intent="NIFTI_INTENT_TRIANGLE",
                       datatype="NIFTI_TYPE_INT32"),
    ]
    for name, values in surface.data.items():
        values = np.asarray(values)
        if len(values) != len(surface.vertices):
            raise ValueError(f"surface data {name!r} has {len(values)} values for {len(surface.vertices)} vertices")
        arrays.append(GiftiDataArray(values.astype(np.float32),
                                     intent="NIFTI_INTENT_VECTOR" if values.ndim == 2 else "NIFTI_INTENT_NONE",
                                     datatype="NIFTI_TYPE_FLOAT32", meta=GiftiMetaData({"Name": str(name)})))
    img = GiftiImage(darrays=arrays)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path
