"""Label image -> conforming tetrahedral head mesh, quality checks and surfaces.

Public entry points: :func:`navigator.meshing.mesher.labels_to_mesh`,
:func:`navigator.meshing.quality.mesh_quality` / :func:`~navigator.meshing.quality.check_mesh`,
:func:`navigator.meshing.surfaces.extract_surfaces` and the workspace step
:func:`navigator.meshing.step.mesh_workspace`.
"""
