"""`navigator coils list`, `navigator coils show NAME|FILE`, `navigator coils export NAME|FILE OUT`."""

from __future__ import annotations

from navigator.cli import console, subcommand


def register(sub) -> None:
    p = subcommand(sub, "coils", "TMS coil models: the bundled library and coil files.")
    subs = p.add_subparsers(dest="coils_cmd", metavar="ACTION")
    subs.required = True
    ls = subcommand(subs, "list", "List the bundled coil library.")
    ls.set_defaults(func=run_list)
    sh = subcommand(subs, "show", "Describe a library coil or a coil file (.ccd, .tcd, .nii.gz).")
    sh.add_argument("coil", metavar="NAME|FILE")
    sh.set_defaults(func=run_show)
    ex = subcommand(subs, "export", "Write a coil as .ccd (dipoles), .tcd or .nii.gz (sampled A field).")
    ex.add_argument("coil", metavar="NAME|FILE")
    ex.add_argument("out", metavar="OUT.ccd|OUT.tcd|OUT.nii.gz")
    ex.add_argument("--resolution", type=float, default=3.0, metavar="MM", help="NIfTI grid spacing (default 3 mm)")
    ex.set_defaults(func=run_export)


def run_list(args) -> int:
    from navigator.tms.library import LIBRARY

    out = console(args)
    rows = [("name", "type", "brand / stimulator", "max dI/dt", "aliases")]
    for name in sorted(LIBRARY):
        e = LIBRARY[name]
        rows.append((name, e.kind, f"{e.brand} / {e.stimulator}", f"{e.max_didt / 1e6:.1f} A/us", ", ".join(e.aliases)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        out.print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4], soft_wrap=True)
    out.print("(parametric models from published dimensions; `navigator coils show NAME` gives sources "
              "and uncertainty; any .ccd/.tcd/.nii.gz file can be used with --coil)", soft_wrap=True)
    return 0


def run_show(args) -> int:
    import numpy as np

    from navigator.tms.library import find_entry, load_coil

    coil = load_coil(args.coil)
    out = console(args)
    out.print(f"coil: {coil.name}")
    out.print(f"  source: {coil.source}")
    out.print(f"  model: {coil.kind()}")
    if coil.brand or coil.stimulator:
        out.print(f"  brand: {coil.brand or '?'}; stimulator: {coil.stimulator or '?'}")
    out.print(f"  max dI/dt: {'unknown' if coil.max_didt is None else f'{coil.max_didt / 1e6:.2f} A/us'}")
    pts = coil.source_points()
    if len(pts):
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        out.print("  source extent (coil frame, mm): "
                  + ", ".join(f"{a} {l:.1f}..{h:.1f}" for a, l, h in zip("xyz", lo, hi)))
    if coil.n_dipoles:
        out.print(f"  net dipole moment: {np.round(coil.dipole_moments.sum(axis=0), 5).tolist()} A m^2 per A")
    out.print(f"  casing: {len(coil.casing)} surface(s)" if coil.casing else "  casing: none")
    entry = find_entry(args.coil)
    if entry is not None:
        g = entry.geometry
        out.print(f"  windings per wing: inner radius {g.inner_radius} mm, outer {g.outer_radius} mm, {g.turns} turns "
                  f"in {g.layers} layer(s), height {g.winding_height} mm, {g.bottom_offset} mm above the bottom face")
        if entry.wing_spacing:
            out.print(f"  wing spacing {entry.wing_spacing} mm, wing angle {entry.wing_angle} deg")
    if coil.notes:
        out.print(f"  notes: {coil.notes}")
    return 0


def run_export(args) -> int:
    import numpy as np

    from navigator.core.errors import NavigatorError
    from navigator.tms.library import load_coil

    coil = load_coil(args.coil)
    out = str(args.out)
    low = out.lower()
    if low.endswith(".ccd"):
        from navigator.tms.ccd import write_ccd

        if coil.n_dipoles == 0:
            raise NavigatorError(f"coil {coil.name!r} has no dipoles; export it as .tcd or .nii.gz")
        write_ccd(coil, out)
    elif low.endswith(".tcd"):
        from navigator.tms.tcd import write_tcd

        write_tcd(coil, out)
    elif low.endswith((".nii", ".nii.gz")):
        from navigator.tms.grid_coil import sample_coil_on_grid, write_nifti_coil

        lim = np.array([[-150.0, 150.0], [-150.0, 150.0], [-50.0, 200.0]])
        write_nifti_coil(sample_coil_on_grid(coil, lim, args.resolution), out, coil=coil)
    else:
        raise NavigatorError(f"{out}: unknown coil format (use .ccd, .tcd, .nii or .nii.gz)")
    console(args).print(f"wrote {out}")
    return 0
