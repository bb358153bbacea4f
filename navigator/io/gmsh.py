"""gmsh ``.msh`` reader (formats 2.2 and 4.1, ASCII and binary) and SimNIBS-style writer.

Reading (:func:`read_msh`):
    * nodes: any ids (non-contiguous, unordered) are mapped to 0-based indices in id order,
      so the 2.2 and 4.1 files of one gmsh model read identically; coordinates are kept as
      stored (SimNIBS: world RAS mm).
    * elements: triangles (type 2) and tetrahedra (type 4) are kept, each kind in element id
      order; points, lines and other types are skipped (debug log). Tissue tag = physical tag (2.2: first tag, or the
      elementary (second) tag where the physical one is 0; 4.1: first physical group of the
      element's entity, else the entity tag).
    * ``$NodeData`` / ``$ElementData``: any number of components; element rows may cover all
      elements or a subset. Element fields are split by element id into ``Mesh.tet_data`` and
      ``Mesh.triangle_data``; rows absent for some kept element are NaN; a part with no finite
      value at all is left out. Single-component fields are returned as 1-D arrays.

Writing (:func:`write_msh`) produces gmsh 2.2 exactly as SimNIBS writes it:
``$MeshFormat 2.2 {0|1} 8``, nodes numbered 1..N, triangles (ids 1..K) then tetrahedra
(ids K+1..K+M), two tags per element (physical = elementary = tissue tag), one ``$NodeData``
per node field and one ``$ElementData`` per element field, written over ALL elements so
that every reader (meshio, gmsh, SimNIBS) sees a full-length cell field. A field given only
on tetrahedra gets, on each triangle, the value of the adjacent tetrahedron of the tissue
the triangle bounds (tag - 1000), else of any adjacent tetrahedron (NaN if none); a field
given only on triangles is NaN on the tetrahedra.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_path
from navigator.core.errors import InputError
from navigator.core.mesh import Mesh

log = logging.getLogger(__name__)

TRIANGLE, TETRAHEDRON = 2, 4

#: Number of nodes of each gmsh element type (first- and second-order types seen in practice).
NODES_PER_ELEMENT: dict[int, int] = {
    1: 2, 2: 3, 3: 4, 4: 4, 5: 8, 6: 6, 7: 5, 8: 3, 9: 6, 10: 9, 11: 10, 12: 27, 13: 18, 14: 14,
    15: 1, 16: 8, 17: 20, 18: 15, 19: 13, 20: 9, 21: 10, 22: 12, 23: 15, 24: 15, 25: 21,
    26: 4, 27: 5, 28: 6, 29: 20, 30: 35, 31: 56, 92: 64, 93: 125,
}


class _Truncated(Exception):
    pass


# ====================================================================================== reading
class _Cursor:
    """Byte buffer with a read position."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def line(self) -> str:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            if self.pos >= len(self.data):
                raise _Truncated("unexpected end of file")
            end = len(self.data)
        s = self.data[self.pos:end]
        self.pos = end + 1
        return s.decode("latin-1").strip()

    def nonblank_line(self) -> str | None:
        while self.pos < len(self.data):
            s = self.line()
            if s:
                return s
        return None

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise _Truncated("unexpected end of file inside binary data")
        v = memoryview(self.data)[self.pos:self.pos + n]
        self.pos += n
        return v

    def until(self, marker: str) -> bytes:
        """Bytes up to the line ``marker``; the cursor moves past that line."""
        m = marker.encode()
        i = self.data.find(m, self.pos)
        if i < 0:
            raise _Truncated(f"missing {marker}")
        s = self.data[self.pos:i]
        self.pos = i
        self.line()
        return s

    def expect_end(self, section: str) -> None:
        s = self.nonblank_line()
        if s != f"$End{section}":
            raise _Truncated(f"expected $End{section}, found {s!r}" if s else f"missing $End{section}")


def _ints(text: bytes) -> np.ndarray:
    return np.array(text.split(), dtype=np.int64) if len(text) < 4096 else np.fromstring(text, dtype=np.int64, sep=" ")


def _floats(text: bytes) -> np.ndarray:
    return np.array(text.split(), dtype=np.float64) if len(text) < 4096 else np.fromstring(text, dtype=np.float64, sep=" ")


