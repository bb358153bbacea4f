"""Current-controlled electrodes: the complete electrode model (CEM) on a P1 head mesh.

Each pad/HD electrode l is a perfect conductor at an unknown potential U_l, attached to the
scalp triangles under its footprint (Gamma_l) through its sponge or gel layer, whose contact
conductance per area is g_l = sigma_layer / thickness (S/m^2; Robin-type contact impedance
z_l = 1/g_l). The weak form adds, for every electrode,

    int_{Gamma_l} g_l (v - U_l)(w - W_l) dS      and the constraint
    I_l = int_{Gamma_l} g_l (U_l - v) dS          (current entering the head, A).

In matrices: (K + sum_l G_l) v - sum_l b_l U_l = f_point,   a_l U_l - b_l^T v = I_l, with
G_l the g-weighted boundary mass matrix, b_l = int g_l phi_i and a_l = g_l |Gamma_l|. Point
electrodes (validation) inject their current at one scalp node (f_point).

Solution: A0 = K + sum_l G_l is SPD (one AMG hierarchy, reused). The last contact electrode
is the potential reference (U = 0); the others' potentials follow from the small Schur
complement S = D' - B'^T A0^{-1} B' (one solve per non-reference contact electrode, plus one
per point electrode when both kinds are present). These unit responses are kept, so any
other set of currents costs only a linear combination (tACS, leadfields, optimization).
Without contact electrodes (points only) the grounded Neumann system is solved.

Delivered current of contact electrode l: a_l U_l - b_l^T v (exact up to the solver
tolerance); it is reported in the summary and tested to match the prescription.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from navigator.core.errors import NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress
from navigator.fem.assembly import triangle_mass
from navigator.fem.solver import DEFAULT_RTOL
from navigator.fem.system import FemSystem
from navigator.tes.electrodes import PlacedElectrode

#: Relative tolerance on the sum of the electrode currents.
CURRENT_SUM_TOL = 1e-6


@dataclass
class ElectrodeSolution:
    """Potential for one set of currents.

    Attributes:
        v: (N,) node potential, V (reference: last contact electrode at 0 V; points only: zero mean).
        electrode_potentials: (L,) V of each electrode (point electrodes: their node's potential).
        delivered_currents: (L,) A actually entering the head through each electrode.
        iterations: CG iterations summed over the unit solves; residual: max relative residual.
        seconds: solve wall time (unit solves).
    """

    v: np.ndarray
    electrode_potentials: np.ndarray
    delivered_currents: np.ndarray
    iterations: int
    residual: float
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


class ElectrodeSystem:
    """FEM system with electrodes attached; solves for any currents with reused unit responses."""

    def __init__(
        self,
        mesh: Mesh,
        sigma_per_tet: np.ndarray,
        electrodes: list[PlacedElectrode],
        progress: Progress | None = None,
        *,
        solver: str = "amg",
        rtol: float = DEFAULT_RTOL,
    ):
        progress = ensure_progress(progress)
        if len(electrodes) < 2:
            raise NavigatorError("a tES montage needs at least two electrodes")
        self.electrodes = electrodes
        self.rtol = rtol
        n = mesh.n_nodes
        self.contact = [i for i, e in enumerate(electrodes) if not e.is_point]
        self.points = [i for i, e in enumerate(electrodes) if e.is_point]
        t0 = time.perf_counter()
        G = sp.csr_matrix((n, n))
        self.b = np.zeros((n, len(self.contact)))
        self.a = np.zeros(len(self.contact))
        for k, i in enumerate(self.contact):
            e = electrodes[i]
            Gl, bl, areas = triangle_mass(mesh.nodes, e.triangles, np.full(len(e.triangles), e.conductance), n)
            G = G + Gl
            self.b[:, k] = bl
            self.a[k] = e.conductance * areas.sum()
        t_bnd = time.perf_counter() - t0
        self.fem = FemSystem(mesh, sigma_per_tet, progress.sub(0.0, 0.3, "assembly"), solver=solver,
                             boundary_matrix=G if self.contact else None)
        self.fem.timings["electrode_assembly"] = t_bnd
        self._unit: np.ndarray | None = None  # (N, L) potentials per unit current
        self._unit_U: np.ndarray | None = None  # (L, L) electrode potentials per unit current
        self._stats = (0, 0.0, 0.0)
        self._progress = progress

    # ------------------------------------------------------------------ unit responses
    def _unit_responses(self) -> None:
        """Potentials for 1 A through each electrode, returned through the reference electrode."""
        if self._unit is not None:
            return
        progress = self._progress.sub(0.3, 1.0, "solving")
        n = self.fem.n_nodes
        L = len(self.electrodes)
        iters, res, secs = 0, 0.0, 0.0
        t0 = time.perf_counter()
        self.fem.setup()
        self.fem.timings["solver_setup"] = time.perf_counter() - t0
        unit = np.zeros((n, L))
        unit_U = np.zeros((L, L))
        if not self.contact:
            # Neumann with grounded node: current j enters at point j, leaves at the last point
            ref = self.points[-1]
            jobs = [i for i in self.points if i != ref]
            for m, i in enumerate(jobs):
                f = np.zeros(n)
                f[self.electrodes[i].node] += 1.0
                f[self.electrodes[ref].node] -= 1.0
                r = self.fem.solve(f, rtol=self.rtol)
                iters, res, secs = iters + r.iterations, max(res, r.residual), secs + r.seconds
                unit[:, i] = r.v
                progress.update((m + 1) / len(jobs), f"electrode {m + 1}/{len(jobs)}")
        else:
            ref_k = len(self.contact) - 1  # the last contact electrode is the reference (U = 0)
            cols = [self.b[:, k] for k in range(ref_k)]
            for i in self.points:
                e = np.zeros(n)
                e[self.electrodes[i].node] = 1.0
                cols.append(e)
            X = np.zeros((n, len(cols)))
            for m, c in enumerate(cols):
                r = self.fem.solve(c, rtol=self.rtol)
                iters, res, secs = iters + r.iterations, max(res, r.residual), secs + r.seconds
                X[:, m] = r.v
                progress.update((m + 1) / max(len(cols), 1), f"unit solve {m + 1}/{len(cols)}")
            Bp = self.b[:, :ref_k]
            Xc, Xp = X[:, :ref_k], X[:, ref_k:]
            S = np.diag(self.a[:ref_k]) - Bp.T @ Xc  # (ref_k, ref_k), SPD
            # unit current through contact electrode k (k < ref_k): U' = S^-1 e_k
            # unit current through point electrode p: U' = S^-1 (B'^T Xp e_p), v = Xc U' + Xp e_p
            for k in range(ref_k):
                Uc = np.linalg.solve(S, np.eye(ref_k)[:, k]) if ref_k else np.zeros(0)
                i = self.contact[k]
                unit[:, i] = Xc @ Uc
                unit_U[[self.contact[j] for j in range(ref_k)], i] = Uc
            for m, i in enumerate(self.points):
                Uc = np.linalg.solve(S, Bp.T @ Xp[:, m]) if ref_k else np.zeros(0)
                unit[:, i] = Xc @ Uc + Xp[:, m]
                unit_U[[self.contact[j] for j in range(ref_k)], i] = Uc
        for i in self.points:  # a point electrode's potential is its node's
            unit_U[i] = unit[self.electrodes[i].node]
        self._unit, self._unit_U = unit, unit_U
        self._stats = (iters, res, secs)
        self.fem.timings["solve"] = secs

    def solve(self, currents_a: np.ndarray) -> ElectrodeSolution:
        """Potential for the given electrode currents (A, entering the head; must sum to zero)."""
        I = np.asarray(currents_a, dtype=np.float64).reshape(-1)
        if len(I) != len(self.electrodes):
            raise ValueError(f"{len(I)} currents for {len(self.electrodes)} electrodes")
        check_currents(I, [e.name for e in self.electrodes])
        self._unit_responses()
        v = self._unit @ I
        U = self._unit_U @ I
        if not self.contact:
            shift = v.mean()
            v, U = v - shift, U - shift
        delivered = self.delivered_currents(v, U)
        iters, res, secs = self._stats
        return ElectrodeSolution(v, U, delivered, iters, res, secs, dict(self.fem.timings))

    def delivered_currents(self, v: np.ndarray, U: np.ndarray) -> np.ndarray:
        """Current entering the head through each electrode (A) for potentials v, U."""
        out = np.zeros(len(self.electrodes))
        for k, i in enumerate(self.contact):
            out[i] = self.a[k] * U[i] - self.b[:, k] @ v
        if self.points:
            Kv = self.fem.nodal_current(v)
            for i in self.points:
                out[i] = Kv[self.electrodes[i].node]
        return out


def check_currents(currents_a: np.ndarray, names: list[str]) -> None:
    """NavigatorError unless the currents sum to zero (relative to the largest) and are not all zero."""
    I = np.asarray(currents_a, float)
    peak = np.abs(I).max() if len(I) else 0.0
    if peak == 0.0:
        raise NavigatorError("all electrode currents are zero")
    if abs(I.sum()) > CURRENT_SUM_TOL * peak:
        listing = ", ".join(f"{n}={c * 1e3:g} mA" for n, c in zip(names, I))
        raise NavigatorError(f"electrode currents must sum to zero, got {I.sum() * 1e3:g} mA ({listing})")
