"""Build navigator's head tissue priors from the SAMSEG probabilistic atlas.

The priors that :mod:`navigator.segmentation.head_priors` loads
(``navigator/data/priors/head_priors_mni.npz``) are made by this script from the atlas that
ships in the ``samseg`` wheel on PyPI (FreeSurfer's "20Subjects_smoothing2_down2" atlas, built
from 20 manually labelled heads; MIT licence; Puonti, Iglesias & Van Leemput, NeuroImage
2016). The atlas is a tetrahedral mesh in the voxel space of its 181 x 217 x 181 template on
the 1 mm MNI grid; every mesh node carries a probability for each of 44 structures, and the
prior at a voxel is the barycentric interpolation of its tetrahedron's node probabilities.

This script parses the mesh, rasterizes the node probabilities onto a 1.5 mm grid in the
atlas's MNI mm (RAS) and merges the 44 structures into navigator's eight prior classes
(:data:`CLASSES`). The atlas space is close to, but not the same as, the MNI152 2009a space
that navigator registers to (about 6 % wider, a few mm lower): the script registers the
atlas template affinely to navigator's MNI152 template (the same code that registers
subjects) and stores that map with the priors. It needs only numpy and navigator (no
FreeSurfer, no gems):

    pip download --no-deps samseg==0.4a0 -d /tmp/samseg && unzip -q /tmp/samseg/*.whl -d /tmp/samseg
    python scripts/build_head_priors.py /tmp/samseg/samseg/atlas/20Subjects_smoothing2_down2_smoothingForAffine2

None of Colin27 or any other validation case is used.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from pathlib import Path

import numpy as np

#: navigator's prior classes and the SAMSEG structure names (regular expressions) they merge.
CLASSES: dict[str, str] = {
    "background": r"^Unknown$",
    "wm": r"White-Matter|Brain-Stem|VentralDC|Optic-Chiasm|^WM-hypointensities",
    "gm": r"Cerebral-Cortex|Cerebellum-Cortex|Hippocampus|Amygdala",
    "deep_gm": r"Thalamus|Caudate|Putamen|Pallidum|Accumbens|non-WM-hypointensities",
    "csf": r"Ventricle|Inf-Lat-Vent|^CSF$|vessel|choroid-plexus",
    "skull": r"^Skull$",
    "soft": r"^Soft_Nonbrain_Tissue$",
    "eyes": r"^Fluid_Inside_Eyes$",
}

#: Grid of the stored priors: 1.5 mm, covering the atlas template (MNI mm, RAS axes).
SPACING_MM = 1.5


def read_atlas_mesh(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (N, 3) template voxel coordinates, tets (M, 4), alphas (N, L)) of a gems mesh text file."""
    with gzip.open(path, "rt") as f:
        lines = f.read().splitlines()
    n_points = int(lines[0].split(":")[1])
    n_labels = int(lines[2].split(":")[1])
    start = next(i for i, l in enumerate(lines) if l.startswith("Position 0")) + 1
    points = np.array([l.split()[1:4] for l in lines[start:start + n_points]], dtype=np.float64)
    cells_at = next(i for i, l in enumerate(lines) if l.startswith("Cells:"))
    params_at = next(i for i, l in enumerate(lines) if l.startswith("Point parameters:"))
    tets = np.array([l.split()[2:6] for l in lines[cells_at + 1:params_at] if "TETRAHEDRON" in l], dtype=np.int64)
    alphas = np.array([l.split()[1:1 + n_labels] for l in lines[params_at + 1:params_at + 1 + n_points]],
                      dtype=np.float64)
    return points, tets, alphas


def read_lookup(path: Path) -> dict[int, str]:
    """Compressed label index -> structure name (compressionLookupTable.txt)."""
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out[int(parts[1])] = parts[2]
    return out


