"""Reading and writing images (NIfTI, DICOM) and other input/output formats."""
