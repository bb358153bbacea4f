"""SimNIBS 4 ``.tcd`` coil definition files (JSON).

Read: ``name``, ``brand``, ``stimulatorList`` (``maxdIdt`` in A/s), ``coilModels`` (casing
surfaces: ``points`` mm, ``faces``), ``coilCasing``/``elementCasing`` indices,
``coilElementList`` with type 1 (dipoles: ``points`` mm, ``values`` A m^2), type 2 (line
segments: ``points`` = start mm, ``values`` = segment vector mm, unit current) and type 3
(sampled vector potential: ``data`` (X, Y, Z, 3) T m per A and ``affine`` mm), and
``deformList``/``deformRangeList`` (element translations ``x``/``y``/``z`` in mm and
rotations ``rot2p`` in degrees about the axis ``point1`` -> ``point2``), applied at their
``initial`` values.

Array fields are either JSON lists or base64 strings of zlib-compressed float64 (int64 for
faces) bytes. SimNIBS stores *binary* type-3 grids as a base64 zlib **pickle**; unpickling
untrusted data can run arbitrary code, so this reader decodes that blob with a restricted
unpickler that only accepts a plain numeric numpy array (no other classes or callables can
be loaded) and refuses anything else.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.atomic import atomic_write_json
from navigator.core.errors import InputError
from navigator.core.surface import Surface
from navigator.tms.coil import Coil, GridField

_ALLOWED_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can only build numpy arrays/dtypes; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a coil file")


def safe_unpickle_array(blob: bytes) -> np.ndarray:
    """Decode a pickled numeric numpy array without executing arbitrary code.

    Raises:
        ValueError: the pickle references anything but numpy array reconstruction, or the
            result is not a numeric (non-object) array.
    """
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(blob)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"unsafe or invalid pickled array ({exc})") from None
    if not isinstance(obj, np.ndarray) or obj.dtype.kind not in "fiu":
        raise ValueError("pickled coil data is not a numeric array")
    return obj


def _array(value: Any, path: Path, what: str, dtype=np.float64, cols: int | None = 3) -> np.ndarray:
    if isinstance(value, str):
        try:
            raw = zlib.decompress(base64.b64decode(value, validate=True))
        except (binascii.Error, zlib.error, ValueError):
            raise InputError(path, f"{what}: not valid base64/zlib data") from None
        if len(raw) % np.dtype(dtype).itemsize:
            raise InputError(path, f"{what}: byte length is not a multiple of {np.dtype(dtype).itemsize}")
        arr = np.frombuffer(raw, dtype=dtype).copy()
    else:
        try:
            arr = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError):
            raise InputError(path, f"{what}: not a numeric array") from None
    if cols is not None:
        if arr.size % cols:
            raise InputError(path, f"{what}: expected rows of {cols} numbers")
        arr = arr.reshape(-1, cols)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(path, f"{what}: non-finite values")
    return arr


def _deformation_matrix(d: dict, ranges: list, path: Path) -> np.ndarray:
    initial = d.get("initial")
    if initial is None and "deformRange" in d:
        try:
            initial = ranges[int(d["deformRange"])]["initial"]
        except (IndexError, KeyError, TypeError, ValueError):
            raise InputError(path, f"deformation refers to a missing deformRange {d.get('deformRange')!r}") from None
    initial = float(initial or 0.0)
    kind = d.get("type")
    m = np.eye(4)
    if kind in ("x", "y", "z"):
        m[{"x": 0, "y": 1, "z": 2}[kind], 3] = initial
        return m
    if kind == "rot2p":
        p1 = np.asarray(d["point1"], float)
        p2 = np.asarray(d["point2"], float)
        axis = p2 - p1
        if np.linalg.norm(axis) == 0:
            raise InputError(path, "rot2p deformation with identical points")
        axis = axis / np.linalg.norm(axis)
        a = math.radians(initial)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        r = np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k
        m[:3, :3] = r
        m[:3, 3] = p1 - r @ p1
        return m
    raise InputError(path, f"unknown deformation type {kind!r}")


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:3, :3].T + m[:3, 3]


def read_tcd(path: str | Path) -> Coil:
    """Read a ``.tcd`` coil into a single :class:`Coil` (all elements summed, deformations at
    their initial values; the maximum dI/dt is taken from the first stimulator that has one)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path, f"cannot read coil file ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("coilElementList"), list):
        raise InputError(path, "not a .tcd coil file (no coilElementList)")

    stimulators = doc.get("stimulatorList") or []
    models = doc.get("coilModels") or []
    deforms = doc.get("deformList") or []
    ranges = doc.get("deformRangeList") or []

    def casing(index: Any) -> Surface | None:
        if index is None:
            return None
        try:
            model = models[int(index)]
        except (IndexError, TypeError, ValueError):
            raise InputError(path, f"casing index {index!r} out of range") from None
        pts = _array(model.get("points", []), path, "casing points")
        faces = _array(model.get("faces", []), path, "casing faces", dtype=np.int64)
        if len(faces) and (faces.min() < 0 or faces.max() >= len(pts)):
            raise InputError(path, "casing faces index missing points")
        return Surface(pts, faces)

    dip_p, dip_m, seg_a, seg_b, grids, casings = [], [], [], [], [], []
    c0 = casing(doc.get("coilCasing"))
    if c0 is not None:
        casings.append(c0)
    max_didt = None
    stim_name = ""
    for i, el in enumerate(doc["coilElementList"]):
        if not isinstance(el, dict) or "type" not in el:
            raise InputError(path, f"coil element {i} has no type")
        m = np.eye(4)
        for di in el.get("deformations") or []:
            try:
                m = _deformation_matrix(deforms[int(di)], ranges, path) @ m
            except IndexError:
                raise InputError(path, f"coil element {i} refers to missing deformation {di}") from None
        si = el.get("stimulator")
        if si is not None and max_didt is None:
            try:
                st = stimulators[int(si)]
            except (IndexError, TypeError, ValueError):
                raise InputError(path, f"coil element {i} refers to missing stimulator {si!r}") from None
            if st.get("maxdIdt") is not None:
                max_didt = float(st["maxdIdt"])
                stim_name = str(st.get("name", ""))
        ec = casing(el.get("elementCasing"))
        if ec is not None:
            casings.append(Surface(_apply(m, ec.vertices), ec.faces))
        kind = int(el["type"])
        if kind == 1:
            p = _array(el["points"], path, f"element {i} points")
            v = _array(el["values"], path, f"element {i} values")
            if len(p) != len(v):
                raise InputError(path, f"element {i}: {len(p)} points but {len(v)} values")
            dip_p.append(_apply(m, p))
            dip_m.append(v @ m[:3, :3].T)
        elif kind == 2:
            p = _array(el["points"], path, f"element {i} points")
            v = _array(el["values"], path, f"element {i} values")
            if len(p) != len(v):
                raise InputError(path, f"element {i}: {len(p)} points but {len(v)} values")
            seg_a.append(_apply(m, p))
            seg_b.append(_apply(m, p + v))
        elif kind == 3:
            data = el.get("data")
            if isinstance(data, str):
                try:
                    arr = safe_unpickle_array(zlib.decompress(base64.b64decode(data, validate=True)))
                except (binascii.Error, zlib.error) as exc:
                    raise InputError(path, f"element {i}: grid data is not base64/zlib ({exc})") from None
                except ValueError as exc:
                    raise InputError(path, f"element {i}: {exc}") from None
            else:
                arr = np.asarray(data, dtype=np.float64)
            if arr.ndim != 4 or arr.shape[3] != 3:
                raise InputError(path, f"element {i}: grid data must be (X, Y, Z, 3), got {arr.shape}")
            if not np.allclose(m, np.eye(4)):
                raise InputError(path, f"element {i}: deformed sampled-grid elements are not supported")
            affine = np.asarray(el.get("affine"), dtype=np.float64).reshape(4, 4)
            grids.append(GridField(arr, affine))
        else:
            raise InputError(path, f"coil element {i}: unknown type {kind}")
    if len(grids) > 1:
        raise InputError(path, "more than one sampled-grid element is not supported")
    coil = Coil(
        name=str(doc.get("name") or path.name.split(".")[0]),
        dipole_positions=np.concatenate(dip_p) if dip_p else np.zeros((0, 3)),
        dipole_moments=np.concatenate(dip_m) if dip_m else np.zeros((0, 3)),
        segment_starts=np.concatenate(seg_a) if seg_a else np.zeros((0, 3)),
        segment_ends=np.concatenate(seg_b) if seg_b else np.zeros((0, 3)),
        grid=grids[0] if grids else None,
        casing=casings,
        max_didt=max_didt,
        stimulator=stim_name,
        brand=str(doc.get("brand") or ""),
        source=str(path),
    )
    if coil.is_empty():
        raise InputError(path, "coil has no stimulating elements")
    return coil


