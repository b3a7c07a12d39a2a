"""Tests of the flow metrics against hand-computed values and on synthetic translating events."""

from __future__ import annotations

import math

import pytest
import torch
from test_cmax import translating_texture_window

from tinyflow.app.checks import ConfigError
from tinyflow.app.console import metric_selection, metrics_table
from tinyflow.cmax.event_list import EventsWithFlow
from tinyflow.cmax.splat import splat_bilinear, splat_nearest
from tinyflow.metrics.flow import (
    FLOW_METRICS,
    FlowErrorMetrics,
    angular_error_deg,
    event_pixel_mask,
    filtered_angular_error,
    flow_error_sums,
    flow_warp_loss,
    gt_weighted_angular_error,
    mean_flow_angular_error,
    normalised_angular_error,
    normalised_endpoint_error,
    ratio_squared_average_timestamps,
    rescale_flow,
)
from tinyflow.metrics.registry import Metric, TaskMetrics


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


# The low-power fork's metrics on a [1, 2, 2, 2] field (x, y) per pixel, angles between (u, v, 1) vectors:
#   p00: gt (3, 4), |gt| = 5;      pred (3, 0):  error |(0, -4)| = 4, NEE 4 / 5 = 0.8
#        angle: dot = 9 + 0 + 1 = 10, |pred| = sqrt(10), |gt| = sqrt(26)  -> acos(10 / sqrt(260))
#   p01: gt (0, 0), zero GT;       pred (1, 0):  left out of NEE / NAAE, weight 0, not above 0.5 px
#        angle: dot = 1, |pred| = sqrt(2), |gt| = 1                        -> 45 deg
#   p10: gt (0, 0.5), |gt| = 0.5;  pred (1, 0.5): error 1, NEE 1 / 0.5 = 2; |gt| = 0.5 is not > 0.5 px
#        angle: dot = 0.25 + 1 = 1.25, |pred| = 1.5, |gt| = sqrt(1.25)     -> acos(sqrt(1.25) / 1.5)
#   p11: not evaluated (mask False): gt (10, 0), pred (-10, 0) must change nothing
FORK_GT = flow_image([[(3, 4), (0, 0)], [(0, 0.5), (10, 0)]])
FORK_PRED = flow_image([[(3, 0), (1, 0)], [(1, 0.5), (-10, 0)]])
FORK_MASK = torch.tensor([[[True, True], [True, False]]])
A00 = math.degrees(math.acos(10 / math.sqrt(260)))
A01 = 45.0
A10 = math.degrees(math.acos(math.sqrt(1.25) / 1.5))


def test_fork_angles_by_hand():
    angles = angular_error_deg(FORK_PRED, FORK_GT)[0]
    assert angles[0, 0].item() == pytest.approx(A00)
    assert angles[0, 1].item() == pytest.approx(A01)
    assert angles[1, 0].item() == pytest.approx(A10)


def test_normalised_endpoint_error_by_hand():
    # pixels with |GT| >= 0.01 px: p00 and p10 -> (0.8 + 2) / 2
    nee = normalised_endpoint_error(FORK_PRED, FORK_GT, FORK_MASK)
    assert nee.tolist() == [pytest.approx(1.4)]
    # with the threshold above 0.5 px only p00 is left
    assert normalised_endpoint_error(FORK_PRED, FORK_GT, FORK_MASK, min_gt_px=0.6).item() == pytest.approx(
        0.8
    )


def test_normalised_angular_error_by_hand():
    # deg / px over p00 and p10: (A00 / 5 + A10 / 0.5) / 2
    naae = normalised_angular_error(FORK_PRED, FORK_GT, FORK_MASK)
    assert naae.item() == pytest.approx((A00 / 5 + A10 / 0.5) / 2)


def test_gt_weighted_angular_error_by_hand():
    # (5 A00 + 0 * 45 + 0.5 A10) / (5 + 0 + 0.5): the zero-GT pixel weighs nothing
    weighted = gt_weighted_angular_error(FORK_PRED, FORK_GT, FORK_MASK)
    assert weighted.item() == pytest.approx((5 * A00 + 0.5 * A10) / 5.5)