def _table(text: bytes, ncols: int) -> np.ndarray:
    """(rows, ncols) float64 table of whitespace-separated numbers (pandas' C parser when big)."""
    if len(text) > 1 << 16:
        import io

        import pandas as pd

        try:
            arr = pd.read_csv(io.BytesIO(text), sep=r"\s+", header=None, dtype=np.float64, engine="c").to_numpy()
            if arr.ndim == 2 and arr.shape[1] == ncols and np.isfinite(arr[:, 0]).all():
                return arr
        except (ValueError, pd.errors.ParserError):
            pass
    vals = _floats(text)
    if vals.size % ncols:
        raise _Truncated(f"table rows do not hold {ncols} numbers each")
    return vals.reshape(-1, ncols)


class _Raw:
    """What the section parsers collect before it is assembled into a :class:`Mesh`."""

    def __init__(self) -> None:
        self.node_ids: list[np.ndarray] = []
        self.node_xyz: list[np.ndarray] = []
        # per element block: (element ids, gmsh type, node ids (n, k), tissue tag per element)
        self.blocks: list[tuple[np.ndarray, int, np.ndarray, np.ndarray]] = []
        self.node_data: list[tuple[str, np.ndarray, np.ndarray]] = []
        self.element_data: list[tuple[str, np.ndarray, np.ndarray]] = []
        self.entity_physical: dict[tuple[int, int], int] = {}


