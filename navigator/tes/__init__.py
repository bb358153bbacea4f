"""Transcranial electrical stimulation: electrodes, montages, tDCS/tACS/tRNS/TI simulation.

Modules: :mod:`electrodes` (shapes, placement on the scalp), :mod:`cem` (complete electrode
model solver), :mod:`montage` (CLI specs and montage JSON), :mod:`simulate` (workflow), :mod:`ti`.
"""
