"""Spiking neurons and flow networks; networks are pure modules, ``StatefulNetwork`` holds their state."""

from tinyflow.models.fireflownet import FireFlowNet, LIFFireFlowNet
from tinyflow.models.firenet import FireNet, LIFFireNet, LIFFireNetShort
from tinyflow.models.network import SequentialFlowNetwork, event_presence_mask
from tinyflow.models.stateful import StatefulNetwork, map_state

__all__ = [
    "FireFlowNet",
    "FireNet",
    "LIFFireFlowNet",
    "LIFFireNet",
    "LIFFireNetShort",
    "SequentialFlowNetwork",
    "StatefulNetwork",
    "event_presence_mask",
    "map_state",
]