def read_msh(path: str | Path, check: bool = False) -> Mesh:
    """Read a gmsh 2.2 or 4.1 mesh (ASCII or binary) with its node and element fields.

    Returns a :class:`Mesh` with triangles and tetrahedra (0-based), their tags, and the
    fields found (see the module docstring). Raises :class:`InputError` naming ``path`` for
    a missing, truncated, malformed or unsupported file. With ``check`` (meshes imported from
    other programs) the mesh is validated and its tetrahedra oriented positively by
    :func:`navigator.io.mesh_checks.validate_mesh` (errors name the file's node/element ids).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror})") from None
    if not data.strip():
        raise InputError(path, "is an empty file, not a gmsh mesh")
    try:
        return _parse(data, path, check)
    except _Truncated as exc:
        raise InputError(path, f"truncated or malformed gmsh file ({exc})") from None
    except (ValueError, IndexError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise InputError(path, f"malformed gmsh file ({type(exc).__name__}: {exc})") from None


def _parse(data: bytes, path: Path, check: bool = False) -> Mesh:
    cur = _Cursor(data)
    first = cur.nonblank_line()
    if first != "$MeshFormat":
        raise InputError(path, "not a gmsh mesh (no $MeshFormat header)")
    fields = cur.line().split()
    if len(fields) < 3:
        raise _Truncated("bad $MeshFormat line")
    version, file_type, data_size = fields[0], int(fields[1]), int(fields[2])
    if version not in ("2.2", "2.1", "2", "2.0", "4.1"):
        raise InputError(path, f"unsupported gmsh format version {version} (supported: 2.2, 4.1)")
    binary = file_type == 1
    endian = "<"
    if binary:
        one = cur.take(4)
        if np.frombuffer(one, "<i4")[0] == 1:
            endian = "<"
        elif np.frombuffer(one, ">i4")[0] == 1:
            endian = ">"
        else:
            raise InputError(path, "binary gmsh file with an invalid endianness marker")
    if version == "4.1" and binary and data_size != 8:
        raise InputError(path, f"unsupported size_t of {data_size} bytes in binary gmsh 4.1 file")
    cur.expect_end("MeshFormat")
    v4 = version == "4.1"
    raw = _Raw()
    while True:
        line = cur.nonblank_line()
        if line is None:
            break
        if not line.startswith("$"):
            raise _Truncated(f"unexpected text {line[:40]!r} between sections")
        name = line[1:]
        if name == "Nodes":
            (_nodes41 if v4 else _nodes22)(cur, raw, binary, endian)
            cur.expect_end(name)
        elif name == "Elements":
            (_elements41 if v4 else _elements22)(cur, raw, binary, endian)
            cur.expect_end(name)
        elif name == "Entities" and v4:
            _entities41(cur, raw, binary, endian)
            cur.expect_end(name)
        elif name in ("NodeData", "ElementData"):
            fname, ids, values = _data_section(cur, binary, endian)
            (raw.node_data if name == "NodeData" else raw.element_data).append((fname, ids, values))
            cur.expect_end(name)
        else:
            log.debug("%s: skipping section $%s", path, name)
            cur.until(f"$End{name}")
    if not raw.node_ids:
        raise InputError(path, "gmsh file has no $Nodes section")
    return _assemble(raw, path, check)


# ---------------------------------------------------------------------------- gmsh 2.2 sections
def _nodes22(cur: _Cursor, raw: _Raw, binary: bool, e: str) -> None:
    n = int(cur.line())
    if binary:
        dt = np.dtype([("id", e + "i4"), ("xyz", e + "f8", (3,))])
        arr = np.frombuffer(cur.take(n * dt.itemsize), dt)
        raw.node_ids.append(arr["id"].astype(np.int64))
        raw.node_xyz.append(arr["xyz"].astype(np.float64))
    else:
        vals = _table(cur.until("$EndNodes"), 4)
        _rewind_to(cur, "$EndNodes")
        if len(vals) != n:
            raise _Truncated(f"$Nodes announces {n} nodes but holds {len(vals)}")
        raw.node_ids.append(vals[:, 0].astype(np.int64))
        raw.node_xyz.append(vals[:, 1:].copy())


def _rewind_to(cur: _Cursor, marker: str) -> None:
    """Move the cursor back to the start of the line holding ``marker`` (after ``until``)."""
    i = cur.data.rfind(marker.encode(), 0, cur.pos)
    cur.pos = i


def _elements22(cur: _Cursor, raw: _Raw, binary: bool, e: str) -> None:
    total = int(cur.line())
    if binary:
        done = 0
        while done < total:
            etype, count, ntags = (int(v) for v in np.frombuffer(cur.take(12), e + "i4"))
            if etype not in NODES_PER_ELEMENT:
                raise _Truncated(f"unknown element type {etype}")
            width = 1 + ntags + NODES_PER_ELEMENT[etype]
            if count <= 0:
                raise _Truncated("bad element block header")
            rows = np.frombuffer(cur.take(4 * width * count), e + "i4").reshape(count, width).astype(np.int64)
            _add_block22(raw, etype, ntags, rows)
            done += count
        return
    text = cur.until("$EndElements")
    _rewind_to(cur, "$EndElements")
    flat = _ints(text)
    p, done = 0, 0
    while p < flat.size:
        if p + 3 > flat.size:
            raise _Truncated("incomplete element row")
        etype, ntags = int(flat[p + 1]), int(flat[p + 2])
        if etype not in NODES_PER_ELEMENT:
            raise _Truncated(f"unknown element type {etype}")
        width = 3 + ntags + NODES_PER_ELEMENT[etype]
        # extent of the run of rows with the same layout, found in growing chunks
        chunk, nrows = 1024, 0
        while True:
            avail = (flat.size - p) // width - nrows
            k = min(chunk, avail)
            if k <= 0:
                break
            block = flat[p + nrows * width: p + (nrows + k) * width].reshape(k, width)
            ok = (block[:, 1] == etype) & (block[:, 2] == ntags)
            if ok.all():
                nrows += k
                chunk *= 2
                continue
            nrows += int(np.argmin(ok))
            break
        if nrows == 0:
            raise _Truncated("incomplete element row")
        rows = flat[p: p + nrows * width].reshape(nrows, width)
        _add_block22(raw, etype, ntags, rows, skip=2)
        p += nrows * width
        done += nrows
    if done != total:
        raise _Truncated(f"$Elements announces {total} elements but holds {done}")


def _add_block22(raw: _Raw, etype: int, ntags: int, rows: np.ndarray, skip: int = 0) -> None:
    """rows: (n, 1 + skip + ntags + nodes) = [id, (skip columns), tags..., nodes...]."""
    ids = rows[:, 0]
    tags = rows[:, 1 + skip] if ntags > 0 else np.zeros(len(rows), np.int64)
    if ntags > 1 and np.any(tags == 0):  # no physical group (gmsh "save all"): the elementary tag
        tags = np.where(tags == 0, rows[:, 2 + skip], tags)
    raw.blocks.append((ids, etype, rows[:, 1 + skip + ntags:], tags))


# ---------------------------------------------------------------------------- gmsh 4.1 sections
def _entities41(cur: _Cursor, raw: _Raw, binary: bool, e: str) -> None:
    if binary:
        counts = np.frombuffer(cur.take(32), e + "u8").astype(int)
        for dim, n in enumerate(counts):
            for _ in range(n):
                tag = int(np.frombuffer(cur.take(4), e + "i4")[0])
                cur.take(8 * (3 if dim == 0 else 6))
                nphys = int(np.frombuffer(cur.take(8), e + "u8")[0])
                phys = np.frombuffer(cur.take(4 * nphys), e + "i4")
                if nphys:
                    raw.entity_physical[(dim, tag)] = int(phys[0])
                if dim > 0:
                    nb = int(np.frombuffer(cur.take(8), e + "u8")[0])
                    cur.take(4 * nb)
        return
    counts = [int(v) for v in cur.line().split()]
    for dim, n in enumerate(counts):
        for _ in range(n):
            vals = cur.line().split()
            tag = int(vals[0])
            k = 4 if dim == 0 else 7
            nphys = int(vals[k])
            if nphys:
                raw.entity_physical[(dim, tag)] = int(vals[k + 1])


def _nodes41(cur: _Cursor, raw: _Raw, binary: bool, e: str) -> None:
    if binary:
        nblocks, _n, _lo, _hi = np.frombuffer(cur.take(32), e + "u8").astype(np.int64)
        for _ in range(nblocks):
            dim, _tag, param = (int(v) for v in np.frombuffer(cur.take(12), e + "i4"))
            n = int(np.frombuffer(cur.take(8), e + "u8")[0])
            ids = np.frombuffer(cur.take(8 * n), e + "u8").astype(np.int64)
            width = 3 + (dim if param else 0)
            xyz = np.frombuffer(cur.take(8 * width * n), e + "f8").reshape(n, width)[:, :3]
            raw.node_ids.append(ids)
            raw.node_xyz.append(xyz.astype(np.float64))
        return
    text = cur.until("$EndNodes")
    _rewind_to(cur, "$EndNodes")
    flat = _floats(text)
    nblocks = int(flat[0])
    p = 4
    for _ in range(nblocks):
        dim, param, n = int(flat[p]), int(flat[p + 2]), int(flat[p + 3])
        p += 4
        ids = flat[p:p + n].astype(np.int64)
        p += n
        width = 3 + (dim if param else 0)
        xyz = flat[p:p + n * width]
        if xyz.size != n * width:
            raise _Truncated("incomplete $Nodes block")
        p += n * width
        raw.node_ids.append(ids)
        raw.node_xyz.append(xyz.reshape(n, width)[:, :3].copy())


def _elements41(cur: _Cursor, raw: _Raw, binary: bool, e: str) -> None:
    def add(dim: int, tag: int, etype: int, rows: np.ndarray) -> None:
        tissue = raw.entity_physical.get((dim, tag), tag)
        raw.blocks.append((rows[:, 0], etype, rows[:, 1:], np.full(len(rows), tissue, np.int64)))

    if binary:
        nblocks = int(np.frombuffer(cur.take(32), e + "u8")[0])
        for _ in range(nblocks):
            dim, tag, etype = (int(v) for v in np.frombuffer(cur.take(12), e + "i4"))
            n = int(np.frombuffer(cur.take(8), e + "u8")[0])
            if etype not in NODES_PER_ELEMENT:
                raise _Truncated(f"unknown element type {etype}")
            width = 1 + NODES_PER_ELEMENT[etype]
            rows = np.frombuffer(cur.take(8 * width * n), e + "u8").reshape(n, width).astype(np.int64)
            add(dim, tag, etype, rows)
        return
    text = cur.until("$EndElements")
    _rewind_to(cur, "$EndElements")
    flat = _ints(text)
    nblocks = int(flat[0])
    p = 4
    for _ in range(nblocks):
        dim, tag, etype, n = (int(v) for v in flat[p:p + 4])
        p += 4
        if etype not in NODES_PER_ELEMENT:
            raise _Truncated(f"unknown element type {etype}")
        width = 1 + NODES_PER_ELEMENT[etype]
        rows = flat[p:p + n * width]
        if rows.size != n * width:
            raise _Truncated("incomplete $Elements block")
        p += n * width
        add(dim, tag, etype, rows.reshape(n, width))


# ---------------------------------------------------------------------------- data sections
def _data_section(cur: _Cursor, binary: bool, e: str) -> tuple[str, np.ndarray, np.ndarray]:
    """Parse a $NodeData/$ElementData body (same layout in 2.2 and 4.1)."""
    nstr = int(cur.line())
    strings = [cur.line().strip().strip('"') for _ in range(nstr)]
    nreal = int(cur.line())
    for _ in range(nreal):
        cur.line()
    nint = int(cur.line())
    ints = [int(cur.line()) for _ in range(nint)]
    if nint < 3:
        raise _Truncated("data section with fewer than 3 integer tags")
    ncomp, count = ints[1], ints[2]
    name = strings[0] if strings else "data"
    if binary:
        dt = np.dtype([("id", e + "i4"), ("v", e + "f8", (ncomp,))])
        arr = np.frombuffer(cur.take(count * dt.itemsize), dt)
        ids = arr["id"].astype(np.int64)
        values = arr["v"].astype(np.float64).reshape(count, ncomp)
    else:
        start = cur.pos
        end = cur.data.find(b"$End", start)
        if end < 0:
            raise _Truncated(f"data field {name!r} has no end marker")
        vals = _table(cur.data[start:end], 1 + ncomp)
        if len(vals) != count:
            raise _Truncated(f"data field {name!r} announces {count} rows of {ncomp} values")
        cur.pos = end
        ids = vals[:, 0].astype(np.int64)
        values = vals[:, 1:].copy()
    return name, ids, values


# ---------------------------------------------------------------------------- assembly
def _lookup(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Position of each query in ``keys`` (distinct ints) or -1."""
    if len(keys) == 0:
        return np.full(len(queries), -1, np.int64)
    lo, hi = int(keys.min()), int(keys.max())
    if hi - lo < 4 * len(keys) + 1_000_000:
        table = np.full(hi - lo + 1, -1, np.int64)
        table[keys - lo] = np.arange(len(keys))
        q = queries - lo
        ok = (q >= 0) & (q < len(table))
        out = np.full(len(queries), -1, np.int64)
        out[ok] = table[q[ok]]
        return out
    order = np.argsort(keys)
    sk = keys[order]
    pos = np.minimum(np.searchsorted(sk, queries), len(sk) - 1)
    return np.where(sk[pos] == queries, order[pos], -1)


