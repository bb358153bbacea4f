"""Field recovery: smoother, more accurate element fields from piecewise-constant (P0) ones.

The gradient of a P1 potential is constant per tetrahedron and converges at first order
in the element size. Recovering a continuous field at the nodes and then averaging it back
to the elements removes much of the element-to-element scatter. Because E is
discontinuous across conductivity jumps (the normal component jumps by the conductivity
ratio), recovery is done separately within each tissue: a node on an interface gets one
recovered value per adjacent tissue, and each tetrahedron only uses the values of its own
tissue. Values are therefore returned per tetrahedron corner, shape (M, 4, C).

Two recoveries:

* ``"average"``: volume-weighted mean of the element values of the tissue's tetrahedra
  around the node;
* ``"spr"`` (default): superconvergent patch recovery (Zienkiewicz & Zhu 1992): a linear
  least-squares fit ``a + B (x - x_node)`` of the element values at the centroids of the
  tissue's patch around the node, evaluated at the node. Nodes on a tissue boundary take the
  mean of the neighbouring interior patches' fits evaluated at the node; patches with fewer
  than 6 tetrahedra or an ill-conditioned fit take the neighbouring fits, else the average.

Units are those of the input field (V/m for E); coordinates in mm.

The loops are compiled (:mod:`navigator.fem.recovery_kernels`); the results equal those of
the former numpy/bincount formulation up to rounding (about 1e-14 relative on a 2 M-tet head).
"""

from __future__ import annotations

import numpy as np

from navigator.core.mesh import Mesh

RECOVERY_METHODS = ("spr", "average")


def _tag_index(mesh: Mesh, by_tissue: bool) -> tuple[np.ndarray, int]:
    """(M,) index of each tet's tag among the sorted distinct tags (all 0 when not by tissue)."""
    if not by_tissue or mesh.n_tets == 0:
        return np.zeros(mesh.n_tets, np.int64), 1
    tags = mesh.tet_tags
    lo, hi = int(tags.min()), int(tags.max())
    if hi - lo < 1_000_000:  # small tag range: a lookup table instead of a sort
        present = np.zeros(hi - lo + 1, bool)
        present[tags - lo] = True
        rank = np.cumsum(present) - 1
        return rank[tags - lo].astype(np.int64), int(present.sum())
    uniq, tag_idx = np.unique(tags, return_inverse=True)
    return tag_idx.astype(np.int64).ravel(), len(uniq)


class _Patches:
    """The mesh renumbered for locality and its patches; a patch is a (node, tissue) pair when
    ``by_tissue`` (else just the node), see :func:`navigator.fem.recovery_kernels.patch_index`.
    Arrays with a trailing ``_l`` are in the local (renumbered) order."""

    def __init__(self, mesh: Mesh, by_tissue: bool):
        from navigator.fem.kernels import node_elements
        from navigator.fem.recovery_kernels import morton_node_order, patch_index, renumber_tets, tet_geometry

        node_perm, new_id = morton_node_order(mesh.nodes)
        # the mesh renumbered so that the tets around a node are close in memory (recovery
        # then touches each cache line a few times instead of once per corner)
        tets = np.ascontiguousarray(mesh.tetrahedra, dtype=np.int64)
        self.tet_perm, self.tets_l = renumber_tets(tets, new_id)
        self.nodes_l = np.take(np.asarray(mesh.nodes, dtype=np.float64), node_perm, axis=0)
        self.tags_l = np.ascontiguousarray(mesh.tet_tags[self.tet_perm])
        tag_idx, n_tags = _tag_index(mesh, by_tissue)
        self.start, self.elems = node_elements(self.tets_l, mesh.n_nodes)
        self.patch, self.patch_start, self.patch_corners, self.patch_node = patch_index(
            self.tets_l, np.ascontiguousarray(tag_idx[self.tet_perm]), n_tags, self.start, self.elems)
        self.cent_l, self.vol_l = tet_geometry(self.nodes_l, self.tets_l)
        self.by_tissue = by_tissue