def write_tcd(coil: Coil, path: str | Path) -> None:
    """Write a coil as a plain-text (JSON lists) ``.tcd`` file, atomically.

    The format's line segments carry unit current, so a segment current other than 1 A per
    ampere is folded into the segment vector (the field is linear in it).
    """
    elements: list[dict] = []
    stim = {"name": coil.stimulator or "unknown", "brand": coil.brand or ""}
    if coil.max_didt is not None:
        stim["maxdIdt"] = float(coil.max_didt)
    if coil.n_dipoles:
        elements.append({"name": "dipoles", "stimulator": 0, "type": 1,
                         "points": coil.dipole_positions.tolist(), "values": coil.dipole_moments.tolist()})
    if coil.n_segments:
        vec = (coil.segment_ends - coil.segment_starts) * coil.segment_currents[:, None]
        elements.append({"name": "windings", "stimulator": 0, "type": 2,
                         "points": coil.segment_starts.tolist(), "values": vec.tolist()})
    if coil.grid is not None:
        elements.append({"name": "grid", "stimulator": 0, "type": 3,
                         "data": coil.grid.data.tolist(), "affine": coil.grid.affine.tolist()})
    doc: dict[str, Any] = {"name": coil.name, "brand": coil.brand, "version": "1",
                           "stimulatorList": [stim], "coilElementList": elements}
    if coil.casing:
        pts, faces, off = [], [], 0
        for s in coil.casing:
            pts.append(s.vertices)
            faces.append(s.faces + off)
            off += len(s.vertices)
        doc["coilModels"] = [{"points": np.concatenate(pts).tolist(), "faces": np.concatenate(faces).tolist()}]
        doc["coilCasing"] = 0
    atomic_write_json(path, doc)
