"""Head coordinates and targets on synthetic heads with known geometry."""

from __future__ import annotations

import numpy as np
import pytest

from navigator.core.errors import InputError, NavigatorError
from navigator.core.surface import Surface
from navigator.core.transforms import MniTransform
from navigator.io.transforms import save_mni_transform
from navigator.core.volume import Volume
from navigator.targets.eeg import Fiducials, construct_10_10
from navigator.targets.geometry import SurfaceQuery, polyline_length, surface_arc

R = 90.0


def sphere_surface(radius: float = R, step: float = 1.5, centre=(0.0, 0.0, 0.0), scale=(1.0, 1.0, 1.0)) -> Surface:
    from skimage.measure import marching_cubes

    ext = max(radius * max(scale), 1) + 6
    g = np.arange(-ext, ext + step / 2, step)
    X, Y, Z = np.meshgrid(g, g, g, indexing="ij")
    f = np.sqrt((X / scale[0]) ** 2 + (Y / scale[1]) ** 2 + (Z / scale[2]) ** 2) - radius
    v, faces, _, _ = marching_cubes(f, 0.0, spacing=(step, step, step))
    v = v - ext + np.asarray(centre)
    s = Surface(v, faces)
    if (s.face_normals() * (s.vertices[s.faces].mean(1) - centre)).sum(1).mean() < 0:
        s = Surface(v, faces[:, ::-1])
    return s


def identity_transform(half: float = 120.0, step: float = 4.0, shift=(0.0, 0.0, 0.0)) -> MniTransform:
    """subject = MNI + shift, as deformation fields on coarse grids."""
    n = int(2 * half / step) + 1
    aff = np.diag([step, step, step, 1.0])
    aff[:3, 3] = -half
    ijk = np.stack(np.meshgrid(*(np.arange(n),) * 3, indexing="ij"), -1).reshape(-1, 3)
    world = ijk * step - half
    shift = np.asarray(shift, float)
    s2m = Volume((world - shift).reshape(n, n, n, 3).astype(np.float32), aff)
    m2s = Volume((world + shift).reshape(n, n, n, 3).astype(np.float32), aff)
    a = np.eye(4)
    a[:3, 3] = -shift
    return MniTransform(a, s2m, m2s)


@pytest.fixture(scope="module")
def sphere() -> Surface:
    return sphere_surface()


@pytest.fixture(scope="module")
def sphere_eeg(sphere):
    fid = Fiducials([0, R, 0], [0, -R, 0], [-R, 0, 0], [R, 0, 0])
    return fid, construct_10_10(sphere, fid)


