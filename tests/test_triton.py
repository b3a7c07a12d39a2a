"""The Triton kernels against the PyTorch references: outputs and gradients.

Without CUDA the kernels run in Triton's CPU interpreter (TRITON_INTERPRET=1, set here before the kernels
are first imported), on tiny inputs; with CUDA they are compiled and run on the GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton")

from test_cmax import random_passes  # noqa: E402
from test_warp import random_warp_inputs  # noqa: E402

from tinyflow.cmax import CMaxLoss  # noqa: E402
from tinyflow.cmax.backend import resolve_backend  # noqa: E402
from tinyflow.cmax.splat import splat_points  # noqa: E402
from tinyflow.cmax.warp import warp_to_references  # noqa: E402

SENSOR = (5, 6)
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def outputs_and_gradients(function, inputs, differentiable, seed=0):
    """function(*inputs) and the gradients of a fixed random read-out of it w.r.t. inputs[differentiable]."""
    inputs = [v.clone().requires_grad_(i in differentiable) for i, v in enumerate(inputs)]
    output = function(*inputs)
    readout = torch.rand(output.shape, generator=torch.Generator().manual_seed(seed), dtype=output.dtype)
    grads = torch.autograd.grad(
        (output * readout.to(output.device)).sum(),
        [inputs[i] for i in differentiable],
        allow_unused=True,  # the flow maps of a single pass
        materialize_grads=True,
    )
    return output, grads


def assert_backends_agree(function, inputs, differentiable):
    expected = outputs_and_gradients(lambda *v: function(*v, backend="torch"), inputs, differentiable)
    actual = outputs_and_gradients(lambda *v: function(*v, backend="triton"), inputs, differentiable)
    torch.testing.assert_close(actual[0], expected[0], **TOLERANCE)
    for got, want in zip(actual[1], expected[1], strict=True):
        torch.testing.assert_close(got, want, **TOLERANCE)


def splat_inputs(num_points, dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    points = torch.rand(2, num_points, 2, generator=generator, dtype=dtype) * 9 - 1.5  # some outside
    points[0, :6] = torch.tensor([[0, 0], [5, 4], [5.5, 2], [-0.5, 1], [2, 3], [-7, 40]], dtype=dtype)
    channel = torch.randint(0, 3, (2, num_points), generator=generator)
    weights = torch.rand(2, num_points, 2, generator=generator, dtype=dtype)
    return [v.to(DEVICE) for v in (points, channel, weights)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_splat_matches_torch(dtype):
    def splat(points, channel, weights, backend):
        return splat_points(points, channel, weights, 3, SENSOR, backend)

    assert_backends_agree(splat, splat_inputs(40, dtype), differentiable=(0, 2))
    assert_backends_agree(splat, [v[:, :0] for v in splat_inputs(40, dtype)], differentiable=(0, 2))


def warp_inputs(dtype, num_events=21, num_passes=3, seed=0):
    inputs = random_warp_inputs(num_events=num_events, num_passes=num_passes, seed=seed, flow_scale=2.0)
    start, t_norm, pass_index, own_flow, flow_maps = (v.to(DEVICE) for v in inputs)
    start[0, :4] = torch.tensor([[0.0, 0.0], [5.0, 4.0], [2.0, 4.0], [5.0, 1.0]])  # on the borders
    return [
        v.to(dtype) if v.is_floating_point() else v for v in (start, t_norm, pass_index, own_flow, flow_maps)
    ]


def iterative(start, t_norm, pass_index, own_flow, flow_maps, backend):
    references = torch.arange(flow_maps.shape[1] + 1, device=start.device).to(start.dtype)
    return warp_to_references(
        start, t_norm, pass_index, own_flow, flow_maps, references, "iterative", backend
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_passes", [1, 4])
def test_iterative_warp_matches_torch(dtype, num_passes):
    inputs = warp_inputs(dtype, num_passes=num_passes)
    positions = iterative(*inputs, backend="torch")
    assert ((positions < 0) | (positions[..., 0] > SENSOR[1] - 1).unsqueeze(-1)).any()  # events leave
    assert_backends_agree(iterative, inputs, differentiable=(0, 1, 3, 4))


def test_iterative_warp_with_zero_flow_and_without_events():
    start, t_norm, pass_index, own_flow, flow_maps = warp_inputs(torch.float32)
    zero = [start, t_norm, pass_index, torch.zeros_like(own_flow), torch.zeros_like(flow_maps)]
    assert_backends_agree(iterative, zero, differentiable=(0, 1, 3, 4))
    empty = [start[:, :0], t_norm[:, :0], pass_index[:0], own_flow[:, :0], flow_maps]
    assert iterative(*empty, backend="triton").shape == (2, 0, 4, 2)


LOSS_OPTIONS = [
    {"warp": "linear"},
    {"warp": "iterative", "references": "all", "border_compensation": True, "scales": 2, "reach": 2},
    {"warp": "iterative", "references": "ends", "focus": "variance", "max_grad_events": 1000},
]


@pytest.mark.parametrize("options", LOSS_OPTIONS)
def test_loss_matches_torch(options):
    passes, flows = random_passes(batch=2, sensor_size=SENSOR, events_per_pass=7, num_passes=3, seed=1)
    passes = [(events.float().to(DEVICE), mask.to(DEVICE)) for events, mask in passes]
    flows = [2 * f.float().to(DEVICE) for f in flows]
    empty = [(events, torch.zeros_like(mask)) for events, mask in passes]
    for windows, maps in ((passes, flows), (passes, [torch.zeros_like(f) for f in flows]), (empty, flows)):

        def loss(*maps, backend, windows=windows):
            cmax = CMaxLoss(SENSOR, smoothness_weight=0.01, subpixel_jitter=True, backend=backend, **options)
            torch.manual_seed(0)
            for (events, mask), flow in zip(windows, maps, strict=True):
                cmax.accumulate(events, mask, flow)
            return cmax.compute()

        assert_backends_agree(loss, maps, differentiable=range(len(maps)))


def test_backend_resolution(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_backend("torch", cpu) == "torch"
    assert resolve_backend("auto", cpu) == "torch"
    assert resolve_backend("auto", torch.device("cuda")) == "triton"
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="backend='triton' needs CUDA tensors"):
        resolve_backend("triton", cpu)
    with pytest.raises(ValueError, match="backend: expected one of auto, torch, triton"):
        resolve_backend("cuda", cpu)


def test_tinyflow_imports_and_trains_without_triton():
    script = """