def test_filtered_angular_error_by_hand():
    # |GT| > 0.5 px: p00 only (p10 sits on the threshold, p01 is zero, p11 is masked out)
    assert filtered_angular_error(FORK_PRED, FORK_GT, FORK_MASK).item() == pytest.approx(A00)
    # threshold 0.4 px: p00 and p10
    assert filtered_angular_error(FORK_PRED, FORK_GT, FORK_MASK, threshold_px=0.4).item() == pytest.approx(
        (A00 + A10) / 2
    )


def test_mean_flow_angular_error_by_hand():
    # means over p00, p01, p10 (the zero-GT pixel counts: it is evaluated):
    #   pred ((3 + 1 + 1) / 3, (0 + 0 + 0.5) / 3) = (5/3, 1/6);  gt ((3 + 0 + 0) / 3, (4 + 0 + 0.5) / 3) = (1, 1.5)
    #   dot = 5/3 + 1/4 + 1 = 35/12;  |pred|^2 = 25/9 + 1/36 + 1 = 137/36;  |gt|^2 = 1 + 2.25 + 1 = 17/4
    #   cos = (35/12) / sqrt(137/36 * 17/4) = 35 / sqrt(2329)
    angle = mean_flow_angular_error(FORK_PRED, FORK_GT, FORK_MASK)
    assert angle.item() == pytest.approx(math.degrees(math.acos(35 / math.sqrt(2329))))


def test_fork_metrics_on_zero_gt_and_empty_masks():
    zero_gt = torch.zeros_like(FORK_GT)
    everywhere = torch.ones_like(FORK_MASK)
    nowhere = torch.zeros_like(FORK_MASK)
    # only zero GT: the normalised, weighted and filtered metrics have no pixel (NaN, no division by zero)
    for metric in (normalised_endpoint_error, normalised_angular_error, gt_weighted_angular_error):
        assert math.isnan(metric(FORK_PRED, zero_gt, everywhere).item()), metric.__name__
    assert math.isnan(filtered_angular_error(FORK_PRED, zero_gt, everywhere).item())
    # the angle of the means is defined: mean pred ((3 + 1 + 1 - 10) / 4, 0.5 / 4) = (-1.25, 0.125) vs (0, 0)
    #   cos = 1 / sqrt(1.25^2 + 0.125^2 + 1)
    expected = math.degrees(math.acos(1 / math.sqrt(1.25**2 + 0.125**2 + 1)))
    assert mean_flow_angular_error(FORK_PRED, zero_gt, everywhere).item() == pytest.approx(expected)
    # no evaluated pixel: every metric is NaN
    for metric in (
        normalised_endpoint_error,
        normalised_angular_error,
        gt_weighted_angular_error,
        filtered_angular_error,
        mean_flow_angular_error,
    ):
        assert math.isnan(metric(FORK_PRED, FORK_GT, nowhere).item()), metric.__name__
    # a near-zero GT below the epsilon is left out, not divided by
    tiny = FORK_GT.clone()
    tiny[0, :, 1, 0] = torch.tensor([0.0, 0.005])  # p10 |GT| 0.005 px < 0.01 px: only p00 is left
    assert normalised_endpoint_error(FORK_PRED, tiny, FORK_MASK).item() == pytest.approx(0.8)


def test_fork_metrics_check_their_input():
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        normalised_endpoint_error(FORK_PRED, FORK_GT, FORK_MASK.float())
    with pytest.raises(ValueError, match="pred and gt must both be"):
        mean_flow_angular_error(FORK_PRED[:, :1], FORK_GT[:, :1], FORK_MASK)