def _assemble(raw: _Raw, path: Path, check: bool = False) -> Mesh:
    node_ids = np.concatenate(raw.node_ids)
    nodes = np.concatenate(raw.node_xyz)
    if len(node_ids) and np.any(np.diff(node_ids) <= 0):
        order = np.argsort(node_ids, kind="stable")
        node_ids, nodes = node_ids[order], nodes[order]
        if np.any(np.diff(node_ids) == 0):
            raise InputError(path, "gmsh file has duplicate node ids")
    contiguous = len(node_ids) > 0 and np.array_equal(node_ids, np.arange(1, len(node_ids) + 1))

    def to_index(ids: np.ndarray) -> np.ndarray:
        if contiguous:
            idx = ids - 1
            bad = (idx < 0) | (idx >= len(node_ids))
        else:
            idx = _lookup(node_ids, ids.reshape(-1)).reshape(ids.shape)
            bad = idx < 0
        if np.any(bad):
            raise InputError(path, f"element refers to undefined node {int(ids[bad].reshape(-1)[0])}")
        return idx

    parts: dict[int, list] = {TRIANGLE: [], TETRAHEDRON: []}
    skipped: dict[int, int] = {}
    for ids, etype, conn, tags in raw.blocks:
        if etype in parts:
            parts[etype].append((ids, to_index(conn), tags))
        else:
            skipped[etype] = skipped.get(etype, 0) + len(ids)
    if skipped:
        log.debug("%s: skipped elements %s (type: count)", path, skipped)

    def cat(etype: int, k: int):
        if not parts[etype]:
            return np.zeros(0, np.int64), np.zeros((0, k), np.int64), np.zeros(0, np.int64)
        ids, conn, tags = (np.concatenate([p[i] for p in parts[etype]]) for i in range(3))
        if np.any(np.diff(ids) < 0):  # element order = element id order
            order = np.argsort(ids, kind="stable")
            ids, conn, tags = ids[order], conn[order], tags[order]
        return ids, conn, tags

    tri_ids, tris, tri_tags = cat(TRIANGLE, 3)
    tet_ids, tets, tet_tags = cat(TETRAHEDRON, 4)
    mesh = Mesh(nodes=nodes, tetrahedra=tets, tet_tags=tet_tags, triangles=tris, triangle_tags=tri_tags)

    for name, ids, values in raw.node_data:
        idx = _lookup(node_ids, ids) if not contiguous else np.where((ids >= 1) & (ids <= len(node_ids)), ids - 1, -1)
        arr = np.full((len(node_ids), values.shape[1]), np.nan)
        ok = idx >= 0
        arr[idx[ok]] = values[ok]
        mesh.node_data[name] = _squeeze(arr)

    if raw.element_data:
        all_ids = np.concatenate([tri_ids, tet_ids])
        if not np.array_equal(all_ids, np.arange(1, len(all_ids) + 1)) and np.any(np.diff(np.sort(all_ids)) == 0):
            raise InputError(path, "gmsh file has duplicate element ids")
        k = len(tri_ids)
        for name, ids, values in raw.element_data:
            pos = _lookup(all_ids, ids)
            ncomp = values.shape[1]
            for target, sel, offset, n in (
                (mesh.triangle_data, (pos >= 0) & (pos < k), 0, k),
                (mesh.tet_data, pos >= k, k, len(tet_ids)),
            ):
                if not sel.any() or n == 0:
                    continue
                arr = np.full((n, ncomp), np.nan)
                arr[pos[sel] - offset] = values[sel]
                if np.isfinite(arr).any():
                    target[name] = _squeeze(arr)
    if check:
        from navigator.io.mesh_checks import validate_mesh

        mesh = validate_mesh(mesh, path, node_ids, tet_ids, tri_ids)
    return mesh


