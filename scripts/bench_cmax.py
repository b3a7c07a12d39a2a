"""Benchmark the CMax losses: forward + backward time and peak memory of one accumulation window.

    python scripts/bench_cmax.py [--device cpu|cuda] [--sizes 10000 100000] [--passes 10]
                                 [--batch 8] [--resolution 128] [--repeats 3] [--threads N]
                                 [--memory-sizes 10000 30000 100000] [--memory-methods torch_iterative]

Cases (``--methods`` picks some):

- ``event_flow``: a direct implementation of event_flow's loss formulation (Hagenaars et al., NeurIPS
  2021), the baseline: per reference and polarity, separate scatter-adds of the four bilinear corners
  for the count and the timestamp images.
- ``torch_linear``, ``torch_iterative``: :class:`tinyflow.cmax.CMaxLinearLoss` and
  :class:`tinyflow.cmax.CMaxIterativeLoss` (default options) with ``backend="torch"``.
- ``triton_linear``, ``triton_iterative``: the same with ``backend="triton"`` (CUDA only).

Each case accumulates ``--passes`` passes of ``--sizes`` random events per pass and batch element
(random flow maps of up to 3 px per pass), computes the loss and back-propagates to the flow maps.
Prints one JSON line per (events, method): median wall-clock seconds and, on the CPU, median process
CPU seconds (the steadier figure on a loaded machine), peak memory in MiB above the inputs (CPU: peak
resident set size, VmHWM of a fresh process; CUDA: peak allocated), and each as a ratio to the
baseline measured in the same run. Then the memory table: one JSON line per ``--memory-sizes`` entry
and ``--memory-methods`` case (``"table": "memory"``), its peak memory and MiB per 10k events per
pass, each measured in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from tinyflow.cmax import CMaxIterativeLoss, CMaxLinearLoss
from tinyflow.cmax.smoothness import charbonnier

Inputs = tuple[list[tuple[Tensor, Tensor]], list[Tensor]]
SMOOTHNESS_WEIGHT = 1e-3


def random_inputs(batch: int, size: int, passes: int, num_events: int, device: str, seed: int = 0) -> Inputs:
    """Per pass: events [B, N, 4] (x, y, t_norm, p_sign) with mask, and a leaf flow map [B, 2, H, W]."""
    generator = torch.Generator().manual_seed(seed)
    windows, flows = [], []
    for _ in range(passes):
        shape = (batch, num_events)
        events = torch.stack(
            (
                torch.randint(0, size, shape, generator=generator).float(),
                torch.randint(0, size, shape, generator=generator).float(),
                torch.rand(shape, generator=generator).sort(dim=1).values,
                torch.randint(0, 2, shape, generator=generator).float() * 2 - 1,
            ),
            dim=-1,
        )
        windows.append((events.to(device), torch.ones(shape, dtype=torch.bool, device=device)))
        flow = 3 * (2 * torch.rand(batch, 2, size, size, generator=generator) - 1)
        flows.append(flow.to(device).requires_grad_(True))
    return windows, flows


def event_flow_loss(windows: list[tuple[Tensor, Tensor]], flows: list[Tensor]) -> Tensor:
    """event_flow's CMax loss, written directly: linear warp to both ends, per-polarity corner scatters."""
    batch, _, height, width = flows[0].shape
    passes = len(flows)
    xs, ys, taus, pols, us, vs = [], [], [], [], [], []
    for index, ((events, _), flow) in enumerate(zip(windows, flows, strict=True)):
        x, y, t_norm, p = events.unbind(-1)
        pixel = (y.long() * width + x.long()).unsqueeze(1).expand(-1, 2, -1)
        u, v = flow.flatten(2).gather(2, pixel).unbind(1)
        xs.append(x), ys.append(y), taus.append((index + t_norm) / passes), pols.append(p)
        us.append(u * passes), vs.append(v * passes)
    x, y, tau, p, u, v = (torch.cat(c, dim=1) for c in (xs, ys, taus, pols, us, vs))
    loss = x.new_zeros(())
    for t_ref, stamp in ((1.0, tau), (0.0, 1 - tau)):
        warped_x, warped_y = x + (t_ref - tau) * u, y + (t_ref - tau) * v
        top, left = torch.floor(warped_y), torch.floor(warped_x)
        index, weight = [], []
        for row, column in ((top, left), (top, left + 1), (top + 1, left), (top + 1, left + 1)):
            share = (1 - (warped_y - row).abs()) * (1 - (warped_x - column).abs())
            inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
            index.append(((row * width + column) * inside).long())
            weight.append(share * inside)
        index, weight = torch.cat(index, dim=1), torch.cat(weight, dim=1)
        images = []
        for polarity in (p > 0, p < 0):
            mask = polarity.to(weight.dtype).repeat(1, 4)
            for values in (weight * mask, weight * mask * stamp.repeat(1, 4)):
                images.append(weight.new_zeros(batch, height * width).scatter_add(1, index, values))
        count_on, stamp_on, count_off, stamp_off = images
        average_on, average_off = stamp_on / (count_on + 1e-9), stamp_off / (count_off + 1e-9)
        nonzero = ((count_on + count_off) > 0).sum(dim=1)
        loss = loss + ((average_on.square() + average_off.square()).sum(dim=1) / (nonzero + 1e-9)).sum()
    maps = torch.stack(flows, dim=1)
    differences = (
        maps[..., :, :-1] - maps[..., :, 1:],
        maps[..., :-1, :] - maps[..., 1:, :],
        maps[..., :-1, :-1] - maps[..., 1:, 1:],
        maps[..., 1:, :-1] - maps[..., :-1, 1:],
        maps[:, :-1] - maps[:, 1:],
    )
    smoothness = sum(charbonnier(d).sum() for d in differences) / (5 * passes)
    return loss + SMOOTHNESS_WEIGHT * smoothness