def _recover_patches(mesh: Mesh, E_tets: np.ndarray, by_tissue: bool, method: str):
    """(values (P, C), patches, scalar) for :func:`recover_nodal_field`; values in local order."""
    if method not in RECOVERY_METHODS:
        raise ValueError(f"method must be one of {RECOVERY_METHODS}, not {method!r}")
    E = np.asarray(E_tets, dtype=np.float64)
    scalar = E.ndim == 1
    E = E.reshape(len(E), -1)
    if len(E) != mesh.n_tets:
        raise ValueError(f"E_tets has {len(E)} rows for {mesh.n_tets} tetrahedra")
    from navigator.fem.recovery_kernels import patch_average

    pt = _Patches(mesh, by_tissue)
    E_l = np.take(E, pt.tet_perm, axis=0)  # np.take: much faster than fancy indexing
    avg = patch_average(pt.vol_l, E_l, pt.patch_start, pt.patch_corners)
    result = avg
    if method == "spr":
        result = _spr(pt, E_l, avg)
    return result, pt, scalar


def recover_nodal_field(mesh: Mesh, E_tets: np.ndarray, *, by_tissue: bool = True,
                        method: str = "spr") -> np.ndarray:
    """Recovered field at the corners of every tetrahedron, (M, 4, C) (C components of E_tets).

    Corner (t, k) holds the recovered value at node ``mesh.tetrahedra[t, k]`` computed from
    the tetrahedra of tet t's tissue only (``by_tissue=True``) or from all tetrahedra around
    the node (``by_tissue=False``, for fields continuous across tissues).

    Args:
        mesh: tetrahedral mesh (mm).
        E_tets: (M,) or (M, C) element values (any unit; returned in the same unit).
        by_tissue: recover separately within each tissue tag.
        method: "spr" (linear least-squares patch fit) or "average" (volume-weighted mean).
    """
    result, pt, scalar = _recover_patches(mesh, E_tets, by_tissue, method)
    out = np.empty((mesh.n_tets, 4, result.shape[1]))
    out[pt.tet_perm] = result[pt.patch]  # (M, 4, C)
    return out[..., 0] if scalar else out


# a patch needs this many tetrahedra, and its normal matrix min/max eigenvalue above this, to
# get its own linear fit
_MIN_PATCH_TETS = 6
_EIG_RATIO_MIN = 1e-3


def _spr(pt: _Patches, E: np.ndarray, avg: np.ndarray) -> np.ndarray:
    """Linear least-squares fit per patch (unweighted, sampling points = centroids)."""
    from navigator.fem.recovery_kernels import boundary_patches, neighbour_fits, patch_fits, single_faces

    coef, rms, ok = patch_fits(pt.nodes_l, pt.cent_l, E, pt.patch_start, pt.patch_corners, pt.patch_node,
                               _MIN_PATCH_TETS, _EIG_RATIO_MIN)
    out = avg.copy()
    if not ok.any():
        return out
    out[ok] = coef[ok, 0, :]  # value at the patch node
    # Patches of nodes on a tissue's boundary are one-sided, and their own fit extrapolates
    # the noisy element values. As usual in SPR, their value is instead the mean of the fits
    # of the neighbouring interior patches (same tissue) evaluated at the boundary node
    # (their own fit when they have no interior neighbour).
    single = single_faces(pt.tets_l, pt.tags_l, pt.start, pt.elems, pt.by_tissue)
    boundary = boundary_patches(pt.patch_start, pt.patch_corners, single)
    # 1) boundary patches: mean of the interior neighbours' fits
    geo = (pt.nodes_l, pt.tets_l, pt.patch, pt.patch_start, pt.patch_corners, coef, rms)
    cnt = neighbour_fits(*geo, boundary, ok & ~boundary, out)
    has = cnt > 0
    # 2) patches with neither an own fit nor interior neighbours (thin layers): mean of the
    #    fits of any neighbouring patch of the same tissue
    rest = ~ok & ~has
    if rest.any():
        neighbour_fits(*geo, rest, ok, out)
    return out


def element_from_corners(corner_values: np.ndarray) -> np.ndarray:
    """(M, C) element value = mean of the (M, 4, C) corner values (the centroid value of
    the linear interpolant)."""
    return np.asarray(corner_values).mean(axis=1)


def recovered_element_field(mesh: Mesh, E_tets: np.ndarray, *, by_tissue: bool = True,
                            method: str = "spr") -> np.ndarray:
    """(M, C) element field from the tissue-wise recovered nodal field: the mean of the
    recovered values at each tetrahedron's four corners (same unit as ``E_tets``)."""
    from navigator.fem.recovery_kernels import element_means

    result, pt, scalar = _recover_patches(mesh, E_tets, by_tissue, method)
    out = np.empty((mesh.n_tets, result.shape[1]))
    # = element_from_corners(result[patch]), back in the caller's tet order
    out[pt.tet_perm] = element_means(np.ascontiguousarray(result), pt.patch)
    return out[:, 0] if scalar else out
