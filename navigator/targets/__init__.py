"""Head coordinates and targets: fiducials, EEG 10-10 positions, scalp rules, the DLPFC
target library, target SPEC resolution, fMRI-personalized targets and regions of interest.

All points are subject world RAS in millimetres unless a name says MNI.
"""