def test_fork_metrics_average_windows_where_defined():
    metrics = FlowErrorMetrics()
    everywhere = torch.ones_like(FORK_MASK)
    zero_gt = torch.zeros_like(FORK_GT)
    # recording "a": the hand-computed window, then a window with zero GT everywhere; "z": only zero GT
    metrics.update(
        torch.cat((FORK_PRED, FORK_PRED, FORK_PRED)),
        torch.cat((FORK_GT, zero_gt, zero_gt)),
        torch.cat((FORK_MASK, everywhere, everywhere)),
        torch.ones(3, 2, 2, dtype=torch.bool),
        recordings=["a", "a", "z"],
    )
    results = metrics.compute()
    first, zero = results["a"], results["z"]
    assert first.num_windows == 2
    # the zero-GT window has no NEE: the recording's NEE is the first window's, not an average with NaN
    assert first.nee == pytest.approx(1.4)
    assert first.aae_filtered_deg == pytest.approx(A00)
    # the AE of means is defined on both windows (second: mean pred (-1.25, 0.125) vs (0, 0))
    second_window = math.degrees(math.acos(1 / math.sqrt(1.25**2 + 0.125**2 + 1)))
    first_window = math.degrees(math.acos(35 / math.sqrt(2329)))
    assert first.mean_flow_ae_deg == pytest.approx((first_window + second_window) / 2)
    # the default AAE still averages both windows; window 2 against (0, 0, 1): cos = 1 / sqrt(|pred|^2 + 1)
    second_aae = sum(math.degrees(math.acos(1 / math.sqrt(n + 1))) for n in (9, 1, 1.25, 100)) / 4
    assert first.aae_deg == pytest.approx(((A00 + A01 + A10) / 3 + second_aae) / 2)
    # FlowErrors.values(): registry keys, a metric that no window gives is left out
    assert list(first.values()) == [m.key for m in FLOW_METRICS.metrics if m.key not in ("fwl", "rsat")]
    assert set(zero.values()) == {"aee", "outliers", "aee_zero", "aae", "ae_mean"}


def test_registry_declares_the_fork_metrics_outside_the_default_table():
    default = [m.key for m in FLOW_METRICS.reported("default")]
    assert default == ["aee", "outliers", "aee_zero", "aae", "fwl", "rsat"]
    full = [m.key for m in FLOW_METRICS.reported("full")]
    assert full == [*default, "nee", "naae", "aae_weighted", "aae_filtered", "ae_mean"]
    assert FLOW_METRICS.metric("naae").heading == "NAAE [deg/px]"
    assert FLOW_METRICS.metric("nee").heading == "NEE"  # a ratio
    assert all(m.lower_is_better for m in FLOW_METRICS.metrics if not m.default)
    assert FLOW_METRICS.monitor.key == "aee"  # checkpoint monitoring unchanged
    with pytest.raises(ValueError, match="metrics=all: expected default or full"):
        FLOW_METRICS.reported("all")


def test_select_keeps_the_selected_keys_of_every_recording_and_the_mean():
    metrics = TaskMetrics(
        "toy",
        (
            Metric("a", "A", None, True, "toy", "shown"),
            Metric("b", "B", "px", True, "toy", "extra", default=False),
        ),
        objective=("b",),  # the objective may be a non-default metric: selection only affects what is shown
    )
    results = {
        "recordings": {"r": {"a": 1.0, "b": 2.0}, "s": {"b": 3.0}},
        "mean": {"a": 1.0, "b": 2.5},
        "x": 0,
    }
    assert metrics.select(results) == {"recordings": {"r": {"a": 1.0}, "s": {}}, "mean": {"a": 1.0}, "x": 0}
    assert metrics.select(results, "full") == results
    assert results["mean"] == {"a": 1.0, "b": 2.5}  # the input is left as it was


def test_metrics_table_shows_what_was_selected():
    keys = [m.key for m in FLOW_METRICS.metrics]
    results = {"recordings": {"r": dict.fromkeys(keys, 1.0)}, "mean": dict.fromkeys(keys, 1.0)}

    def headers(selection: str) -> list[str]:
        table = metrics_table(FLOW_METRICS.select(results, selection), FLOW_METRICS, "t")
        return [str(column.header) for column in table.columns]

    assert headers("default") == [
        "recording",
        "AEE [px]",
        "outliers [%]",
        "zero-flow AEE [px]",
        "AAE [deg]",
        "FWL",
        "RSAT",
    ]
    assert headers("full")[7:] == [
        "NEE",
        "NAAE [deg/px]",
        "AAE |GT|-weighted [deg]",
        "AAE |GT| > 0.5 px [deg]",
        "AE of means [deg]",
    ]


def test_metric_selection_is_a_config_value():
    assert metric_selection(None) == "default"
    assert metric_selection("full") == "full"
    with pytest.raises(ConfigError, match="metrics=ful: expected default or full"):
        metric_selection("ful")
