"""Field recovery (navigator.fem.recovery): exactness for linear fields, tissue-wise jumps."""

from __future__ import annotations

import numpy as np
import pytest

from navigator.fem.recovery import recover_nodal_field, recovered_element_field
from navigator.fem.spheres import concentric_sphere_mesh


@pytest.fixture(scope="module")
def mesh():
    return concentric_sphere_mesh(radii=(40.0, 50.0), tags=(1, 2), size=8.0)


def _linear(x):
    return np.stack([1.0 + 0.02 * x[..., 0] - 0.01 * x[..., 2], 0.5 * np.ones(x.shape[:-1]),
                     0.03 * x[..., 1] + 0.01 * x[..., 0]], axis=-1)


def test_spr_reproduces_linear_fields(mesh):
    """Element values sampled at centroids of a linear field: SPR recovers the field exactly
    at every node (interior and boundary), so the recovered element field equals the raw one."""
    cent = mesh.tet_centroids()
    E = _linear(cent)
    corners = recover_nodal_field(mesh, E)
    assert corners.shape == (mesh.n_tets, 4, 3)
    np.testing.assert_allclose(corners, _linear(mesh.nodes[mesh.tetrahedra]), atol=1e-9)
    np.testing.assert_allclose(recovered_element_field(mesh, E), E, atol=1e-9)
    # the plain average is not exact at boundary nodes
    avg = recover_nodal_field(mesh, E, method="average")
    assert np.abs(avg - _linear(mesh.nodes[mesh.tetrahedra])).max() > 1e-3


def test_tissue_wise_recovery_keeps_jumps(mesh):
    """A field that is constant per tissue with a jump at the interface is recovered exactly
    tissue by tissue; recovering across tissues smears the jump."""
    vals = {1: np.array([1.0, 0.0, 0.0]), 2: np.array([0.0, 0.0, 5.0])}
    E = np.array([vals[int(t)] for t in mesh.tet_tags])
    for method in ("spr", "average"):
        np.testing.assert_allclose(recovered_element_field(mesh, E, method=method), E, atol=1e-9)
        assert np.abs(recovered_element_field(mesh, E, method=method, by_tissue=False) - E).max() > 0.1


def test_scalar_field_and_noise_reduction(mesh):
    """Scalar input keeps its shape; recovery of a noisy linear field reduces the error."""
    rng = np.random.default_rng(0)
    cent = mesh.tet_centroids()
    exact = _linear(cent)[:, 0]
    noisy = exact + 0.05 * rng.standard_normal(len(exact))
    rec = recovered_element_field(mesh, noisy)
    assert rec.shape == exact.shape
    assert np.linalg.norm(rec - exact) < 0.5 * np.linalg.norm(noisy - exact)
    with pytest.raises(ValueError):
        recover_nodal_field(mesh, noisy, method="quadratic")
    with pytest.raises(ValueError):
        recover_nodal_field(mesh, noisy[:-1])
