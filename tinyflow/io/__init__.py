"""On-disk event formats: the canonical HDF5 layout and readers of other datasets' layouts."""

from tinyflow.io.canonical import CanonicalRecording, CanonicalWriter, write_canonical
from tinyflow.io.event_flow import EventFlowRecording
from tinyflow.io.recording import Recording
from tinyflow.io.registry import detect_layout, open_recording

__all__ = [
    "CanonicalRecording",
    "CanonicalWriter",
    "EventFlowRecording",
    "Recording",
    "detect_layout",
    "open_recording",
    "write_canonical",
]
