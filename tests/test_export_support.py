"""Shared builders for the export tests: an asymmetric subject and a synthetic plan.

The "asymmetric subject" is a small NIfTI whose voxel axes run Left, Posterior, Superior
(LPS voxel order), tilted 10 degrees about z and 6 degrees about x, with anisotropic voxels
and sform == qform. A bright blob sits in the subject's LEFT frontal lobe (in voxel space: at
high i, because i runs to the left), so a target computed from the image must have x < 0 in RAS.
"""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np

from navigator.export.plan import CoilPose, Electrode, ImageInfo, Montage, Plan, Target

SHAPE = (40, 44, 36)
SPACING = (4.0, 4.5, 5.0)


def rot_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def subject_affine() -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = rot_z(10) @ rot_x(6) @ np.diag([-SPACING[0], -SPACING[1], SPACING[2]])
    centre = (np.array(SHAPE) - 1) / 2
    a[:3, 3] = -a[:3, :3] @ centre + np.array([3.0, -12.0, 20.0])  # head centre at (3, -12, 20) mm
    return a


def write_subject(folder: Path) -> Path:
    """Write the asymmetric T1 (sform == qform, code 1) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    aff = subject_affine()
    i, j, k = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    c = (np.array(SHAPE) - 1) / 2
    head = ((i - c[0]) / 17) ** 2 + ((j - c[1]) / 19) ** 2 + ((k - c[2]) / 15) ** 2 < 1
    # left (high i: voxel i runs to the LEFT), anterior (low j: j runs POSTERIOR), superior (high k)
    blob = ((i - (c[0] + 8)) ** 2 + (j - (c[1] - 9)) ** 2 + (k - (c[2] + 5)) ** 2) < 9
    data = np.where(blob, 1000, np.where(head, 300, 0)).astype(np.int16)
    img = nib.Nifti1Image(data, aff)
    img.set_qform(aff, code=1)
    img.set_sform(img.get_qform(), code=1)  # sform == qform (as stored, float32)
    path = folder / "T1.nii.gz"
    nib.save(img, str(path))
    return path


def blob_target(t1: Path) -> np.ndarray:
    """World RAS (mm) centroid of the bright blob, computed from the image itself."""
    img = nib.load(str(t1))
    ijk = np.argwhere(np.asarray(img.dataobj) > 500).mean(axis=0)
    return img.affine[:3, :3] @ ijk + img.affine[:3, 3]


def pose_on_scalp(target: np.ndarray, head_centre: np.ndarray, distance: float = 25.0,
                  handle_hint=(0.0, -1.0, 0.0)) -> np.ndarray:
    """A coil pose ``distance`` mm outside ``target`` on the line from the head centre, z into the head."""
    out = target - head_centre
    out /= np.linalg.norm(out)
    z = -out
    y = np.asarray(handle_hint, float) - np.dot(handle_hint, z) * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    m = np.eye(4)
    m[:3, :3] = np.column_stack([x, y, z])
    m[:3, 3] = target + distance * out
    return m


def random_poses(n: int, seed: int = 1) -> list[np.ndarray]:
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    out = []
    for r in Rotation.random(n, random_state=seed).as_matrix():
        m = np.eye(4)
        m[:3, :3] = r
        m[:3, 3] = rng.uniform(-90, 90, 3) + rng.uniform(-1, 1, 3) * 1e-3
        out.append(m)
    return out


def make_plan(folder: Path, n_random: int = 12) -> tuple[Plan, Path]:
    t1 = write_subject(folder)
    info = ImageInfo.from_nifti(t1)
    centre = subject_affine()[:3, :3] @ ((np.array(SHAPE) - 1) / 2) + subject_affine()[:3, 3]
    dlpfc = blob_target(t1)
    coil = pose_on_scalp(dlpfc, centre)
    targets = [
        Target("L-DLPFC", dlpfc, direction=coil[:3, 1], description="left DLPFC blob"),
        Target("R-M1", np.array([37.123456789012345, -21.5, 61.75])),
        Target("vertex", np.array([0.1, -15.0, 80.0]), entry=np.array([0.1, -15.0, 95.0])),
    ]
    poses = [CoilPose("L-DLPFC coil", coil, target="L-DLPFC", coil="Magstim_D70", didt=1.2e8, mso=65.0)]
    poses += [CoilPose(f"random {k}", m) for k, m in enumerate(random_poses(n_random))]
    montage = Montage("F3-Fp2", [Electrode("F3", [-40.0, 45.0, 45.0], 2.0, "rect", (50.0, 50.0)),
                                 Electrode("Fp2", [25.0, 70.0, 10.0], -2.0, "rect", (50.0, 70.0))])
    plan = Plan(name="test plan", subject="sub-asym", image=info, targets=targets, coil_poses=poses,
                montages=[montage])
    return plan, t1


def known_pose() -> np.ndarray:
    """Hand-checkable pose: coil on top of the head at (-40.5, 30.25, 60), z = (0,0,-1) into the head,
    handle y = (0,-1,0) backwards, so x = y cross z = (1,0,0)."""
    m = np.eye(4)
    m[:3, :3] = np.column_stack([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])
    m[:3, 3] = [-40.5, 30.25, 60.0]
    return m
