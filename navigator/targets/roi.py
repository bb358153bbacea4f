"""Regions of interest on the head mesh for simulation reports and optimization.

A region is a boolean mask over the mesh's tetrahedra: a sphere around a point restricted to
grey matter (the default for DLPFC targets), or a user mask NIfTI (tetrahedra whose centroid
falls in a voxel > 0, restricted to the given tissues). No atlas ships with navigator: the
MNI atlases that nilearn can fetch are downloaded at run time, which navigator never does;
pass an atlas region as a mask NIfTI instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.tissues import GM
from navigator.core.volume import Volume


@dataclass
class SphereRoi:
    centre: np.ndarray  # subject RAS mm
    radius_mm: float = 10.0
    tissues: tuple[int, ...] = (GM,)

    def tet_mask(self, mesh: Mesh) -> np.ndarray:
        inside = np.linalg.norm(mesh.tet_centroids() - np.asarray(self.centre), axis=1) <= self.radius_mm
        mask = inside & np.isin(mesh.tet_tags, self.tissues) if self.tissues else inside
        if not mask.any():
            present = [t for t in self.tissues if t in set(mesh.tissue_tags())]
            if not present:
                mask = inside  # head models without these tissues (e.g. spheres): all tissue
            if not mask.any():
                raise NavigatorError(
                    f"the region of radius {self.radius_mm} mm around {np.round(self.centre, 1).tolist()} "
                    "contains no mesh elements of the requested tissue; move the target or enlarge the radius")
        return mask


@dataclass
class MaskRoi:
    mask: Volume
    tissues: tuple[int, ...] = (GM,)

    def tet_mask(self, mesh: Mesh) -> np.ndarray:
        ijk = np.rint(self.mask.world_to_voxel(mesh.tet_centroids())).astype(int)
        shape = np.array(self.mask.shape)
        ok = ((ijk >= 0) & (ijk < shape)).all(axis=1)
        inside = np.zeros(mesh.n_tets, bool)
        inside[ok] = np.asarray(self.mask.data)[tuple(ijk[ok].T)] > 0
        mask = inside & np.isin(mesh.tet_tags, self.tissues) if self.tissues else inside
        if not mask.any():
            raise NavigatorError(f"mask {self.mask.source}: no mesh elements of the requested tissue inside it")
        return mask