def test_arc_length_on_sphere(sphere) -> None:
    arc = surface_arc(sphere, [0, R, 0], [0, -R, 0], [0, 0, R])
    assert polyline_length(arc) == pytest.approx(np.pi * R, rel=2e-3)
    assert arc[len(arc) // 2][2] > 80  # over the top, not under the chin


def test_arc_over_a_broken_scalp_section(sphere) -> None:
    """A hole in the scalp surface on the arc's way (a torn surface or a cut field of view on a
    real scan) leaves the plane's section open there, so the section joins the points the other
    way round: the arc still goes over the top through ``via`` (the circle projected onto the
    surface, which steps round the hole's edge) instead of under the chin."""
    c = sphere.vertices[sphere.faces].mean(axis=1)
    keep = ~((np.abs(c[:, 0]) < 3.0) & (c[:, 2] > 80))  # a gap across the midline at the vertex
    holed = Surface(sphere.vertices, sphere.faces[keep])
    arc = surface_arc(holed, [0, R, 0], [0, -R, 0], [0, 0, R])
    assert np.allclose(arc[0], [0, R, 0]) and np.allclose(arc[-1], [0, -R, 0])
    assert polyline_length(arc) == pytest.approx(np.pi * R, rel=3e-2)
    assert arc[len(arc) // 2][2] > 80 and np.abs(arc[:, 0]).max() < 4.0
    r = np.linalg.norm(arc, axis=1)
    assert np.abs(r - R).max() < 1.0  # on the surface


def test_10_10_on_sphere_matches_spherical_geometry(sphere_eeg) -> None:
    _, eeg = sphere_eeg
    a = np.deg2rad(54.0)  # 30 % of a half great circle
    expected = {
        "Cz": [0, 0, R],
        "Fz": [0, R * np.cos(a), R * np.sin(a)],
        "Pz": [0, -R * np.cos(a), R * np.sin(a)],
        "C3": [-R * np.cos(a), 0, R * np.sin(a)],
        "C4": [R * np.cos(a), 0, R * np.sin(a)],
        "T7": [-R * np.cos(np.deg2rad(18)), 0, R * np.sin(np.deg2rad(18))],
        "Fpz": [0, R * np.cos(np.deg2rad(18)), R * np.sin(np.deg2rad(18))],
    }
    for name, p in expected.items():
        assert np.linalg.norm(eeg[name] - np.array(p)) < 0.5, name
    # the 10 % ring is a horizontal circle at the height of Fpz/T7: Fp1 is 18 deg from Fpz round it
    rho = R * np.cos(np.deg2rad(18))
    fp1 = np.array([-rho * np.sin(np.deg2rad(18)), rho * np.cos(np.deg2rad(18)), R * np.sin(np.deg2rad(18))])
    assert np.linalg.norm(eeg["Fp1"] - fp1) < 0.5


def test_10_10_names_and_hemispheres(sphere_eeg, sphere) -> None:
    _, eeg = sphere_eeg
    standard = ["Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz", "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz", "F2", "F4",
                "F6", "F8", "FT7", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1",
                "Cz", "C2", "C4", "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "TP8", "P7",
                "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8", "PO7", "PO3", "POz", "PO4", "PO8", "O1", "Oz", "O2",
                "F9", "F10", "T9", "T10", "P9", "P10", "TP9", "TP10", "FT9", "FT10"]
    for n in standard:
        p = eeg[n]
        assert abs(np.linalg.norm(p) - R) < 0.6, n  # on the scalp
        digits = n.rstrip("z").lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        if n.endswith("z"):
            assert abs(p[0]) < 0.5, n
        elif int(digits) % 2 == 1:
            assert p[0] < -1, n  # odd = left = negative x in RAS
        else:
            assert p[0] > 1, n
    # mirror symmetry on a symmetric head
    assert np.allclose(eeg["F3"] * [-1, 1, 1], eeg["F4"], atol=0.5)
    # F3 lies between F7 and Fz, anterior to C3
    assert eeg["F7"][0] < eeg["F3"][0] < eeg["Fz"][0] and eeg["F3"][1] > eeg["C3"][1]
    with pytest.raises(NavigatorError, match="did you mean"):
        eeg["F33"]


# ------------------------------------------------------------------------------ EEG 10-05
#: the left half of every 10-05 row (Oostenveld & Praamstra 2001), from the lowest position to the
#: midline, written out: the test's own table, not the construction's naming function
LEFT_10_05 = {
    "N": "N1 N1h Nz", "NFp": "NFp1 NFp1h NFpz", "Fp": "Fp1 Fp1h Fpz",
    "AFp": "AFp9 AFp9h AFp7 AFp7h AFp5 AFp5h AFp3 AFp3h AFp1 AFp1h AFpz",
    "AF": "AF9 AF9h AF7 AF7h AF5 AF5h AF3 AF3h AF1 AF1h AFz",
    "AFF": "AFF9 AFF9h AFF7 AFF7h AFF5 AFF5h AFF3 AFF3h AFF1 AFF1h AFFz",
    "F": "F9 F9h F7 F7h F5 F5h F3 F3h F1 F1h Fz",
    "FFC": "FFT9 FFT9h FFT7 FFT7h FFC5 FFC5h FFC3 FFC3h FFC1 FFC1h FFCz",
    "FC": "FT9 FT9h FT7 FT7h FC5 FC5h FC3 FC3h FC1 FC1h FCz",
    "FCC": "FTT9 FTT9h FTT7 FTT7h FCC5 FCC5h FCC3 FCC3h FCC1 FCC1h FCCz",
    "C": "T9 T9h T7 T7h C5 C5h C3 C3h C1 C1h Cz",
    "CCP": "TTP9 TTP9h TTP7 TTP7h CCP5 CCP5h CCP3 CCP3h CCP1 CCP1h CCPz",
    "CP": "TP9 TP9h TP7 TP7h CP5 CP5h CP3 CP3h CP1 CP1h CPz",
    "CPP": "TPP9 TPP9h TPP7 TPP7h CPP5 CPP5h CPP3 CPP3h CPP1 CPP1h CPPz",
    "P": "P9 P9h P7 P7h P5 P5h P3 P3h P1 P1h Pz",
    "PPO": "PPO9 PPO9h PPO7 PPO7h PPO5 PPO5h PPO3 PPO3h PPO1 PPO1h PPOz",
    "PO": "PO9 PO9h PO7 PO7h PO5 PO5h PO3 PO3h PO1 PO1h POz",
    "POO": "POO9 POO9h POO7 POO7h POO5 POO5h POO3 POO3h POO1 POO1h POOz",
    "O": "O1 O1h Oz", "OI": "OI1 OI1h OIz", "I": "I1 I1h Iz",
}


def _right_name(name: str) -> str:
    """Left label -> its right twin (odd number + 1, "h" kept): C3h -> C4h, T9 -> T10."""
    import re

    m = re.fullmatch(r"([A-Za-z]+?)(\d+)(h?)", name)
    return f"{m.group(1)}{int(m.group(2)) + 1}{m.group(3)}"


def _expected_10_05(radius: float) -> dict[str, np.ndarray]:
    """Every 10-05 position on a sphere with the fiducials on its equator, from spherical geometry:
    midline and coronal great circles in 5 % steps (9 degrees), the 0/5/10 % circumferences as
    horizontal circles at 0/9/18 degrees elevation in 9-degree azimuth steps, and each row an
    arc of the circle through X7, Xz and X8 cut in eighths of the X7-Xz angle."""
    d = np.deg2rad
    out: dict[str, np.ndarray] = {}

    def midline(r):
        return radius * np.array([0.0, np.cos(d(9 * r)), np.sin(d(9 * r))])

    def ring(level, k):  # left half, k-th 5 % step from the front
        rho, h = radius * np.cos(d(9 * level)), radius * np.sin(d(9 * level))
        return np.array([-rho * np.sin(d(9 * k)), rho * np.cos(d(9 * k)), h])

    for r, (row, text) in enumerate(LEFT_10_05.items()):
        names = text.split()
        for i, name in enumerate(names):
            lateral = len(names) - 1 - i
            if lateral == 0:
                p = midline(r)
            elif len(names) == 3:  # N, NFp, Fp rows (front) and O, OI, I (back) lie on the rings
                level, k = (r, lateral) if r <= 2 else (20 - r, 20 - lateral)
                p = ring(level, k)
            elif lateral >= 8:
                p = ring(10 - lateral, r)
            elif row == "C":
                b = d(9 * (10 - lateral))
                p = radius * np.array([-np.cos(b), 0.0, np.sin(b)])
            else:  # circle through A = X7, B = Xz and C = X8: rotate A towards B about its centre
                a, b_ = ring(2, r), midline(r)
                c = a * [-1, 1, 1]
                n = np.cross(b_ - a, c - a)
                n /= np.linalg.norm(n)
                centre = np.array([0.0, *np.linalg.solve(
                    [[b_[1] - a[1], b_[2] - a[2]], [n[1], n[2]]],
                    [0.5 * (b_ @ b_ - a @ a), n @ a])])
                u, v = a - centre, b_ - centre
                angle = np.arccos(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
                axis = np.cross(u, v) / np.linalg.norm(np.cross(u, v))
                t = angle * (8 - lateral) / 8
                p = centre + u * np.cos(t) + np.cross(axis, u) * np.sin(t)
            out[name] = p
            if lateral:
                out[_right_name(name)] = p * [-1, 1, 1]
    return out


@pytest.fixture(scope="module")
def sphere_eeg_10_05(sphere):
    from navigator.targets.eeg import construct_10_05

    fid = Fiducials([0, R, 0], [0, -R, 0], [-R, 0, 0], [R, 0, 0])
    return construct_10_05(sphere, fid)


def test_10_05_names_and_positions_on_sphere_match_spherical_geometry(sphere_eeg_10_05) -> None:
    """All 345 positions of the 10-05 system: each name of the written-out table at its analytic
    place (a wrong label moves a position by >= 5 mm, the tolerance is 0.6 mm)."""
    eeg = sphere_eeg_10_05
    expected = _expected_10_05(R)
    assert len(expected) == 345
    built = set(eeg.names) | {"Nz", "Iz"}
    assert built == set(expected), (sorted(built - set(expected)), sorted(set(expected) - built))
    assert set(eeg.fiducials) == {"Nz", "Iz", "LPA", "RPA"} and eeg.system == "10-05"
    err = {n: float(np.linalg.norm(eeg[n] - p)) for n, p in expected.items()}
    worst = max(err, key=err.get)
    assert err[worst] < 0.6, (worst, err[worst])
    # the nearest other position is several mm away, so a swapped label could not pass
    P = np.array(list(expected.values()))
    D = np.linalg.norm(P[:, None] - P[None], axis=2) + np.eye(len(P)) * 1e9
    assert D.min() > 4.0
    assert np.linalg.norm(eeg["T9"] - eeg["LPA"]) < 1e-6 and np.linalg.norm(eeg["T10"] - eeg["RPA"]) < 1e-6


def test_10_05_contains_the_10_10_positions_exactly(sphere_eeg, sphere_eeg_10_05) -> None:
    from navigator.targets.eeg import is_10_10_name, name_10_05

    _, ten = sphere_eeg
    for n in ten.labels():
        assert np.array_equal(ten[n], sphere_eeg_10_05[n]), n
    extra = [n for n in sphere_eeg_10_05.names if is_10_10_name(n) and n not in ten.names]
    assert sorted(extra) == sorted(["AF5", "AF1", "AF2", "AF6", "PO5", "PO1", "PO2", "PO6"])
    assert all(is_10_10_name(n) for n in ten.labels())
    assert not any(is_10_10_name(n) for n in ("AFF1h", "FCC3", "NFpz", "T9h", "OI1", "C5h"))
    assert (name_10_05(9, 3), name_10_05(9, 4, right=True), name_10_05(12, 9), name_10_05(0, 1, right=True)) == \
        ("FCC3h", "FCC4", "TP9h", "N2h")


def test_implausible_fiducials_rejected(sphere) -> None:
    swapped = Fiducials([0, R, 0], [0, -R, 0], [R, 0, 0], [-R, 0, 0])
    with pytest.raises(NavigatorError, match="left/right swapped"):
        construct_10_10(sphere, swapped)


def head_surface(centre, face_cut_y: float | None = None, step: float = 1.5) -> Surface:
    """An ellipsoidal head of adult size (semi-axes 88 x 106 x 95 mm, centre 18 mm behind
    ``centre``), optionally 'defaced': everything in front of y = centre + face_cut_y removed
    (a closed surface with a flat cut, as a defaced scan's scalp)."""
    from skimage.measure import marching_cubes

    c = np.asarray(centre, float) + [0.0, -18.0, 0.0]
    g = np.arange(-120.0, 120.0 + step / 2, step)
    X, Y, Z = np.meshgrid(g, g, g, indexing="ij")
    f = np.sqrt((X / 88.0) ** 2 + (Y / 106.0) ** 2 + (Z / 95.0) ** 2) - 1.0
    if face_cut_y is not None:
        f = np.maximum(f, (Y - 18.0 - face_cut_y) / 106.0)
    v, faces, _, _ = marching_cubes(f, 0.0, spacing=(step, step, step))
    v = v - 120.0 + c
    s = Surface(v, faces)
    if (s.face_normals() * (s.vertices[s.faces].mean(1) - c)).sum(1).mean() < 0:
        s = Surface(v, faces[:, ::-1])
    return s


def test_auto_fiducials_follow_the_transform() -> None:
    from navigator.targets.fiducials import MNI_FIDUCIAL_RAYS, find_fiducials

    shift = np.array([5.0, -12.0, 20.0])
    head = head_surface(shift)
    fid = find_fiducials(head, identity_transform(shift=shift))
    q = SurfaceQuery(head)
    for name in ("nasion", "inion", "lpa", "rpa"):
        p = getattr(fid, name)
        assert np.linalg.norm(q.closest_point(p)[0][0] - p) < 1e-6  # on the scalp
        origin, direction = MNI_FIDUCIAL_RAYS[name]
        o = np.array(origin) + shift
        v = p - o
        # on the template ray (mapped by the pure shift): perpendicular offset ~0, positive along the ray
        along = v @ np.array(direction)
        assert along > 0 and np.linalg.norm(v - along * np.array(direction)) < 1e-6
    assert fid.lpa[0] < fid.rpa[0] and fid.nasion[1] > fid.inion[1]
    assert fid.estimated == ()


def test_defaced_head_gets_the_template_nasion(tmp_path, caplog) -> None:
    """A defaced scan has no scalp at the nasion: the ray meets the flat cut far inside the head.
    The nasion is then the template's landmark, flagged; the other fiducials stay on the scalp."""
    from navigator.targets.fiducials import find_fiducials, load_fiducials, save_fiducials, template_landmarks_mni

    shift = np.array([5.0, -12.0, 20.0])
    intact = find_fiducials(head_surface(shift), identity_transform(shift=shift))
    defaced = head_surface(shift, face_cut_y=45.0)
    with caplog.at_level("WARNING", logger="navigator"):
        fid = find_fiducials(defaced, identity_transform(shift=shift))
    assert fid.estimated == ("nasion",)
    assert "nasion" in caplog.text and "check it" in caplog.text
    np.testing.assert_allclose(fid.nasion, template_landmarks_mni()["nasion"] + shift, atol=1e-9)
    # the estimate is within a few mm of the intact head's nasion; the cut surface is ~35 mm behind
    assert np.linalg.norm(fid.nasion - intact.nasion) < 8.0
    assert SurfaceQuery(defaced).ray_hit(np.array([0.0, 30.0, -32.5]) + shift, np.array([0.0, 1.0, 0.0]))[1] < \
        intact.nasion[1] - 25.0
    for name in ("inion", "lpa", "rpa"):
        np.testing.assert_allclose(getattr(fid, name), getattr(intact, name), atol=1e-6)
    save_fiducials(fid, tmp_path / "fiducials.json")
    assert load_fiducials(tmp_path / "fiducials.json").estimated == ("nasion",)
    # the EEG positions are still built (the estimated nasion is projected onto the cut surface)
    assert len(construct_10_10(defaced, fid).names) > 60


def test_anterior_rule_walks_50mm_forward(sphere, sphere_eeg) -> None:
    from navigator.targets.rules import anterior_rule

    fid, eeg = sphere_eeg
    hotspot = eeg["C3"]
    p = anterior_rule(sphere, fid, hotspot, 50.0)
    assert p[1] > hotspot[1]  # anterior
    # parasagittal: same x; arc length 50 mm on the circle through the hotspot in the plane x = const
    assert abs(p[0] - hotspot[0]) < 0.5
    r_circle = np.sqrt(R**2 - hotspot[0] ** 2)
    ang = np.arctan2(p[1], p[2]) - np.arctan2(hotspot[1], hotspot[2])
    assert abs(ang * r_circle - 50.0) < 0.6


def test_beam_f3_near_10_10_f3_on_a_sphere(sphere, sphere_eeg) -> None:
    from navigator.targets.rules import beam_f3

    fid, eeg = sphere_eeg
    f3, m = beam_f3(sphere, fid, eeg)
    assert m.nasion_inion == pytest.approx(np.pi * R, rel=5e-3)
    assert m.circumference == pytest.approx(2 * np.pi * R * np.cos(np.deg2rad(18)), rel=5e-3)
    assert f3[0] < 0 and f3[1] > 0  # left frontal
    assert np.linalg.norm(f3 - eeg["F3"]) < 15.0


def test_target_spec_parsing_errors() -> None:
    from navigator.targets.resolve import _parse_distance, parse_xyz

    assert parse_xyz(" -38, 44.5 ,26") .tolist() == [-38.0, 44.5, 26.0]
    with pytest.raises(NavigatorError, match="three numbers"):
        parse_xyz("1,2")
    assert _parse_distance("5.5cm") == 55.0 and _parse_distance("50mm") == 50.0
    with pytest.raises(NavigatorError, match="rule distance"):
        _parse_distance("5 inches")


def _synthetic_rest(n_vol: int, planted_mni, seed_mni, rng, shift=np.zeros(3)):
    """3 mm fMRI series in subject space (= MNI + shift) with a planted anticorrelated cluster."""
    step = 3.0
    n = 56
    aff = np.diag([step, step, step, 1.0])
    aff[:3, 3] = -step * (n - 1) / 2 + shift
    ijk = np.stack(np.meshgrid(*(np.arange(n),) * 3, indexing="ij"), -1)
    world = ijk * step + aff[:3, 3]
    brain = np.linalg.norm((world - shift) / [65, 80, 65], axis=-1) < 1.0
    t = np.arange(n_vol) * 2.0
    base = rng.standard_normal(n_vol)
    # low-frequency seed signal in the 0.01-0.1 Hz band
    from scipy import signal

    b, a = signal.butter(2, [0.012 / 0.25, 0.09 / 0.25], btype="band")
    s = signal.filtfilt(b, a, rng.standard_normal(n_vol))
    s /= s.std()
    data = 1000.0 * brain[..., None] + 8.0 * rng.standard_normal((n, n, n, n_vol))
    seed_w = np.exp(-np.sum((world - (np.array(seed_mni) + shift)) ** 2, -1) / (2 * 6.0**2))
    clus_w = np.exp(-np.sum((world - (np.array(planted_mni) + shift)) ** 2, -1) / (2 * 5.0**2))
    data += 30.0 * (seed_w - clus_w)[..., None] * s[None, None, None, :] * brain[..., None]
    del base, t
    return Volume(data.astype(np.float32), aff, source="rest.nii.gz", meta={"tr_s": 2.0}), brain, aff


def test_fmri_target_recovers_planted_cluster() -> None:
    from navigator.targets.fmri import fmri_target
    from navigator.targets.library import SGACC_SEED_MNI

    rng = np.random.default_rng(3)
    shift = np.array([2.0, -3.0, 4.0])
    planted = np.array([-40.0, 36.0, 34.0])
    series, brain, aff = _synthetic_rest(120, planted, SGACC_SEED_MNI, rng, shift)
    t1 = Volume(series.data.mean(axis=3), aff, source="t1")
    tr = identity_transform(shift=shift)
    res = fmri_target(series, t1, mni_to_subject=tr.mni_to_subject, brain_mask=Volume(brain.astype(np.uint8), aff))
    assert np.linalg.norm(res.point - (planted + shift)) < 5.0
    assert res.correlation < -0.2


def test_fmri_target_errors() -> None:
    from navigator.targets.fmri import fmri_target

    rng = np.random.default_rng(0)
    series, brain, aff = _synthetic_rest(30, [-40, 36, 34], [6, 16, -10], rng)
    with pytest.raises(InputError, match="too short"):
        fmri_target(series, Volume(brain.astype(np.float32), aff), mni_to_subject=identity_transform().mni_to_subject)
    # a series from elsewhere: brain far away from the T1's brain
    series, brain, aff = _synthetic_rest(70, [-40, 36, 34], [6, 16, -10], rng)
    t1_aff = aff.copy()
    t1_aff[:3, 3] += [0, 0, 0]
    other_brain = np.zeros_like(brain)
    other_brain[:8, :8, :8] = True  # T1 brain mask in a corner: cannot line up
    with pytest.raises(NavigatorError, match="does not line up"):
        fmri_target(series, Volume(series.data.mean(axis=3), aff), mni_to_subject=identity_transform().mni_to_subject,
                    brain_mask=Volume(other_brain.astype(np.uint8), t1_aff))


def test_fmri_target_command_saves_a_usable_target(tmp_path, capsys) -> None:
    """`navigator fmri-target` on a workspace (T1, MNI transform): the planted cluster becomes
    user target 'fmri', which `navigator target` then resolves."""
    import json

    from navigator.cli import main
    from navigator.core.workspace import Workspace
    from navigator.io.images import save_nifti
    from navigator.targets.library import SGACC_SEED_MNI

    rng = np.random.default_rng(3)
    planted = np.array([-40.0, 36.0, 34.0])
    series, brain, aff = _synthetic_rest(120, planted, SGACC_SEED_MNI, rng)
    ws = Workspace.create(tmp_path / "sub")
    save_nifti(Volume(series.data.mean(axis=3), aff), ws.path("t1"))
    ws.add_source("T1", ws.path("t1"))
    save_mni_transform(identity_transform(), ws.path("transforms"))
    rest = tmp_path / "rest.nii.gz"
    save_nifti(series, rest)
    assert main(["fmri-target", str(ws.root), str(rest), "--tr", "2.0"]) == 0
    assert "use it as --target fmri" in capsys.readouterr().out
    saved = json.loads((ws.root / "targets" / "targets.json").read_text())["targets"]["fmri"]
    assert np.linalg.norm(np.array(saved["point"]) - planted) < 5.0 and saved["correlation"] < -0.2
    assert Workspace.open(ws.root).sources()["rest"]["path"] == "input/rest.nii.gz"


def _workspace_with_head(tmp_path, shift=np.zeros(3)):
    """A workspace holding a spherical scalp, a smaller 'cortex' surface and an MNI transform."""
    from navigator.core.workspace import Workspace
    from navigator.io.surfaces import write_surface
    from navigator.targets.step import head_coordinates_workspace

    ws = Workspace.create(tmp_path / "sub")
    write_surface(sphere_surface(radius=R, centre=tuple(shift)), ws.path("scalp"))
    write_surface(sphere_surface(radius=70.0, centre=tuple(shift)), ws.path("middle_gm"))
    save_mni_transform(identity_transform(shift=shift), ws.path("transforms"))
    return ws, head_coordinates_workspace


def test_workspace_head_coordinates_and_target_specs(tmp_path) -> None:
    """Fiducials, EEG positions and every SPEC form through the workspace files (as the CLI uses them)."""
    from navigator.core.workspace import Workspace
    from navigator.targets.context import HeadContext
    from navigator.targets.resolve import resolve_target

    ws, step = _workspace_with_head(tmp_path)
    assert step(ws) is True
    assert step(Workspace.open(ws.root)) is False  # current: skipped
    ctx = HeadContext(Workspace.open(ws.root))
    for name in ("Nz", "Iz", "LPA", "RPA", "Cz", "F3"):
        assert abs(np.linalg.norm(ctx.eeg[name]) - R) < 1.0, name
    # the 10-05 cap beside the 10-10 one, same fiducials, every 10-10 position in it unchanged
    from navigator.io.eeg_positions import read_eeg_csv

    cap = read_eeg_csv(ws.root / "targets/eeg_caps/EEG10-05.csv")
    assert len(cap.names) == 343 and list(cap.fiducials) == ["Nz", "Iz", "LPA", "RPA"]
    assert all(np.array_equal(ctx.eeg[n], cap[n]) for n in ctx.eeg.labels())
    fox = resolve_target(ctx, "fox")
    assert abs(np.linalg.norm(fox.cortical_point) - 70.0) < 0.6  # on the 'cortex'
    assert fox.scalp_cortex_distance_mm == pytest.approx(R - 70.0, abs=1.0)
    assert np.allclose(fox.mni, fox.cortical_point, atol=0.5)  # identity transform
    assert fox.cortical_point[0] < 0  # left DLPFC stays left
    for spec in ("mni:-38,44,26", "subject:-30,40,40", "-30,40,40", "eeg:F3", "beam-f3",
                 "rule:5.5cm:hotspot=eeg:C3", "rule:5cm:hotspot=-40,0,75"):
        t = resolve_target(ctx, spec)
        assert abs(np.linalg.norm(t.scalp_entry) - R) < 1.0, spec
        assert t.cortical_point is not None, spec
    with pytest.raises(NavigatorError, match="unknown target"):
        resolve_target(ctx, "nonsense")


def test_cli_target_json(tmp_path, capsys) -> None:
    import json

    from navigator.cli import main

    ws, step = _workspace_with_head(tmp_path)
    step(ws)
    assert main(["target", str(ws.root), "ba46", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["name"] == "ba46" and d["coordinate_system"].startswith("subject scanner RAS")
    assert main(["target", str(ws.root), "mni:-40,40,30", "--save-as", "mine"]) == 0
    capsys.readouterr()
    assert main(["targets", str(ws.root), "--json"]) == 0
    names = [t["name"] for t in json.loads(capsys.readouterr().out)]
    assert {"fox", "ba46", "beam-f3", "eeg:F3", "mine"} <= set(names)
    assert main(["fiducials", str(ws.root), "--lpa", "-90,0,0", "--rpa", "90,0,0", "--nasion", "0,90,0",
                 "--inion", "0,-90,0"]) == 0
    assert main(["fiducials", str(ws.root), "--lpa", "90,0,0"]) == 1  # left/right swapped is refused


def test_head_reuses_the_recorded_targets_only_while_current(tmp_path) -> None:
    """The targets step records resolved targets; a later Head returns them as recorded while the
    files they came from are unchanged, and resolves again when one changed."""
    from navigator.core.workspace import Workspace
    from navigator.io.surfaces import write_surface
    from navigator.targets.head import RESOLVED, Head
    from navigator.targets.resolve import resolve_target

    ws, step = _workspace_with_head(tmp_path)
    assert step(ws) is True
    names = ["fox", "eeg:F3", "subject:-30,40,50"]
    head = Head.of(Workspace.open(ws.root))
    assert head.resolve_targets(names) is True
    assert head.resolve_targets(names) is False  # current: nothing to do
    assert (ws.root / RESOLVED).exists()
    later = Head.of(Workspace.open(ws.root))
    assert set(later.resolved) == set(names)
    for name in names:
        assert later.target(name) is later.resolved[name]
        assert later.target(name).to_json() == resolve_target(later, name).to_json()
    # the scalp changes (e.g. the subject was meshed again): the record is stale, targets resolve anew
    write_surface(sphere_surface(radius=R + 5.0), ws.path("scalp"))
    fresh = Head.of(Workspace.open(ws.root))
    assert fresh.resolved == {}
    entry = np.asarray(fresh.target("subject:-30,40,50").scalp_entry)
    assert abs(np.linalg.norm(entry) - (R + 5.0)) < 1.0
    # a user target edited after the step is not shadowed by the record of its old position
    head2 = Head.of(Workspace.open(ws.root))
    head2.save_user_target("mine", {"point": [-30.0, 40.0, 50.0], "space": "subject", "kind": "cortical"})
    assert head2.resolve_targets(["mine"]) is True
    old = np.asarray(Head.of(Workspace.open(ws.root)).target("mine").point)
    head2.save_user_target("mine", {"point": [30.0, 40.0, 50.0], "space": "subject", "kind": "cortical"})
    moved = Head.of(Workspace.open(ws.root))
    assert moved.resolved == {}
    np.testing.assert_allclose(old, [-30.0, 40.0, 50.0])
    np.testing.assert_allclose(moved.target("mine").point, [30.0, 40.0, 50.0])


def test_defaced_head_is_completed_for_the_eeg_only_where_it_was_removed() -> None:
    """A head (the template's own, in MNI space) with its face zero-filled: the completed scalp
    has the face again (the template nasion lies on it), the defaced scalp does not; an intact
    head needs no completion."""
    from navigator.targets.completed_scalp import completed_scalp, template_head_mask
    from navigator.targets.fiducials import template_landmarks_mni

    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [-90.0, -126.0, -72.0]
    shape = (91, 109, 91)
    ident = identity_transform(half=140.0, step=10.0)
    head = template_head_mask(shape, aff, ident)
    rng = np.random.default_rng(0)
    t1 = np.where(head, 100.0, rng.uniform(1.0, 5.0, shape)).astype(np.float32)  # noisy air, no zeros
    assert completed_scalp(Volume(t1, aff), Volume(head.astype(np.uint8), aff), ident) is None

    world = np.stack(np.meshgrid(*(aff[a, a] * np.arange(shape[a]) + aff[a, 3] for a in range(3)), indexing="ij"), -1)
    face = (world[..., 1] > 55.0) & (world[..., 2] < 25.0)  # pydeface-like block in front of the brow
    t1_defaced = np.where(face, 0.0, t1).astype(np.float32)
    defaced = head & ~face
    nasion = template_landmarks_mni()["nasion"]
    completed = completed_scalp(Volume(t1_defaced, aff), Volume(defaced.astype(np.uint8), aff), ident)
    assert completed is not None
    assert np.linalg.norm(SurfaceQuery(completed).closest_point(nasion)[0][0] - nasion) < 3.0
    from skimage.measure import marching_cubes

    v, f, _, _ = marching_cubes(defaced.astype(np.float32), 0.5)
    cut = Surface(v * 2.0 + aff[:3, 3], f)
    assert np.linalg.norm(SurfaceQuery(cut).closest_point(nasion)[0][0] - nasion) > 10.0


def test_a_sphere_head_keeps_its_own_fiducials() -> None:
    """The sphere sample is not head-shaped: its inion lies ~28 mm inside the template's and its
    ears ~10 mm. Only a missing face (the nasion) falls back to the template."""
    from navigator.targets.fiducials import find_fiducials

    ball = sphere_surface(radius=95.0)
    fid = find_fiducials(ball, identity_transform())
    assert fid.estimated == ()
    q = SurfaceQuery(ball)
    for name in ("nasion", "inion", "lpa", "rpa"):
        p = getattr(fid, name)
        assert np.linalg.norm(q.closest_point(p)[0][0] - p) < 1e-6  # on the sphere
