"""SofTaxic .stmpx coil positions: a file laid out the way SofTaxic writes it (DOCTYPE, 6 significant
digits, attributes in no particular order, auxiliary points and props), read into our coil axes."""

from __future__ import annotations

import numpy as np
import pytest
from test_export_rigid import angle_deg, random_poses

from navigator.core.errors import InputError
from navigator.export import import_plan
from navigator.export.registry import guess_plugin

# One SofTaxic position as the vendor writes it: its fp direction cosines m{row}{col}, centre x y z.
P001 = dict(m00="-0.171625", m01="0.335503", m02="0.926273", m10="0.967445", m11="0.234913", m12="0.0941655",
            m20="-0.186001", m21="0.912279", m22="-0.364897", x="-51.3255", y="2.26082", z="68.1565")
# The same pose in navigator's (SimNIBS's) axes: x = -y_softaxic, y = x_softaxic, z = z_softaxic.
P001_OURS = np.array([[-0.335503, -0.171625, 0.926273, -51.3255],
                      [-0.234913, 0.967445, 0.0941655, 2.26082],
                      [-0.912279, -0.186001, -0.364897, 68.1565],
                      [0.0, 0.0, 0.0, 1.0]])


def _fp(values: dict[str, str], ts: int, order: list[str] | None = None) -> str:
    keys = order or ["m11", "m12", "y", "m02", "m01", "z", "m00", "m22", "x", "m21", "id", "ts", "m10", "m20"]
    vals = {**values, "id": "8700339", "ts": str(ts)}
    return "<fp " + " ".join(f'{k}="{vals[k]}"' for k in keys if k in vals) + ">"


def stmpx(positions: list[tuple[str, dict[str, str]]]) -> str:
    body = []
    for k, (pid, vals) in enumerate(positions):
        body.append(f'  <fmp global="0" id="{pid}">\n   {_fp(vals, 1629993666766 + 1000 * k)}\n'
                    '    <bm y="-1.69588" z="59.6235" x="-1.64915"/>\n    <bt y="-6.0759" z="56.7957" x="-2.78954"/>\n'
                    '    <f y="0.887359" z="73.4787" x="-64.8358"/>\n   </fp>\n'
                    '   <props>\n    <p id="EMS_FT dist" type="2">-28.2399</p>\n   </props>\n  </fmp>\n')
    return ('<!DOCTYPE stmp>\n<stmp>\n <fmpm dataset="20210826-175502">\n' + "".join(body)
            + " </fmpm>\n</stmp>\n")


def _six_digits(pose_ours: np.ndarray) -> dict[str, str]:
    from navigator_plugins.softaxic import ours_to_softaxic

    m = ours_to_softaxic(pose_ours)
    out = {f"m{i}{j}": f"{m[i, j]:.6g}" for i in range(3) for j in range(3)}
    out.update({c: f"{m[i, 3]:.6g}" for i, c in enumerate("xyz")})
    return out


def test_softaxic_file_reads_into_our_axes(tmp_path):
    f = tmp_path / "exported_data.stmpx"
    f.write_text(stmpx([("P001", P001)]))
    assert guess_plugin(f, "importer").name == "softaxic"
    plan = import_plan(f)
    assert [p.name for p in plan.coil_poses] == ["P001"]
    got = plan.coil_poses[0].matrix
    np.testing.assert_allclose(got, P001_OURS, atol=2e-6)  # re-orthonormalized: 6 significant digits
    assert plan.pose_corrections and "dataset 20210826-175502" in plan.notes
    # on the left of the head (x < 0) the coil normal (our z) points into the head (+x)
    assert got[0, 3] < 0 and got[0, 2] > 0.9


def test_softaxic_round_trip_of_known_poses(tmp_path):
    """Our poses -> SofTaxic axes at 6 significant digits (as SofTaxic writes) -> read back."""
    poses = random_poses(12, 17)
    f = tmp_path / "session.STMPX"
    f.write_text(stmpx([(f"P{k:03d}", _six_digits(p)) for k, p in enumerate(poses)]))
    plan = import_plan(f)
    assert len(plan.coil_poses) == 12
    for p, exact in zip(plan.coil_poses, poses):
        assert angle_deg(exact, p.matrix) < 0.001
        assert np.abs(p.matrix[:3, 3] - exact[:3, 3]).max() < 0.01


def test_softaxic_axes_conversion_is_an_involution_pair():
    from navigator_plugins.softaxic import ours_to_softaxic, softaxic_to_ours

    for m in random_poses(5, 2):
        np.testing.assert_array_equal(softaxic_to_ours(ours_to_softaxic(m)), m)
        assert np.linalg.det(ours_to_softaxic(m)[:3, :3]) == pytest.approx(1.0)


def test_softaxic_empty_and_broken_files_are_refused(tmp_path):
    f = tmp_path / "empty.stmpx"
    f.write_text('<!DOCTYPE stmp>\n<stmp>\n <fmpm dataset="20210826-175502"/>\n</stmp>\n')
    with pytest.raises(InputError, match=r"empty\.stmpx: no coil positions"):
        import_plan(f)
    missing = dict(P001)
    del missing["m12"]
    f.write_text(stmpx([("P001", missing)]))
    with pytest.raises(InputError, match="coil position 'P001': <fp> has no m12"):
        import_plan(f)
    bad = dict(P001, m00="-0.1716.25")
    f.write_text(stmpx([("P001", bad)]))
    with pytest.raises(InputError, match="P001' m00: not a number"):
        import_plan(f)
