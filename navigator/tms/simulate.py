"""TMS simulation: E = -grad v - dA/dt on a tetrahedral head mesh.

The primary field D = dA/dt (V/m) is piecewise constant per tetrahedron (P0, like the
gradient of the P1 potential). By default it is the mean of the values at the element's four
nodes (the vertex quadrature of the element average, exact for linear fields; evaluating at
the N nodes instead of the ~5.5 N centroids makes the FMM about five times cheaper);
``d_at="centroids"`` evaluates it at the centroids instead (one-point quadrature). Both are
second-order accurate; on the 8 mm sphere validation mesh they give RDM 0.176 / 0.173 and MAG
0.020 / 0.013 (nodes / centroids), i.e. the P1 discretization error dominates. The potential v solves
the Neumann problem div(sigma (grad v + D)) = 0 with sigma (grad v + D) . n = 0 on the head
surface (:meth:`navigator.fem.system.FemSystem.rhs_impressed_field`), then E = -grad v - D.

Reported field: :func:`simulate_tms_workspace` reports (``field="recovered"``) the tissue-wise
superconvergent patch recovery of that element field (:mod:`navigator.fem.recovery`): a linear
least-squares fit per node and tissue, averaged back to the elements. On the sphere validation
it cuts the RDM from 0.136 to 0.044 at 6 mm elements (docs/validation.md). :func:`solve_tms`
returns the raw piecewise-constant field by default (``field="element"``; reciprocity-based
optimization relies on it); the raw field is always in ``TmsFields.E_element`` too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress
from navigator.core.workspace import Workspace
from navigator.targets.head import Head
from navigator.tms.coil import Coil
from navigator.fem.kernels import element_mean
from navigator.tms.primary_job import PrimaryFieldJob


@dataclass
class TmsFields:
    """Result of one TMS solve. v: (N,) V; E, D: (M, 3) V/m per tetrahedron (D = dA/dt);
    sigma: (M,) S/m; iterations/residual of the linear solve; timings in seconds per stage.
    E is the recovered field unless solved with ``field="element"``; E_element is the raw
    piecewise-constant -grad v - D (the same array as E for ``field="element"``)."""

    v: np.ndarray
    E: np.ndarray
    D: np.ndarray
    sigma: np.ndarray
    iterations: int
    residual: float
    timings: dict[str, float] = field(default_factory=dict)
    E_element: np.ndarray | None = None

    @property
    def magnE(self) -> np.ndarray:
        return np.linalg.norm(self.E, axis=1)


def solve_tms(mesh: Mesh, coil: Coil, pose: np.ndarray, didt: float, *, sigma: np.ndarray | None = None,
              conductivity_overrides: dict[int, float] | None = None, system=None, eps: float = 1e-3,
              method: str = "auto", d_at: str = "nodes", field: str = "element",
              progress: Progress | None = None) -> TmsFields:
    """Solve one TMS placement.

    Args:
        mesh: tetrahedral head mesh (mm).
        coil: coil model; pose: 4x4 coil-to-world matrix (mm); didt: A/s.
        sigma: (M,) S/m (default: SimNIBS conductivities of the mesh's tags with overrides).
        system: an existing :class:`navigator.fem.system.FemSystem` for this mesh and sigma
            (reuse it across placements). Without one, the system is assembled and its AMG
            hierarchy built while the primary field is computed in a child process
            (:mod:`navigator.tms.primary_job`; falls back to this process when not worthwhile).
        eps/method: primary-field FMM precision / "auto", "direct", "fmm".
        d_at: "nodes" (default; D per tet = mean of its nodal values) or "centroids".
        field: "element" (default; the raw P0 field, for which reciprocity with the ROI-mean
            functional is exact, as the optimizer needs) or "recovered" (tissue-wise patch
            recovery, see :func:`navigator.fem.recovery.recovered_element_field`; what
            :func:`simulate_tms_workspace` reports).
    """
    from navigator.fem.conductivity import conductivity_per_tet
    from navigator.fem.system import FemSystem

    progress = ensure_progress(progress)
    if field not in ("recovered", "element"):
        raise ValueError(f"field must be 'recovered' or 'element', not {field!r}")
    timings: dict[str, float] = {}
    if d_at not in ("nodes", "centroids"):
        raise ValueError(f"d_at must be 'nodes' or 'centroids', not {d_at!r}")
    points = mesh.nodes if d_at == "nodes" else mesh.tet_centroids()
    # With a system to build, the FMM runs in a child process meanwhile (primary_job docstring).
    job = PrimaryFieldJob.start(coil, pose, points, didt, method=method, eps=eps,
                                background=None if system is None else False)
    try:
        if system is None:
            t0 = time.perf_counter()
            if sigma is None:
                sigma = conductivity_per_tet(mesh, conductivity_overrides)
            system = FemSystem(mesh, sigma, progress=progress.sub(0.0, 0.25, "assembly"))
            timings["assembly"] = time.perf_counter() - t0
            job.release()  # the FMM (one core) now runs beside the AMG set-up (one core)
            t0 = time.perf_counter()
            progress.update(0.25, "solver set-up")
            system.setup()
            timings["solver_setup"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        values = job.result(progress.sub(0.3, 0.45, "primary field"))
        if job.in_background:
            timings["primary_field_wait"] = time.perf_counter() - t0
    finally:
        job.close()
    timings["primary_field"] = job.seconds
    D = values if d_at == "centroids" else element_mean(np.ascontiguousarray(mesh.tetrahedra, np.int64),
                                                       np.ascontiguousarray(values, np.float64))
    progress.update(0.5, "solving")
    t0 = time.perf_counter()
    rhs = system.rhs_impressed_nodal_field(values) if d_at == "nodes" else system.rhs_impressed_field(D)
    res = system.solve(rhs)
    timings["solve"] = time.perf_counter() - t0
    E_element = -system.gradient(res.v) - D
    E = E_element
    if field == "recovered":
        from navigator.fem.recovery import recovered_element_field

        progress.update(0.9, "field recovery")
        t0 = time.perf_counter()
        E = recovered_element_field(mesh, E_element)
        timings["recovery"] = time.perf_counter() - t0
    progress.update(1.0, "done")
    return TmsFields(v=res.v, E=E, D=D, sigma=system.sigma, iterations=res.iterations, residual=res.residual,
                     timings=timings, E_element=E_element)


def cortical_entry_point(mesh: Mesh, pose: np.ndarray, radius_mm: float = 4.0) -> np.ndarray | None:
    """First grey-matter point on the coil axis: the GM (tag 2) tetrahedron centroid within
    ``radius_mm`` of the coil's z axis (in front of the coil) that is closest to the coil
    centre; all tetrahedra when the mesh has no GM. None if the axis misses the tissue."""
    from navigator.core.tissues import GM

    sel = mesh.tet_tags == GM if np.any(mesh.tet_tags == GM) else np.ones(mesh.n_tets, bool)
    c = mesh.tet_centroids()[sel]
    z = pose[:3, 2]
    rel = c - pose[:3, 3]
    depth = rel @ z
    off = np.linalg.norm(rel - depth[:, None] * z, axis=1)
    ok = (depth > 0) & (off <= radius_mm)
    if not ok.any():
        return None
    return c[ok][np.argmin(depth[ok])]


@dataclass
class TmsRun:
    """A finished workspace TMS simulation: output folder, summary dict and the fields."""

    out_dir: Path
    summary: dict[str, Any]
    fields: TmsFields
    placement: Any


def simulate_tms_workspace(ws: Workspace, coil: Coil | str, *, target_spec: str | None = None,
                           pose: np.ndarray | None = None, handle_angle: float | None = None,
                           handle_dir: np.ndarray | None = None, distance: float = 4.0,
                           didt: float | None = None, intensity: float | None = None,
                           out_dir: str | Path | None = None, conductivity: dict[int, float] | None = None,
                           target_radius: float = 10.0, nifti: bool = True, eps: float = 1e-3,
                           progress: Progress | None = None) -> TmsRun:
    """Place a coil on a subject (target SPEC or explicit pose), solve and write the outputs.

    Exactly one of ``target_spec`` / ``pose`` and one of ``didt`` (A/s) / ``intensity``
    (% MSO, needs the coil's max dI/dt) must be given. The summary's target region is the
    given point when it lies inside the head more than 3 mm below the scalp (a cortical
    target), else the first grey-matter point on the coil axis. Outputs go to ``out_dir``
    (default ``SUBJECT_DIR/simulations/tms``).
    """
    import logging

    from navigator.core.errors import NavigatorError
    from navigator.fem.outputs import TargetRegion
    from navigator.tms.library import load_coil
    from navigator.tms.pose import CoilPlacement, casing_clearance, place_coil, resolve_target_point

    log = logging.getLogger(__name__)
    t_start = time.perf_counter()
    progress = ensure_progress(progress)
    if (target_spec is None) == (pose is None):
        raise NavigatorError("give either a target (--target) or an explicit pose (--pose)")
    if (didt is None) == (intensity is None):
        raise NavigatorError("give the intensity either as dI/dt (--didt, A/s) or as %MSO (--intensity)")
    head = Head.of(ws)
    coil = load_coil(coil) if isinstance(coil, (str, Path)) else coil
    if intensity is not None:
        didt = coil.didt_from_percent_mso(float(intensity))
    if not np.isfinite(didt) or didt <= 0:
        raise NavigatorError(f"dI/dt must be a positive number of A/s, got {didt}")
    progress.update(0.0, "reading head mesh")
    mesh = head.mesh
    scalp = head.scalp
    if pose is not None:
        from navigator.tms.primary import check_pose

        rot, centre = check_pose(pose)  # rounded rotations re-orthonormalized (navigator.export.rigid)
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = rot, centre
        placement = CoilPlacement(pose=np.asarray(pose, float), target=None, handle=np.asarray(pose, float)[:3, 1],
                                  spec={"pose": np.asarray(pose, float).tolist()})
    else:
        point, label = resolve_target_point(head, target_spec)
        placement = place_coil(scalp, point, handle_angle=handle_angle, handle_dir=handle_dir, distance=distance,
                               spec={"target": target_spec, "resolved": label,
                                     "handle_angle_deg": handle_angle,
                                     "handle_dir": None if handle_dir is None else list(map(float, handle_dir)),
                                     "distance_mm": distance})
    clearance = casing_clearance(coil, placement.pose, scalp)
    if clearance is not None and clearance.collides:
        log.warning("coil casing intersects the scalp (min clearance %.1f mm); increase --distance",
                    clearance.min_distance_mm)
    fields = solve_tms(mesh, coil, placement.pose, didt, conductivity_overrides=conductivity, eps=eps,
                       field="recovered", progress=progress.sub(0.05, 0.7, "solve"))
    # summary target region
    region_centre, region_kind = None, None
    if placement.target is not None and placement.scalp_point is not None:
        depth = float(np.dot(placement.scalp_point - placement.target, placement.normal))
        if depth > 3.0:
            region_centre, region_kind = placement.target, "given target"
    if region_centre is None:
        entry = cortical_entry_point(mesh, placement.pose)
        if entry is not None:
            region_centre, region_kind = entry, "first grey matter on the coil axis"
    region = None if region_centre is None else TargetRegion(tuple(float(x) for x in region_centre), target_radius)
    if out_dir is None:
        out_dir = ws.path("simulations") / "tms"
    out_dir = Path(out_dir)
    from navigator.core.atomic import atomic_write_json
    from navigator.fem.outputs import write_field_outputs

    info = {
        "type": "tms",
        "coil": {"name": coil.name, "source": coil.source, "model": coil.kind(),
                 "max_didt_A_per_s": coil.max_didt, "stimulator": coil.stimulator},
        "didt_A_per_s": float(didt),
        "percent_mso": None if not coil.max_didt else 100.0 * float(didt) / coil.max_didt,
        "placement": placement.to_json(),
        "target_region_kind": region_kind,
        "casing_clearance_mm": None if clearance is None else clearance.min_distance_mm,
        "casing_collides": None if clearance is None else clearance.collides,
        "solver": {"iterations": fields.iterations, "final_relative_residual": fields.residual},
    }
    summary = write_field_outputs(out_dir, mesh, fields.v, fields.E, fields.sigma, grids=head.output_grids(nifti),
                                  target=region,
                                  extra_tet_fields={"D": fields.D, "E_element": fields.E_element},
                                  summary_extra={"tms": info, "solver": info["solver"],
                                                 "timings_s": dict(fields.timings)},
                                  progress=progress.sub(0.7, 0.98, "outputs"), nifti=nifti)
    casing = coil.posed_casing(placement.pose)
    if casing is not None:
        from navigator.io.surfaces import write_surface

        write_surface(casing, out_dir / "coil_casing.surf.gii")
        info["casing_file"] = "coil_casing.surf.gii"
    atomic_write_json(out_dir / "pose.json", info)
    try:
        if out_dir.resolve().is_relative_to(ws.root.resolve()):
            ws.record_step(f"simulate_tms:{ws.relpath(out_dir)}",
                           {"coil": coil.name, "didt": float(didt), "placement": placement.spec},
                           inputs=[ws.path("mesh")], outputs=[out_dir / "summary.json", out_dir / "fields.msh"],
                           seconds=time.perf_counter() - t_start)
    except (OSError, ValueError) as exc:  # recording is best effort; outputs are written
        log.warning("could not record the simulation in the manifest: %s", exc)
    progress.update(1.0, "done")
    return TmsRun(out_dir=out_dir, summary=summary, fields=fields, placement=placement)
