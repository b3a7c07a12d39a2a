"""The embedded synthetic event camera: textured layer scenes, ESIM-style events, exact ground truth."""

from tinyflow.synth.config import StereoConfig, SynthConfig
from tinyflow.synth.dataset import ensure_synthetic_dataset, write_synthetic_dataset
from tinyflow.synth.generate import SyntheticRecording, generate_recording
from tinyflow.synth.motion import (
    CameraLayerMotion,
    CameraMotion,
    ObjectMotion,
    SmoothRate,
    StereoShiftedMotion,
)
from tinyflow.synth.scene import Layer, Scene, sample_scene
from tinyflow.synth.textures import LayerTexture

__all__ = [
    "CameraLayerMotion",
    "CameraMotion",
    "Layer",
    "LayerTexture",
    "ObjectMotion",
    "Scene",
    "SmoothRate",
    "StereoConfig",
    "StereoShiftedMotion",
    "SynthConfig",
    "SyntheticRecording",
    "ensure_synthetic_dataset",
    "generate_recording",
    "sample_scene",
    "write_synthetic_dataset",
]