def _squeeze(arr: np.ndarray) -> np.ndarray:
    return arr[:, 0].copy() if arr.shape[1] == 1 else arr


# ====================================================================================== writing
def _element_field_values(mesh: Mesh, name: str, adjacent: np.ndarray | None) -> np.ndarray:
    """(K + M, C) values of element field ``name`` over triangles then tetrahedra."""
    tet = mesh.tet_data.get(name)
    tri = mesh.triangle_data.get(name)
    ref = tet if tet is not None else tri
    ncomp = 1 if np.ndim(ref) == 1 else np.shape(ref)[1]
    k, m = len(mesh.triangles), mesh.n_tets
    out = np.full((k + m, ncomp), np.nan)
    if tet is not None:
        tet = np.asarray(tet, np.float64).reshape(m, ncomp)
        out[k:] = tet
    if tri is not None:
        out[:k] = np.asarray(tri, np.float64).reshape(k, ncomp)
    elif tet is not None and k > 0 and adjacent is not None:
        has = adjacent >= 0
        out[:k][has] = tet[adjacent[has]]
    return out


def _check_field(mesh: Mesh, name: str, arr: np.ndarray, n: int, what: str) -> None:
    if len(arr) != n:
        raise ValueError(f"{what} field {name!r} has {len(arr)} rows, mesh has {n} {what}s")