def class_matrix(names: dict[int, str], n_labels: int) -> np.ndarray:
    """(n_labels, n_classes) 0/1 matrix assigning every structure to exactly one class."""
    m = np.zeros((n_labels, len(CLASSES)))
    for idx, name in names.items():
        hits = [c for c, (_, pat) in enumerate(CLASSES.items()) if re.search(pat, name)]
        if len(hits) != 1:
            raise SystemExit(f"structure {name!r} matches {len(hits)} classes")
        m[idx, hits[0]] = 1.0
    if not (m.sum(axis=1) == 1).all():
        raise SystemExit("some atlas labels have no name in the lookup table")
    return m


def register_template(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Affine atlas-template world (mm) -> navigator's MNI152 2009a (mm), by navigator's own registration."""
    from navigator.io.images import reorient_to_ras
    from navigator.segmentation import preprocess, register
    from navigator.segmentation.templates import load_templates

    ras, ras_affine = reorient_to_ras(data, affine)[:2]
    head = preprocess.head_mask(ras, np.sqrt((ras_affine[:3, :3] ** 2).sum(axis=0)))
    t1n = preprocess.normalize_intensity(ras, head)
    s2m, _ = register.affine_register(t1n, ras_affine, head, load_templates())
    return s2m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("atlas_dir", type=Path, help="SAMSEG atlas folder (atlas_level2.txt.gz, template.nii.gz, ...)")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parents[1] / "navigator/data/priors/head_priors_mni.npz")
    a = ap.parse_args(argv)
    import nibabel as nib

    from navigator.core.mesh import Mesh
    from navigator.fem.sampling import rasterize_tets

    points, tets, alphas = read_atlas_mesh(a.atlas_dir / "atlas_level2.txt.gz")
    names = read_lookup(a.atlas_dir / "compressionLookupTable.txt")
    merged = alphas @ class_matrix(names, alphas.shape[1])
    merged /= merged.sum(axis=1, keepdims=True)
    tmpl = nib.load(str(a.atlas_dir / "template.nii.gz"))
    atlas_to_mni152 = register_template(np.asarray(tmpl.get_fdata(), np.float32), tmpl.affine)
    nodes_mni = points @ tmpl.affine[:3, :3].T + tmpl.affine[:3, 3]
    lo = np.floor(nodes_mni.min(axis=0))
    hi = np.ceil(nodes_mni.max(axis=0))
    shape = tuple(int(np.floor((h - l) / SPACING_MM)) + 1 for l, h in zip(lo, hi))
    affine = np.diag([SPACING_MM, SPACING_MM, SPACING_MM, 1.0])
    affine[:3, 3] = lo
    mesh = Mesh(nodes_mni, tets, np.ones(len(tets), np.int32))
    flat, tet, bary = rasterize_tets(mesh, affine, shape)
    out = np.zeros((len(CLASSES), int(np.prod(shape))), np.float32)
    out[0] = 1.0  # outside the atlas mesh: background
    vals = np.einsum("vk,vkc->vc", bary.astype(np.float64), merged[tets[tet]])
    out[:, flat] = vals.T
    out = np.clip(out, 0, None)
    out /= out.sum(axis=0, keepdims=True)
    q = np.round(out * 255).astype(np.uint8).reshape((len(CLASSES),) + shape)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.out, priors=q, affine=affine, classes=np.array(list(CLASSES)),
                        mni152_to_atlas=np.linalg.inv(atlas_to_mni152),
                        source=np.array("SAMSEG atlas 20Subjects_smoothing2_down2 (samseg 0.4a0 wheel, MIT licence)"))
    print("atlas -> MNI152 2009a affine:\n" + np.array2string(atlas_to_mni152, precision=4, suppress_small=True))
    print(f"{a.out}: {len(CLASSES)} classes on {shape} at {SPACING_MM} mm, {a.out.stat().st_size / 1e6:.1f} MB")
    for c, name in enumerate(CLASSES):
        print(f"  {name:11s} {out[c].sum() * SPACING_MM ** 3 / 1000:8.0f} ml expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
