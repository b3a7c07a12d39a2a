"""Spiking neurons and networks (flow and depth); a network = a body + a head, pure, ``StatefulNetwork`` holds
its state."""

from tinyflow.models.body import LayerSpec, RecurrentBody, Skip
from tinyflow.models.convgru import ConvGRUFlowNet
from tinyflow.models.evflownet import EVFlowNet, LIFEVFlowNet, RecEVFlowNet
from tinyflow.models.fireflownet import FireFlowNet, LIFFireFlowNet
from tinyflow.models.firenet import FireNet, LIFFireNet, LIFFireNetShort
from tinyflow.models.heads import DepthHead, FlowHead, PredictionHead
from tinyflow.models.network import (
    MultiScaleDepthNetwork,
    MultiScaleFlowNetwork,
    RecurrentNetwork,
    event_presence_mask,
)
from tinyflow.models.stateful import StatefulNetwork, map_state
from tinyflow.models.stereospike import StereoSpike

__all__ = [
    "ConvGRUFlowNet",
    "DepthHead",
    "EVFlowNet",
    "FireFlowNet",
    "FireNet",
    "FlowHead",
    "LIFEVFlowNet",
    "LIFFireFlowNet",
    "LIFFireNet",
    "LIFFireNetShort",
    "LayerSpec",
    "MultiScaleDepthNetwork",
    "MultiScaleFlowNetwork",
    "PredictionHead",
    "RecEVFlowNet",
    "RecurrentBody",
    "RecurrentNetwork",
    "Skip",
    "StatefulNetwork",
    "StereoSpike",
    "event_presence_mask",
    "map_state",
]
