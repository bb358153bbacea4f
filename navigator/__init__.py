"""navigator: plan non-invasive brain stimulation (TMS, tDCS) on each patient's own head.

World coordinates everywhere are the MRI's scanner RAS in millimetres; the numerical
layers use SI units internally.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
