"""Finite-element field solver: P1 tetrahedra, piecewise-constant conductivity, AMG-PCG.

Modules: :mod:`conductivity` (S/m per tet), :mod:`assembly` (vectorized P1 assembly),
:mod:`solver` (AMG-preconditioned CG / direct), :mod:`system` (reusable FemSystem),
:mod:`outputs` (fields.msh, NIfTI, surface maps, summary.json), :mod:`analytic`
(concentric-sphere point-electrode solution), :mod:`spheres` (sphere meshes), :mod:`sampling`.
"""