def tinyflow_loss(loss_class: type, backend: str, size: int) -> Callable[..., Tensor]:
    loss = loss_class((size, size), smoothness_weight=SMOOTHNESS_WEIGHT, backend=backend)

    def run(windows: list[tuple[Tensor, Tensor]], flows: list[Tensor]) -> Tensor:
        loss.reset()
        for (events, mask), flow in zip(windows, flows, strict=True):
            loss.accumulate(events, mask, flow)
        return loss.compute()

    return run


def build_methods(size: int) -> dict[str, Callable[..., Tensor]]:
    return {
        "event_flow": event_flow_loss,
        "torch_linear": tinyflow_loss(CMaxLinearLoss, "torch", size),
        "torch_iterative": tinyflow_loss(CMaxIterativeLoss, "torch", size),
        "triton_linear": tinyflow_loss(CMaxLinearLoss, "triton", size),
        "triton_iterative": tinyflow_loss(CMaxIterativeLoss, "triton", size),
    }


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def step(method: Callable[..., Tensor], inputs: Inputs, device: str) -> None:
    """One forward + backward of the loss w.r.t. the flow maps."""
    windows, flows = inputs
    for flow in flows:
        flow.grad = None
    method(windows, flows).backward()
    if device == "cuda":
        torch.cuda.synchronize()


def peak_memory_mib(name: str, config: dict) -> float:
    """Peak memory (MiB) of one first run above the inputs, measured in this (fresh) process.

    CPU: peak resident set size (VmHWM, reset through /proc/self/clear_refs); CUDA: peak allocated.
    """
    device = config["device"]
    inputs = random_inputs(config["batch"], config["resolution"], config["passes"], config["events"], device)
    method = build_methods(config["resolution"])[name]
    if device == "cuda":
        step(method, inputs, device)  # Triton compiles on the first call
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step(method, inputs, device)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kib("VmRSS")
    step(method, inputs, device)
    return (_status_kib("VmHWM") - base) / 2**10


def median_seconds(
    names: list[str], inputs: Inputs, device: str, repeats: int, resolution: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Median forward + backward wall-clock and process CPU seconds per method, the methods interleaved
    within each repeat."""
    methods = build_methods(resolution)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for name in names:
        step(methods[name], inputs, device)  # warm-up (and Triton compilation)
    for _ in range(repeats):
        for name in names:
            start, start_cpu = time.perf_counter(), time.process_time()
            step(methods[name], inputs, device)
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return tuple({name: statistics.median(v) for name, v in d.items()} for d in (wall, cpu))


def _initialise(threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)


def case_config(args: argparse.Namespace, num_events: int) -> dict[str, object]:
    """The settings of one case as printed with its results."""
    return {
        "device": args.device,
        "batch": args.batch,
        "resolution": args.resolution,
        "passes": args.passes,
        "events": num_events,
    }


def memory_table(args: argparse.Namespace, spawn: multiprocessing.context.SpawnContext) -> None:
    """Peak memory of ``--memory-methods`` at every ``--memory-sizes`` entry, each in a fresh process."""
    for name in args.memory_methods:
        for num_events in args.memory_sizes:
            config = case_config(args, num_events)
            with spawn.Pool(1, initializer=_initialise, initargs=(args.threads,), maxtasksperchild=1) as pool:
                peak = pool.apply(peak_memory_mib, (name, config))
            record = {"table": "memory", **config, "method": name, "peak_mib": round(peak, 1)}
            record["mib_per_10k_events"] = round(peak / (num_events / 10_000), 1)
            print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="events per pass")
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=128, help="height = width in pixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=None, help="default: all that run on the device")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[10_000, 30_000, 100_000])
    parser.add_argument("--memory-methods", nargs="*", default=["torch_iterative"])
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads {args.threads}: expected at least 1")
    known = list(build_methods(args.resolution))
    names = args.methods or [n for n in known if args.device == "cuda" or not n.startswith("triton")]
    for option, chosen in (("--methods", names), ("--memory-methods", args.memory_methods)):
        if unknown := sorted(set(chosen) - set(known)):
            parser.error(f"{option}: unknown {unknown}; choose from {known}")
    _initialise(args.threads)
    spawn = multiprocessing.get_context("spawn")
    for num_events in args.sizes:
        config = case_config(args, num_events)
        memory = {}
        for name in names:
            with spawn.Pool(1, initializer=_initialise, initargs=(args.threads,), maxtasksperchild=1) as pool:
                memory[name] = pool.apply(peak_memory_mib, (name, config))
        inputs = random_inputs(args.batch, args.resolution, args.passes, num_events, args.device)
        seconds, cpu_seconds = median_seconds(names, inputs, args.device, args.repeats, args.resolution)
        for name in names:
            record = {**config, "threads": torch.get_num_threads(), "method": name}
            record["seconds"] = round(seconds[name], 4)
            if args.device == "cpu":
                record["cpu_seconds"] = round(cpu_seconds[name], 4)
            record["peak_mib"] = round(memory[name], 1)
            if "event_flow" in names:
                record["time_vs_event_flow"] = round(seconds[name] / seconds["event_flow"], 3)
                if args.device == "cpu":
                    record["cpu_time_vs_event_flow"] = round(cpu_seconds[name] / cpu_seconds["event_flow"], 3)
                record["memory_vs_event_flow"] = round(memory[name] / memory["event_flow"], 3)
            print(json.dumps(record), flush=True)
    memory_table(args, spawn)


if __name__ == "__main__":
    main()