import sys
sys.modules["triton"] = None  # as if Triton could not be imported
import torch
import tinyflow, tinyflow.cmax
from tinyflow.cmax import CMaxIterativeLoss
from tinyflow.cmax.backend import resolve_backend, triton_available
assert not triton_available()
loss = CMaxIterativeLoss((4, 4))
flow = torch.zeros(1, 2, 4, 4, requires_grad=True)
loss.accumulate(torch.tensor([[[1.0, 2.0, 0.5, 1.0]]]), torch.ones(1, 1, dtype=torch.bool), flow)
loss.compute().backward()
try:
    resolve_backend("triton", torch.device("cuda"))
except ImportError as error:
    assert "Triton could not be loaded" in str(error)
else:
    raise AssertionError("no ImportError")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_native_kernels_match_torch_at_training_size():
    """128 x 128, 10 passes of 2000 events, batch 2: the iterative loss and its gradient."""
    generator = torch.Generator().manual_seed(0)
    sensor, passes, events_per_pass = (128, 128), 10, 2000
    windows, maps = [], []
    for _ in range(passes):
        shape = (2, events_per_pass)
        events = torch.stack(
            (
                torch.randint(0, 128, shape, generator=generator).float(),
                torch.randint(0, 128, shape, generator=generator).float(),
                torch.rand(shape, generator=generator),
                torch.randint(0, 2, shape, generator=generator).float() * 2 - 1,
            ),
            dim=-1,
        )
        windows.append((events.cuda(), torch.ones(shape, dtype=torch.bool, device="cuda")))
        maps.append((4 * torch.rand(2, 2, *sensor, generator=generator) - 2).cuda())

    def loss(*flows, backend):
        cmax = CMaxLoss(sensor, warp="iterative", references="all", border_compensation=True, backend=backend)
        for (events, mask), flow in zip(windows, flows, strict=True):
            cmax.accumulate(events, mask, flow)
        return cmax.compute()

    assert_backends_agree(loss, maps, differentiable=range(passes))
