"""TMS: coil models (.ccd, .tcd, NIfTI grids, parametric builder, bundled library), coil poses,
the primary field dA/dt and TMS simulations (E = -grad v - dA/dt).

Units: coil geometry in millimetres in the coil frame (origin at the centre of the coil's
bottom face, z into the head, y along the handle, x = y cross z); dipole moments in A m^2
per ampere of coil current; fields in V/m; dI/dt in A/s. See ``docs/tms.md``.
"""