def write_msh(mesh: Mesh, path: str | Path, binary: bool = True) -> Path:
    """Write ``mesh`` as a SimNIBS-style gmsh 2.2 file (binary by default), atomically.

    Node coordinates are written as stored (mm). Element ordering: triangles first, then
    tetrahedra; each element has 2 tags (physical = elementary = tissue tag). Fields become
    ``$NodeData`` / ``$ElementData`` blocks (see the module docstring). Returns ``path``.
    """
    path = Path(path)
    for name, arr in mesh.node_data.items():
        _check_field(mesh, name, arr, mesh.n_nodes, "node")
    for name, arr in mesh.tet_data.items():
        _check_field(mesh, name, arr, mesh.n_tets, "tetrahedron")
    for name, arr in mesh.triangle_data.items():
        _check_field(mesh, name, arr, len(mesh.triangles), "triangle")
    with atomic_path(path, suffix=".msh") as tmp:
        with open(tmp, "wb") as f:
            _write(mesh, f, binary)
    return path


def _write(mesh: Mesh, f, binary: bool) -> None:
    n, k, m = mesh.n_nodes, len(mesh.triangles), mesh.n_tets
    f.write(b"$MeshFormat\n2.2 %d 8\n" % int(binary))
    if binary:
        f.write(np.array([1], "<i4").tobytes() + b"\n")
    f.write(b"$EndMeshFormat\n")

    # nodes
    f.write(b"$Nodes\n%d\n" % n)
    ids = np.arange(1, n + 1)
    if binary:
        arr = np.empty(n, np.dtype([("id", "<i4"), ("xyz", "<f8", (3,))]))
        arr["id"] = ids
        arr["xyz"] = mesh.nodes
        f.write(arr.tobytes() + b"\n")
    else:
        _write_rows(f, np.column_stack([ids, mesh.nodes]), "%d %.17g %.17g %.17g")
    f.write(b"$EndNodes\n")

    # elements: triangles then tetrahedra, 2 tags
    f.write(b"$Elements\n%d\n" % (k + m))
    tri_rows = np.column_stack([np.arange(1, k + 1), mesh.triangle_tags, mesh.triangle_tags, mesh.triangles + 1])
    tet_rows = np.column_stack([np.arange(k + 1, k + m + 1), mesh.tet_tags, mesh.tet_tags, mesh.tetrahedra + 1])
    if binary:
        if k:
            f.write(np.array([TRIANGLE, k, 2], "<i4").tobytes())
            f.write(tri_rows.astype("<i4").tobytes())
        if m:
            f.write(np.array([TETRAHEDRON, m, 2], "<i4").tobytes())
            f.write(tet_rows.astype("<i4").tobytes())
        f.write(b"\n")
    else:
        if k:
            _write_rows(f, np.column_stack([tri_rows[:, :1], np.full(k, TRIANGLE), np.full(k, 2), tri_rows[:, 1:]]),
                        " ".join(["%d"] * 8))
        if m:
            _write_rows(f, np.column_stack([tet_rows[:, :1], np.full(m, TETRAHEDRON), np.full(m, 2), tet_rows[:, 1:]]),
                        " ".join(["%d"] * 9))
    f.write(b"$EndElements\n")

    # node fields
    for name, arr in mesh.node_data.items():
        values = np.asarray(arr, np.float64).reshape(n, -1)
        _write_data(f, "NodeData", name, values, binary)

    # element fields over all elements
    names = list(dict.fromkeys([*mesh.tet_data.keys(), *mesh.triangle_data.keys()]))
    adjacent = None
    if any(nm not in mesh.triangle_data for nm in mesh.tet_data) and k > 0:
        from navigator.io.mesh_boundary import adjacent_tets

        adjacent = adjacent_tets(mesh)
    for name in names:
        _write_data(f, "ElementData", name, _element_field_values(mesh, name, adjacent), binary)


def _write_data(f, section: str, name: str, values: np.ndarray, binary: bool) -> None:
    count, ncomp = values.shape
    clean = name.replace('"', "'").replace("\n", " ")
    f.write(f'${section}\n1\n"{clean}"\n1\n0.0\n4\n0\n{ncomp}\n{count}\n0\n'.encode())
    ids = np.arange(1, count + 1)
    if binary:
        arr = np.empty(count, np.dtype([("id", "<i4"), ("v", "<f8", (ncomp,))]))
        arr["id"] = ids
        arr["v"] = values
        f.write(arr.tobytes() + b"\n")
    else:
        _write_rows(f, np.column_stack([ids, values]), " ".join(["%d"] + ["%.17g"] * ncomp))
    f.write(f"$End{section}\n".encode())


def _write_rows(f, rows: np.ndarray, fmt: str, chunk: int = 65536) -> None:
    """Formatted text rows, one `%` operation per chunk of rows (much faster than savetxt)."""
    line = fmt + "\n"
    for s in range(0, len(rows), chunk):
        block = rows[s:s + chunk]
        f.write(((line * len(block)) % tuple(block.ravel().tolist())).encode())
