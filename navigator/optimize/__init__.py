"""Optimization of TMS coil placement (reciprocity / auxiliary-dipole method) and of tDCS
montages (HD electrode currents by linear programming, conventional two-pad search).

See ``docs/optimization.md`` for the mathematics and the validation.
"""
