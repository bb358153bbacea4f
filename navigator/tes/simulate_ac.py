"""tACS, tRNS and temporal-interference (TI) simulations on a subject workspace.

All three are linear in the currents and quasi-static (see :mod:`navigator.tes.ti`), so they
reuse the tDCS machinery of :mod:`navigator.tes.simulate`:

* :func:`simulate_tacs_workspace` (``waveform="tacs"`` or ``"trns"``): one tDCS solve with the
  given currents read as the peak amplitude of a sinusoid (tACS) or as the standard deviation
  (default) or peak of a random-noise current (tRNS; every electrode follows the same noise
  waveform, scaled by its current). The outputs are those of ``simulate tdcs`` (the maps are
  amplitude maps); ``summary.json`` says ``"stimulus": "tacs"|"trns"`` and adds a block with
  the waveform parameters and the peak field per mA of injected current.
* :func:`simulate_ti` / :func:`simulate_ti_workspace`: two electrode pairs attached at once
  (one complete-electrode-model system, one AMG hierarchy, 3 unit solves); the carrier fields
  E1 (pair 1 on, pair 2 floating with zero current) and E2, the maximal envelope modulation
  TImax = :func:`navigator.tes.ti.ti_max_envelope` and the envelope along a direction
  (:func:`navigator.tes.ti.ti_envelope_along`): a fixed unit vector, or by default the cortical
  normal on the middle grey-matter surface. Outputs are written with the writers of
  :mod:`navigator.fem.outputs` / :mod:`navigator.io` (see :func:`write_ti_outputs`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress
from navigator.core.surface import Surface
from navigator.core.workspace import Workspace
from navigator.fem.outputs import OutputGrids, TargetRegion
from navigator.fem.solver import DEFAULT_RTOL
from navigator.targets.head import Head
from navigator.tes.electrodes import ElectrodeSpec, PlacedElectrode
from navigator.tes.ti import ti_envelope_along, ti_max_envelope

#: tRNS default frequency band (Hz): the usual high-frequency tRNS (Terney et al. 2008).
TRNS_BAND_HZ = (100.0, 640.0)


def _injected_ma(specs: list[ElectrodeSpec]) -> float:
    """Total current entering the head (sum of the positive currents), mA."""
    return float(sum(s.current_ma for s in specs if s.current_ma > 0))


# ---------------------------------------------------------------------- tACS / tRNS
def simulate_tacs_workspace(
    ws: Workspace,
    specs: list[ElectrodeSpec],
    out_dir: str | Path | None = None,
    *,
    waveform: str = "tacs",
    frequency_hz: float | None = None,
    band_hz: tuple[float, float] | None = None,
    amplitude: str = "peak",
    conductivity: dict[int, float] | None = None,
    target: TargetRegion | None = None,
    solver: str = "amg",
    rtol: float = DEFAULT_RTOL,
    nifti: bool = True,
    progress: Progress | None = None,
):
    """tACS / tRNS amplitude maps on a workspace (a :class:`~navigator.tes.simulate.TdcsResult`).

    Args:
        specs: electrodes; ``current_ma`` is the peak current of the sinusoid (tACS) or the
            noise's ``amplitude`` ("sd": standard deviation, "peak": largest |current|) for tRNS.
        waveform: "tacs" or "trns". frequency_hz: tACS frequency (recorded; quasi-static, so the
            maps do not depend on it). band_hz: tRNS band (recorded; default 100-640 Hz).
        out_dir: default ``SUBJECT_DIR/simulations/<waveform>``.
    """
    from navigator.core.atomic import atomic_write_json
    from navigator.tes.simulate import simulate_tdcs_workspace

    if waveform not in ("tacs", "trns"):
        raise ValueError(f"waveform must be 'tacs' or 'trns', not {waveform!r}")
    if amplitude not in ("sd", "peak"):
        raise ValueError(f"amplitude must be 'sd' or 'peak', not {amplitude!r}")
    if waveform == "tacs" and amplitude != "peak":
        raise NavigatorError("tACS currents are peak amplitudes (amplitude='peak')")
    if frequency_hz is not None and not (np.isfinite(frequency_hz) and frequency_hz > 0):
        raise NavigatorError(f"--frequency must be a positive number of Hz, got {frequency_hz:g}")
    if band_hz is not None:
        lo, hi = band_hz
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo < hi):
            raise NavigatorError(f"--band must be LOW-HIGH Hz with 0 <= LOW < HIGH, got {lo:g}-{hi:g}")
    if out_dir is None:
        out_dir = ws.path("simulations") / waveform
    res = simulate_tdcs_workspace(ws, specs, out_dir, conductivity=conductivity, target=target,
                                  solver=solver, rtol=rtol, nifti=nifti, progress=progress)
    s = res.summary
    injected = _injected_ma(specs)
    peak = s.get("E_gm_p99_9_V_per_m", s["E_roi_p99_9_V_per_m"])
    block: dict[str, Any] = {
        "current_amplitude": amplitude,
        "injected_current_mA": injected,
        "E_roi_p99_9_V_per_m_per_mA": peak / injected,
    }
    if waveform == "tacs":
        block.update({"frequency_Hz": frequency_hz,
                      "maps": "peak amplitude of the sinusoidal field (currents = peak currents, in phase "
                              "or in antiphase by sign)"})
    else:
        band = band_hz or TRNS_BAND_HZ
        block.update({"band_Hz": [float(band[0]), float(band[1])],
                      "maps": ("standard deviation" if amplitude == "sd" else "peak") + " of the field for a "
                              "noise current with that " + ("standard deviation" if amplitude == "sd" else "peak")
                              + " (currents in the SPECs); one noise waveform shared by all electrodes"})
    s["stimulus"] = waveform
    s[waveform] = block
    atomic_write_json(Path(out_dir) / "summary.json", s)
    return res


# ---------------------------------------------------------------------- temporal interference
@dataclass
class TiResult:
    """A TI simulation (SI units).

    Attributes:
        E1, E2: (M, 3) carrier field amplitudes of pair 1 and 2, V/m. TImax: (M,) maximal
        envelope modulation, V/m. TIdir: (M,) envelope along ``direction`` (None unless a fixed
        vector was given). v1, v2: (N,) potentials, V. summary: as written to summary.json.
    """

    mesh: Mesh
    sigma: np.ndarray
    electrodes: list[PlacedElectrode]
    system: Any
    v1: np.ndarray
    v2: np.ndarray
    E1: np.ndarray
    E2: np.ndarray
    TImax: np.ndarray
    TIdir: np.ndarray | None
    summary: dict[str, Any]


def parse_direction(text: str | None) -> str | np.ndarray:
    """``normal`` (the default) or ``x,y,z`` -> unit (3,) vector; NavigatorError otherwise."""
    if text is None or text.strip().lower() == "normal":
        return "normal"
    try:
        d = np.array([float(c) for c in text.split(",")])
    except ValueError:
        d = np.zeros(0)
    if d.shape != (3,) or not np.isfinite(d).all() or np.linalg.norm(d) == 0:
        raise NavigatorError(f"bad --direction {text!r}: expected 'normal' or a non-zero vector x,y,z")
    return d / np.linalg.norm(d)


def check_pair(specs: list[ElectrodeSpec], label: str) -> None:
    """NavigatorError unless ``specs`` is two electrodes whose currents sum to zero (not both zero)."""
    if len(specs) != 2:
        raise NavigatorError(f"{label} needs exactly two electrodes, got {len(specs)}")
    a, b = specs[0].current_ma, specs[1].current_ma
    if a == 0 and b == 0:
        raise NavigatorError(f"{label}: both currents are zero")
    if abs(a + b) > 1e-6 * max(abs(a), abs(b)):
        raise NavigatorError(f"{label}: currents must sum to zero, got {a:g} + {b:g} = {a + b:g} mA "
                             f"({specs[0].label}, {specs[1].label})")


def simulate_ti(
    mesh: Mesh,
    pair1: list[ElectrodeSpec],
    pair2: list[ElectrodeSpec],
    out_dir: str | Path | None = None,
    *,
    direction: str | np.ndarray = "normal",
    conductivity: dict[int, float] | None = None,
    eeg_positions: dict[str, np.ndarray] | None = None,
    grids: OutputGrids | None = None,
    target: TargetRegion | None = None,
    solver: str = "amg",
    rtol: float = DEFAULT_RTOL,
    nifti: bool = True,
    nifti_spacing_mm: float = 1.0,
    progress: Progress | None = None,
    field: str = "recovered",
) -> TiResult:
    """Temporal interference of two current-controlled pairs (Grossman et al. 2017).

    Both pairs are attached to the head throughout (the other pair's electrodes float with zero
    current, as with two isolated stimulators); one FEM system and preconditioner serve both.
    ``direction``: "normal" (envelope along the cortical normal, middle-GM surface only) or a
    unit (3,) vector (then also per tetrahedron, "TIdir"). ``field``: as in
    :func:`navigator.tes.simulate.simulate_tdcs`.
    """
    from navigator.fem.conductivity import conductivity_per_tet
    from navigator.tes.cem import ElectrodeSystem
    from navigator.tes.simulate import place_montage

    if field not in ("recovered", "element"):
        raise ValueError(f"field must be 'recovered' or 'element', not {field!r}")
    check_pair(pair1, "pair 1")
    check_pair(pair2, "pair 2")
    if not isinstance(direction, str):
        direction = np.asarray(direction, float).reshape(3)
        direction = direction / np.linalg.norm(direction)
    elif direction != "normal":
        raise ValueError(f"direction must be 'normal' or a vector, not {direction!r}")
    progress = ensure_progress(progress)
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    sigma = conductivity_per_tet(mesh, conductivity)
    specs = list(pair1) + list(pair2)
    placed = place_montage(mesh, specs, eeg_positions)
    timings["place_electrodes"] = time.perf_counter() - t0
    system = ElectrodeSystem(mesh, sigma, placed, progress.sub(0.0, 0.6, "FEM"), solver=solver, rtol=rtol)
    I = np.array([s.current_ma for s in specs]) * 1e-3
    sol1 = system.solve(np.concatenate([I[:2], [0.0, 0.0]]))
    sol2 = system.solve(np.concatenate([[0.0, 0.0], I[2:]]))  # reuses the unit responses: no new solve
    timings.update(sol1.timings)
    t0 = time.perf_counter()
    E1 = -system.fem.gradient(sol1.v)
    E2 = -system.fem.gradient(sol2.v)
    if field == "recovered":
        from navigator.fem.recovery import recovered_element_field

        E1, E2 = recovered_element_field(mesh, E1), recovered_element_field(mesh, E2)
    TImax = ti_max_envelope(E1, E2)
    TIdir = None if isinstance(direction, str) else ti_envelope_along(E1, E2, direction)
    timings["fields"] = time.perf_counter() - t0
    electrodes_json = []
    for k, (e, U1, U2, I1, I2) in enumerate(zip(placed, sol1.electrode_potentials, sol2.electrode_potentials,
                                                 sol1.delivered_currents, sol2.delivered_currents)):
        d = e.spec.to_json()
        own = 1 if k < 2 else 2
        d.update({
            "pair": own, "center_mm": e.center.tolist(), "normal": e.normal.tolist(),
            "contact_area_mm2": e.contact_area_mm2, "n_contact_triangles": len(e.triangles),
            "potential_V": float(U1 if own == 1 else U2),
            "delivered_current_mA": float((I1 if own == 1 else I2) * 1e3),
            "current_at_other_frequency_mA": float((I2 if own == 1 else I1) * 1e3),
        })
        electrodes_json.append(d)
    extra: dict[str, Any] = {
        "stimulus": "ti",
        "direction": "normal" if isinstance(direction, str) else direction.tolist(),
        "electrodes": electrodes_json,
        "solver": {"method": solver, "backend": system.fem.solver.backend, "rtol": rtol,
                   "iterations": sol1.iterations, "final_relative_residual": sol1.residual,
                   "unit_solves": max(len(placed) - 1, 1), "systems_assembled": 1},
    }
    summary: dict[str, Any]
    if out_dir is not None:
        t0 = time.perf_counter()
        summary = write_ti_outputs(out_dir, mesh, sigma, sol1.v, sol2.v, E1, E2, TImax, direction, TIdir,
                                   grids=grids, target=target, nifti=nifti,
                                   nifti_spacing_mm=nifti_spacing_mm, progress=progress.sub(0.6, 1.0, "outputs"))
        timings.update({f"output_{k}": v for k, v in summary.pop("_timings").items()})
        timings["outputs_total"] = time.perf_counter() - t0
    else:
        summary = ti_summary(mesh, sigma, E1, E2, TImax, TIdir, target=target)
    summary.update(extra)
    timings["total"] = time.perf_counter() - t_all
    summary["timings_s"] = timings
    if out_dir is not None:
        from navigator.core.atomic import atomic_write_json

        summary["files"] = summary.pop("files") + ["summary.json"]
        atomic_write_json(Path(out_dir) / "summary.json", summary)
    return TiResult(mesh, sigma, placed, system, sol1.v, sol2.v, E1, E2, TImax, TIdir, summary)


def _as_vector(scalar: np.ndarray) -> np.ndarray:
    """(M,) -> (M, 3) with the value in x, so that :func:`field_summary` (|E|-based) summarizes it."""
    out = np.zeros((len(scalar), 3))
    out[:, 0] = scalar
    return out


def ti_summary(
    mesh: Mesh, sigma: np.ndarray, E1: np.ndarray, E2: np.ndarray, TImax: np.ndarray, TIdir: np.ndarray | None,
    *, target: TargetRegion | None = None, surface=None, surface_TInormal: np.ndarray | None = None,
) -> dict[str, Any]:
    """Summary of a TI field with the definitions of :func:`navigator.fem.outputs.field_summary`.

    Keys: TImax_roi_p99_9_V_per_m (and TImax_gm_p99_9_V_per_m when the mesh has GM),
    TImax_roi_max/mean, focality_mm3 (ROI volume with TImax >= 50 % / 75 % of its p99.9),
    target {mean_TImax_V_per_m, mean_TInormal_V_per_m (middle-GM vertices in the sphere),
    mean_TIdir_V_per_m, volume_mm3}, carriers {pair1, pair2: E_roi_p99_9/max/mean, target mean
    |E|}, conductivity_S_per_m.
    """
    from navigator.fem.outputs import field_summary

    base = field_summary(mesh, _as_vector(TImax), sigma, target=target, surface=surface,
                         surface_normE=surface_TInormal)
    out: dict[str, Any] = {"roi_tags": base["roi_tags"]}
    if "E_gm_p99_9_V_per_m" in base:
        out["TImax_gm_p99_9_V_per_m"] = base["E_gm_p99_9_V_per_m"]
    out.update({
        "TImax_roi_p99_9_V_per_m": base["E_roi_p99_9_V_per_m"],
        "TImax_roi_max_V_per_m": base["E_roi_max_V_per_m"],
        "TImax_roi_mean_V_per_m": base["E_roi_mean_V_per_m"],
        "focality_mm3": base["focality_mm3"],
    })
    if "target" in base:
        t = base["target"]
        tgt = {k: t[k] for k in ("name", "center_mm", "radius_mm", "volume_mm3")}
        tgt["mean_TImax_V_per_m"] = t["mean_magnE_V_per_m"]
        tgt["mean_TInormal_V_per_m"] = t["mean_normE_V_per_m"]
        if TIdir is not None:
            tgt["mean_TIdir_V_per_m"] = field_summary(mesh, _as_vector(TIdir), sigma,
                                                      target=target)["target"]["mean_magnE_V_per_m"]
        out["target"] = tgt
    if TIdir is not None:
        d = field_summary(mesh, _as_vector(TIdir), sigma)
        out["TIdir_roi_p99_9_V_per_m"] = d["E_roi_p99_9_V_per_m"]
    carriers = {}
    for name, E in (("pair1", E1), ("pair2", E2)):
        c = field_summary(mesh, E, sigma, target=target)
        carriers[name] = {k: c[k] for k in ("E_roi_p99_9_V_per_m", "E_roi_max_V_per_m", "E_roi_mean_V_per_m")}
        if "target" in c:
            carriers[name]["target_mean_magnE_V_per_m"] = c["target"]["mean_magnE_V_per_m"]
    out["carriers"] = carriers
    out["conductivity_S_per_m"] = base["conductivity_S_per_m"]
    return out


def write_ti_outputs(
    out_dir: str | Path, mesh: Mesh, sigma: np.ndarray, v1: np.ndarray, v2: np.ndarray, E1: np.ndarray,
    E2: np.ndarray, TImax: np.ndarray, direction: str | np.ndarray, TIdir: np.ndarray | None, *,
    grids: OutputGrids | None = None, target: TargetRegion | None = None, nifti: bool = True,
    nifti_spacing_mm: float = 1.0, progress: Progress | None = None,
) -> dict[str, Any]:
    """Write a TI simulation into ``out_dir`` (see docs/tdcs.md); returns the summary (without
    solver and electrode entries; ``files`` and ``_timings`` included, summary.json not written).

    ``fields.msh`` (gmsh 2.2): ``$NodeData`` "v1", "v2" (V); ``$ElementData`` "TImax", "E1",
    "E2", "magnE1", "magnE2", "conductivity" (+ "TIdir"). ``middle_gm_fields.surf.gii``:
    "TImax", "TInormal" (envelope along the cortical normal), "magnE1", "magnE2" (+ "TIdir").
    NIfTI (subject space): TImax, magnE1, magnE2, E1, E2 (4-D) (+ TIdir); TImax_MNI with MNI
    transforms.
    """
    from navigator.core.tissues import GM
    from navigator.fem.outputs import write_fields_msh
    from navigator.fem.sampling import locate_points

    progress = ensure_progress(progress)
    grids = grids or OutputGrids()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    files: list[str] = []
    magnE1, magnE2 = np.linalg.norm(E1, axis=1), np.linalg.norm(E2, axis=1)

    t0 = time.perf_counter()
    progress.update(0.0, "writing fields.msh")
    tet_fields = {"TImax": TImax, "E1": E1, "E2": E2, "magnE1": magnE1, "magnE2": magnE2, "conductivity": sigma}
    if TIdir is not None:
        tet_fields["TIdir"] = TIdir
    write_fields_msh(mesh, out / "fields.msh", {"v1": v1, "v2": v2}, tet_fields)
    files.append("fields.msh")
    timings["write_msh"] = time.perf_counter() - t0

    surface = TInormal_s = None
    if grids.middle_gm is not None:
        from navigator.io.surfaces import write_surface

        t0 = time.perf_counter()
        progress.update(0.3, "sampling middle grey-matter surface")
        surface = Surface(grids.middle_gm.vertices, grids.middle_gm.faces)
        mask = mesh.tet_tags == GM if np.any(mesh.tet_tags == GM) else None
        tet, _ = locate_points(mesh, surface.vertices, tet_mask=mask)  # as fem.outputs.surface_fields
        e1, e2 = E1[tet], E2[tet]
        TInormal_s = ti_envelope_along(e1, e2, surface.vertex_normals())
        surface.data = {"TImax": ti_max_envelope(e1, e2), "TInormal": TInormal_s,
                        "magnE1": np.linalg.norm(e1, axis=1), "magnE2": np.linalg.norm(e2, axis=1)}
        if TIdir is not None:
            surface.data["TIdir"] = TIdir[tet]
        write_surface(surface, out / "middle_gm_fields.surf.gii")
        files.append("middle_gm_fields.surf.gii")
        timings["surface"] = time.perf_counter() - t0

    if nifti:
        t0 = time.perf_counter()
        maps = {"TImax": TImax, "magnE1": magnE1, "magnE2": magnE2, "E1": E1, "E2": E2}
        if TIdir is not None:
            maps["TIdir"] = TIdir
        files += _write_nifti_maps(out, mesh, maps, grids, nifti_spacing_mm, mni=("TImax",),
                                   progress=progress.sub(0.4, 0.95, "NIfTI"))
        timings["nifti"] = time.perf_counter() - t0

    summary: dict[str, Any] = {"n_nodes": mesh.n_nodes, "n_tets": mesh.n_tets}
    summary.update(ti_summary(mesh, sigma, E1, E2, TImax, TIdir, target=target, surface=surface,
                              surface_TInormal=TInormal_s))
    if surface is not None:
        summary["middle_gm"] = {
            "TImax_p99_9_V_per_m": float(np.percentile(surface.data["TImax"], 99.9)),
            "TInormal_p99_9_V_per_m": float(np.percentile(TInormal_s, 99.9)),
        }
    summary["files"] = files
    summary["_timings"] = timings
    progress.update(1.0, "outputs written")
    return summary


def _write_nifti_maps(out: Path, mesh: Mesh, maps: dict[str, np.ndarray], grids: OutputGrids, spacing: float,
                      mni: tuple[str, ...] = (), progress: Progress | None = None) -> list[str]:
    """Per-tet maps ((M,) or (M, 3)) to NIfTI on the grid of :mod:`navigator.fem.outputs` (the T1
    grid, else a ``spacing`` mm grid over the mesh); names in ``mni`` also on the MNI grid."""
    from navigator.core.volume import Volume
    from navigator.fem.sampling import bbox_grid, rasterize_tets
    from navigator.io.images import save_nifti

    if grids.image_grid is not None:
        shape, affine = grids.image_grid
    else:
        affine, shape = bbox_grid(mesh, spacing)
    flat, tet, _ = rasterize_tets(mesh, affine, shape, progress)
    n_vox = int(np.prod(shape))
    written, vols = [], {}
    for name, values in maps.items():
        values = np.asarray(values)
        comps = 3 if values.ndim == 2 else 1
        data = np.zeros((n_vox, comps), np.float32)
        data[flat] = values[tet].reshape(len(flat), comps)
        vols[name] = Volume(data.reshape(*shape, comps) if comps > 1 else data.reshape(shape), affine)
        save_nifti(vols[name], out / f"{name}.nii.gz", dtype=np.float32)
        written.append(f"{name}.nii.gz")
    if mni:
        grids.warn_mni_missing()
        if grids.mni is not None:
            for name in mni:
                save_nifti(grids.mni.image_to_mni(vols[name]), out / f"{name}_MNI.nii.gz", dtype=np.float32)
                written.append(f"{name}_MNI.nii.gz")
    return written


def simulate_ti_workspace(
    ws: Workspace,
    pair1: list[ElectrodeSpec],
    pair2: list[ElectrodeSpec],
    out_dir: str | Path | None = None,
    **kwargs,
) -> TiResult:
    """:func:`simulate_ti` on a subject's :class:`~navigator.targets.head.Head` (mesh, EEG
    positions, output grids); ``out_dir`` defaults to ``simulations/ti``."""
    from navigator.tes.simulate import eeg_positions

    check_pair(pair1, "pair 1")  # before reading the mesh: fail fast on bad input
    check_pair(pair2, "pair 2")
    head = Head.of(ws)
    if out_dir is None:
        out_dir = ws.path("simulations") / "ti"
    return simulate_ti(head.mesh, pair1, pair2, out_dir, eeg_positions=eeg_positions(head),
                       grids=head.output_grids(kwargs.get("nifti", True)), **kwargs)

