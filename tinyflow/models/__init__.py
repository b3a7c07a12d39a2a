"""Spiking neurons and networks; a network = a body + a head, pure, ``StatefulNetwork`` holds its state."""

from tinyflow.models.body import LayerSpec, RecurrentBody, Skip
from tinyflow.models.fireflownet import FireFlowNet, LIFFireFlowNet
from tinyflow.models.firenet import FireNet, LIFFireNet, LIFFireNetShort
from tinyflow.models.heads import FlowHead, PredictionHead
from tinyflow.models.network import RecurrentNetwork, event_presence_mask
from tinyflow.models.stateful import StatefulNetwork, map_state

__all__ = [
    "FireFlowNet",
    "FireNet",
    "FlowHead",
    "LIFFireFlowNet",
    "LIFFireNet",
    "LIFFireNetShort",
    "LayerSpec",
    "PredictionHead",
    "RecurrentBody",
    "RecurrentNetwork",
    "Skip",
    "StatefulNetwork",
    "event_presence_mask",
    "map_state",
]
