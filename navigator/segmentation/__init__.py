"""Head segmentation: T1 (optional T2) -> SimNIBS tissue labels, subject <-> MNI152 transforms, QC.

Public entry points:

* :func:`navigator.segmentation.step.segment_workspace` - the workspace step "segment".
* :func:`navigator.segmentation.pipeline.segment_head` - the same on in-memory volumes.

See ``docs/segmentation.md`` for the method, conventions and validation.
"""

from navigator.segmentation.pipeline import SegmentationResult, segment_head
from navigator.segmentation.step import segment_workspace

__all__ = ["SegmentationResult", "segment_head", "segment_workspace"]
