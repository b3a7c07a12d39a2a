"""Tests of the flow metrics against hand-computed values and on synthetic translating events."""

from __future__ import annotations

import math

import pytest
import torch
from test_cmax import translating_texture_window

from tinyflow.cmax.event_list import EventsWithFlow
from tinyflow.cmax.splat import splat_bilinear, splat_nearest
from tinyflow.metrics.flow import (
    FlowErrorMetrics,
    angular_error_deg,
    event_pixel_mask,
    flow_error_sums,
    flow_warp_loss,
    ratio_squared_average_timestamps,
    rescale_flow,
)


def flow_image(vectors: list[list[tuple[float, float]]]) -> torch.Tensor:
    """[1, 2, H, W] flow from rows of (x, y) vectors."""
    return torch.tensor(vectors, dtype=torch.float64).permute(2, 0, 1).unsqueeze(0)


# Pixels, row-major (2 x 3): A error 1 px; B error 4 px on a 4 px GT (outlier); C error 4 px on a
# 100 px GT (not an outlier: 4 < 5 % of 100); D no events; E invalid GT; F exact.
PRED = flow_image([[(1, 0), (0, 0), (104, 0)], [(50, 50), (-50, 9), (2, 2)]])
GT = flow_image([[(0, 0), (4, 0), (100, 0)], [(0, 0), (0, 0), (2, 2)]])
EVENT_MASK = torch.tensor([[[True, True, True], [False, True, True]]])
VALID = torch.tensor([[[True, True, True], [True, False, True]]])
ANGLE_C = math.degrees(math.acos((104 * 100 + 1) / math.sqrt((104**2 + 1) * (100**2 + 1))))
ANGLE_B = math.degrees(math.acos(1 / math.sqrt(17)))


def test_flow_error_sums_by_hand():
    sums = flow_error_sums(PRED, GT, EVENT_MASK, VALID)
    assert sums.num_pixels.tolist() == [4]
    assert sums.endpoint_error_px.item() == pytest.approx(1 + 4 + 4 + 0)
    assert sums.outliers.item() == 1
    assert sums.angular_error_deg.item() == pytest.approx(45 + ANGLE_B + ANGLE_C + 0)
    assert sums.gt_magnitude_px.item() == pytest.approx(0 + 4 + 100 + math.sqrt(8))


def test_zero_flow_aee_is_the_mean_gt_magnitude():
    sums = flow_error_sums(torch.zeros_like(GT), GT, EVENT_MASK, VALID)
    assert sums.endpoint_error_px.item() == pytest.approx(sums.gt_magnitude_px.item())


def test_angular_error_of_simple_vectors():
    pred = torch.tensor([1.0, 0.0, 1.0, -1.0]).view(1, 2, 1, 2)  # (1, 1) and (0, -1)
    gt = torch.tensor([1.0, 0.0, 1.0, 1.0]).view(1, 2, 1, 2)  # (1, 1) and (0, 1)
    # (0, -1, 1) vs (0, 1, 1) are perpendicular
    torch.testing.assert_close(angular_error_deg(pred, gt), torch.tensor([[[0.0, 90.0]]]), atol=1e-3, rtol=0)


def test_outliers_need_both_conditions():
    gt = flow_image([[(10, 0), (100, 0), (1, 0)]])
    pred = flow_image([[(14, 0), (104, 0), (3, 0)]])  # errors 4 (> 3 px, > 0.5), 4 (< 5 px), 2 (< 3 px)
    everywhere = torch.ones(1, 1, 3, dtype=torch.bool)
    assert flow_error_sums(pred, gt, everywhere, everywhere).outliers.item() == 1


def test_rescale_flow_between_intervals():
    flow = torch.ones(2, 2, 1, 1)
    assert rescale_flow(flow, 10_000, 40_000).flatten().tolist() == [4.0] * 4
    per_element = rescale_flow(flow, torch.tensor([1000.0, 2000.0]), torch.tensor([4000.0, 1000.0]))
    assert per_element[:, 0].flatten().tolist() == [4.0, 0.5]
    with pytest.raises(ValueError, match="positive microseconds"):
        rescale_flow(flow, 0, 1000)


def test_flow_error_metrics_average_windows_per_recording():
    metrics = FlowErrorMetrics()
    single_pixel = torch.zeros(1, 2, 3, dtype=torch.bool)
    single_pixel[0, 0, 0] = True
    second_pred = torch.zeros_like(PRED)
    second_pred[0, 0, 0, 0] = 10.0  # 10 px error on pixel A (GT 0): outlier
    metrics.update(
        torch.cat((PRED, second_pred, PRED)),
        GT.expand(3, -1, -1, -1),
        torch.cat((EVENT_MASK, single_pixel, torch.zeros_like(single_pixel))),
        VALID.expand(3, -1, -1),
        recordings=["a", "a", "b"],
    )
    results = metrics.compute()
    assert set(results) == {"a"}  # the only window of "b" has no evaluated pixel
    first = results["a"]
    assert first.num_windows == 2
    assert first.aee_px == pytest.approx((9 / 4 + 10) / 2)  # mean of window means, not of pixels
    assert first.outlier_percent == pytest.approx((25 + 100) / 2)
    assert first.aae_deg == pytest.approx(((45 + ANGLE_B + ANGLE_C) / 4 + math.degrees(math.atan(10))) / 2)
    assert first.zero_flow_aee_px == pytest.approx(((104 + math.sqrt(8)) / 4 + 0) / 2)
    metrics.reset()
    assert metrics.compute() == {}


def test_flow_error_inputs_are_checked():
    with pytest.raises(ValueError, match="valid must be a bool tensor"):
        flow_error_sums(PRED, GT, EVENT_MASK, VALID.float())
    with pytest.raises(ValueError, match="expected 1 recording names"):
        FlowErrorMetrics().update(PRED, GT, EVENT_MASK, VALID, recordings=["a", "b"])


def two_events_window(flow_px: tuple[float, float]) -> EventsWithFlow:
    """Events at x = 0 (t_norm 0) and x = 1 (t_norm 1) on a 1 x 4 sensor, as if an edge moved 1 px right."""
    events = torch.tensor([[[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0]]], dtype=torch.float64)
    flow = torch.tensor([[flow_px, flow_px]], dtype=torch.float64)
    return EventsWithFlow(events, torch.ones(1, 2, dtype=torch.bool), flow)


def test_fwl_and_rsat_by_hand():
    window = two_events_window((1.0, 0.0))
    # at the window start both events land on pixel 0: IWE [2, 0, 0, 0] (var 1) vs [1, 1, 0, 0] (var 1/3)
    assert flow_warp_loss(window, (1, 4)).item() == pytest.approx(3.0)
    # forward: both at pixel 1 with average timestamp 1/2 -> 1/4; still: (0^2 + 1^2) / 2 pixels -> 1/2
    assert ratio_squared_average_timestamps(window, (1, 4)).item() == pytest.approx(0.5)


@pytest.mark.parametrize("splat", [splat_bilinear, splat_nearest])
def test_fwl_and_rsat_on_translating_texture(splat):
    sensor_size = (24, 24)
    # a dense texture: with few events per point, the bilinear fringe pixels of the sharp image keep
    # single-event timestamps and RSAT barely separates true from zero flow
    ((events, mask),) = translating_texture_window(
        sensor_size, flow_per_pass_px=(4.0, -3.0), num_passes=1, num_points=20, events_per_point=40
    )
    true_flow = torch.tensor([4.0, -3.0], dtype=torch.float64).expand(*events.shape[:2], 2)
    moving = EventsWithFlow(events, mask, true_flow)
    still = EventsWithFlow(events, mask, torch.zeros_like(true_flow))
    assert flow_warp_loss(moving, sensor_size, splat=splat).item() > 1.2
    assert ratio_squared_average_timestamps(moving, sensor_size, splat=splat).item() < 0.9
    assert flow_warp_loss(still, sensor_size, splat=splat).item() == 1.0
    assert ratio_squared_average_timestamps(still, sensor_size, splat=splat).item() == 1.0


def test_focus_metrics_check_their_input():
    window = two_events_window((1.0, 0.0))
    with pytest.raises(ValueError, match="x \\(pixel column\\) must be an integer in \\[0, 0\\]"):
        flow_warp_loss(window, (1, 1))
    bad_flow = EventsWithFlow(window.events, window.mask, window.flow_at_events[:, :1])
    with pytest.raises(ValueError, match="flow_at_events: expected shape \\(1, 2, 2\\)"):
        ratio_squared_average_timestamps(bad_flow, (1, 4))


def test_event_pixel_mask_marks_pixels_with_events_even_when_polarities_cancel():
    # Pixel (x=1, y=0) holds an ON and an OFF event (a voxel grid would cancel them); padding is ignored.
    events = torch.tensor(
        [[[1.0, 0.0, 0.2, 1.0], [1.0, 0.0, 0.2, -1.0], [2.0, 1.0, 0.5, 1.0], [0.0, 0.0, 0.0, 1.0]]]
    )
    mask = torch.tensor([[True, True, True, False]])
    pixels = event_pixel_mask(events, mask, (2, 3))
    expected = torch.tensor([[[False, True, False], [False, False, True]]])
    assert torch.equal(pixels, expected)
