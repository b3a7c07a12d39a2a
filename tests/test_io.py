"""On-disk formats: canonical writer/reader round trips, the event_flow reader, layout detection."""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import DepthGT, FlowGT, Frames
from tinyflow.io import (
    CanonicalRecording,
    CanonicalWriter,
    EventFlowRecording,
    Recording,
    open_recording,
    write_canonical,
)
from tinyflow.io.recording import MsIndexBuilder, ms_to_idx_from_t

SENSOR = (6, 8)  # (height, width)
H, W = SENSOR


def random_events(rng: np.random.Generator, n: int = 600, t_start_us: int = 0) -> Events:
    """Events over ~20 ms with repeated timestamps and a 4 ms hole (whole ms without events)."""
    t = np.sort(rng.integers(0, 16_000, n))
    t = np.where(t >= 6_000, t + 4_000, t) + t_start_us
    return Events(
        rng.integers(0, W, n).astype(np.uint16),
        rng.integers(0, H, n).astype(np.uint16),
        t.astype(np.int64),
        rng.integers(0, 2, n).astype(np.uint8),
    )


def random_flow(rng: np.random.Generator, k: int, with_valid: bool) -> FlowGT:
    starts = np.arange(k, dtype=np.int64) * 5_000
    valid = rng.random((k, H, W)) > 0.3 if with_valid else None
    return FlowGT(rng.normal(size=(k, 2, H, W)).astype(np.float32), starts, starts + 5_000, valid)


def assert_events_equal(actual: Events, expected: Events) -> None:
    for key in ("x", "y", "t_us", "p"):
        np.testing.assert_array_equal(getattr(actual, key), getattr(expected, key), err_msg=key)


def assert_flow_equal(actual: FlowGT, expected: FlowGT) -> None:
    np.testing.assert_array_equal(actual.flow, expected.flow)
    np.testing.assert_array_equal(actual.t_start_us, expected.t_start_us)
    np.testing.assert_array_equal(actual.t_end_us, expected.t_end_us)
    assert (actual.valid is None) == (expected.valid is None)
    if expected.valid is not None:
        np.testing.assert_array_equal(actual.valid, expected.valid)


def brute_force_ms_to_idx(t_us: np.ndarray) -> np.ndarray:
    """Entry k: first index with t >= k ms, for k = 0 .. (first k with no such event)."""
    table, k = [], 0
    while True:
        index = next((i for i, t in enumerate(t_us) if t >= 1000 * k), len(t_us))
        table.append(index)
        if index == len(t_us):
            return np.array(table, np.uint64)
        k += 1


def rewrite(path: Path, key: str, data: np.ndarray | None) -> None:
    """Replace one dataset of a file in place, keeping its attributes (None: delete it)."""
    with h5py.File(path, "r+") as file:
        attrs = dict(file[key].attrs)
        del file[key]
        if data is not None:
            file[key] = data
            file[key].attrs.update(attrs)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture(autouse=True)
def check_cache(tmp_path_factory, monkeypatch) -> Path:
    """Verdicts of the whole-file checks go to the test's own cache folder (outside its tmp_path)."""
    folder = tmp_path_factory.mktemp("check_cache")
    monkeypatch.setenv("TINYFLOW_CACHE_DIR", str(folder))
    return folder


# ----------------------------------------------------------------------------- canonical round trips


# HDF5 filter ids: 1 deflate (gzip), 2 shuffle, 32000 lzf, 32001 blosc, 32015 zstd
EXPECTED_FILTERS = {None: set(), "gzip": {1, 2}, "lzf": {2, 32000}, "blosc": {32001}, "zstd": {2, 32015}}


def filter_ids(dataset: h5py.Dataset) -> set[int]:
    plist = dataset.id.get_create_plist()
    return {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}


@pytest.mark.parametrize("compression", list(EXPECTED_FILTERS))
def test_round_trip_events_and_every_ground_truth_kind(tmp_path, rng, compression):
    events = random_events(rng)
    flows = {"dt1": random_flow(rng, 3, with_valid=True), "dt4": random_flow(rng, 2, with_valid=False)}
    depth_maps = rng.uniform(0.5, 9.0, (2, H, W)).astype(np.float32)
    depth_maps[0, 1, 2] = np.nan
    depth = DepthGT(depth_maps, np.array([1_000, 9_000], np.int64))
    frames = Frames(rng.integers(0, 256, (3, H, W)).astype(np.uint8), np.array([0, 7_000, 14_000], np.int64))
    calib = {
        "intrinsics": np.array([100.0, 100.0, 4.0, 3.0]),
        "rect": {"map_x": rng.random((H, W))},
        "fps": 30,
    }
    path = write_canonical(
        tmp_path / "rec.h5",
        events,
        SENSOR,
        t0_us=1_600_000_000_000_000,
        source="test",
        flows=flows,
        depth=depth,
        frames=frames,
        calib=calib,
        compression=compression,
    )

    rec = open_recording(path)
    assert isinstance(rec, CanonicalRecording)
    assert (rec.sensor_size, rec.t0_us, rec.num_events, rec.name) == (
        SENSOR,
        1_600_000_000_000_000,
        600,
        "rec",
    )
    assert rec.t_end_us == events.t_us[-1]
    window = rec.events(0, rec.num_events)
    assert_events_equal(window, events)
    assert (window.x.dtype, window.y.dtype, window.t_us.dtype, window.p.dtype) == (
        np.uint16,
        np.uint16,
        np.int64,
        np.uint8,
    )
    assert_events_equal(rec.events(123, 456), events[123:456])
    assert rec.flow_names == ["dt1", "dt4"]
    for name, expected in flows.items():
        assert_flow_equal(rec.flow(name), expected)
        np.testing.assert_array_equal(rec.flow_intervals(name)[0], expected.t_start_us)
        np.testing.assert_array_equal(rec.flow_intervals(name)[1], expected.t_end_us)
        for k in range(len(expected)):
            flow_k, valid_k = rec.flow_map(name, k)
            np.testing.assert_array_equal(flow_k, expected.flow[k])
            assert valid_k is None if expected.valid is None else np.array_equal(valid_k, expected.valid[k])
    np.testing.assert_array_equal(rec.depth().depth, depth.depth)  # NaN == NaN here
    np.testing.assert_array_equal(rec.depth().t_us, depth.t_us)
    np.testing.assert_array_equal(rec.frames().images, frames.images)
    np.testing.assert_array_equal(rec.frames().t_us, frames.t_us)
    stored_calib = rec.calib()
    np.testing.assert_array_equal(stored_calib["intrinsics"], calib["intrinsics"])
    np.testing.assert_array_equal(stored_calib["rect"]["map_x"], calib["rect"]["map_x"])
    assert stored_calib["fps"] == 30
    with h5py.File(path) as file:
        assert (file.attrs["source"], file.attrs["format_version"]) == ("test", 1)
        assert filter_ids(file["events/t"]) == EXPECTED_FILTERS[compression]
        assert filter_ids(file["flow/dt1/flow"]) == EXPECTED_FILTERS[compression]
    rec.close()


def test_recording_without_ground_truth_has_none(tmp_path, rng):
    rec = CanonicalRecording(write_canonical(tmp_path / "bare.h5", random_events(rng), SENSOR))
    assert (rec.flow_names, rec.depth(), rec.frames(), rec.calib()) == ([], None, None, {})
    with pytest.raises(KeyError, match=r"bare.h5: no ground-truth flow 'dt1' \(available: \[\]\)"):
        rec.flow("dt1")


def test_multiple_appends_equal_single_write(tmp_path, rng):
    events = random_events(rng, n=1_000)
    single = write_canonical(tmp_path / "single.h5", events, SENSOR, t0_us=5, compression="lzf")
    # cuts include an empty chunk and a cut inside a run of equal timestamps
    same_t = int(np.flatnonzero(np.diff(events.t_us) == 0)[0]) + 1
    cuts = [0, 1, 1, same_t, 500, 999, 1_000]
    with CanonicalWriter(tmp_path / "chunks.h5", SENSOR, t0_us=5, compression="lzf") as writer:
        for start, stop in itertools.pairwise(cuts):
            writer.append(events[start:stop])
    with h5py.File(single) as one, h5py.File(writer.path) as many:
        assert dict(one.attrs).keys() == dict(many.attrs).keys()
        for key in ("x", "y", "t", "p", "ms_to_idx"):
            np.testing.assert_array_equal(one[f"events/{key}"][:], many[f"events/{key}"][:], err_msg=key)


def test_ms_to_idx_matches_brute_force(tmp_path, rng):
    events = random_events(rng, n=400, t_start_us=2_500)  # no events in ms 0 and 1
    expected = brute_force_ms_to_idx(events.t_us)
    assert len(expected) == events.t_us[-1] // 1000 + 2
    rec = CanonicalRecording(write_canonical(tmp_path / "rec.h5", events, SENSOR))
    np.testing.assert_array_equal(rec.ms_to_idx(), expected)
    assert rec.ms_to_idx().dtype == np.uint64
    np.testing.assert_array_equal(ms_to_idx_from_t(events.t_us), expected)
    for chunk in (1, 7, 400):
        builder = MsIndexBuilder("mem", "t")
        for start in range(0, 400, chunk):
            builder.add(events.t_us[start : start + chunk])
        np.testing.assert_array_equal(builder.finish(), expected, err_msg=f"chunk {chunk}")


# ----------------------------------------------------------------------------- event_flow layout


def write_event_flow_file(
    path: Path,
    events: Events,
    t0_s: float,
    clock_us: np.ndarray,
    flow_maps: dict[str, np.ndarray],
    *,
    images: np.ndarray | None,
    t0_attr: bool,
    polarity: str,
    channels_last: tuple[str, ...] = (),
) -> None:
    """An event_flow / event_utils style file: absolute float seconds, one dataset per map or frame."""
    ps = {"bool": events.p.astype(bool), "uint8": events.p, "pm1": events.p.astype(np.int8) * 2 - 1}[polarity]
    with h5py.File(path, "w") as file:
        file["events/xs"] = events.x.astype(np.int16)
        file["events/ys"] = events.y.astype(np.int16)
        file["events/ts"] = t0_s + events.t_us * 1e-6
        file["events/ps"] = ps
        file.attrs.update(sensor_resolution=np.array(SENSOR), num_events=len(events))
        if t0_attr:
            file.attrs["t0"] = t0_s
        for j, t_us in enumerate(clock_us):
            if images is not None:
                file[f"images/image{j:09d}"] = images[j]
                file[f"images/image{j:09d}"].attrs["timestamp"] = t0_s + t_us * 1e-6
            for group, maps in flow_maps.items():
                key = f"{group}/flow{j:09d}"
                file[key] = np.moveaxis(maps[j], 0, -1) if group in channels_last else maps[j]
                file[key].attrs["timestamp"] = t0_s + t_us * 1e-6


def expected_flow(maps: np.ndarray, clock_us: np.ndarray, frames_apart: int) -> FlowGT:
    """Map j ends at frame j and starts frames_apart frames earlier; the first maps have no start."""
    return FlowGT(maps[frames_apart:], clock_us[:-frames_apart], clock_us[frames_apart:])


EVENT_FLOW_CASES = {
    # images give the clock; dt4 maps stored [H, W, 2]; bool polarity; t0 attribute before the first event
    "event_flow": dict(groups=("flow_dt1", "flow_dt4"), images=True, t0_attr=True, polarity="bool"),
    # no images: the dt1 maps give the clock; -1/+1 polarity; t0 = the first event's timestamp
    "no_images_no_t0": dict(groups=("flow_dt1", "flow_dt4"), images=False, t0_attr=False, polarity="pm1"),
    # HQF: one 'flow/' group, which is dt1
    "hqf": dict(groups=("flow",), images=True, t0_attr=True, polarity="uint8"),
}


@pytest.mark.parametrize("case", list(EVENT_FLOW_CASES))
def test_event_flow_file_reads_like_the_canonical_file(tmp_path, rng, case):
    spec = EVENT_FLOW_CASES[case]
    events = random_events(rng, n=500, t_start_us=250)
    t0_s = 1_600_000_000.123456
    clock_us = np.arange(8, dtype=np.int64) * 3_000 + 1_000
    maps = {group: rng.normal(size=(8, 2, H, W)).astype(np.float32) for group in spec["groups"]}
    images = rng.integers(0, 256, (8, H, W)).astype(np.uint8)
    write_event_flow_file(
        tmp_path / "ef.h5",
        events,
        t0_s,
        clock_us,
        maps,
        images=images if spec["images"] else None,
        t0_attr=spec["t0_attr"],
        polarity=spec["polarity"],
        channels_last=("flow_dt4",),
    )
    shift_us = 0 if spec["t0_attr"] else int(events.t_us[0])  # without the attribute, t0 is the first event
    shifted = Events(events.x, events.y, events.t_us - shift_us, events.p)
    names = {"flow": ("dt1", 1), "flow_dt1": ("dt1", 1), "flow_dt4": ("dt4", 4)}
    flows = {names[g][0]: expected_flow(m, clock_us - shift_us, names[g][1]) for g, m in maps.items()}
    frames = Frames(images, clock_us - shift_us) if spec["images"] else None
    t0_us = round((t0_s + shift_us * 1e-6) * 1e6)
    write_canonical(tmp_path / "canon.h5", shifted, SENSOR, t0_us=t0_us, flows=flows, frames=frames)

    ef, canon = open_recording(tmp_path / "ef.h5"), open_recording(tmp_path / "canon.h5")
    assert isinstance(ef, EventFlowRecording) and isinstance(canon, CanonicalRecording)
    assert (ef.sensor_size, ef.t0_us, ef.num_events) == (canon.sensor_size, canon.t0_us, canon.num_events)
    n = ef.num_events
    for width in (0, 1, 17, 100):
        for start in range(0, n - width + 1, 13):
            assert_events_equal(ef.events(start, start + width), canon.events(start, start + width))
    assert_events_equal(ef.events(0, n), shifted)
    np.testing.assert_array_equal(ef.ms_to_idx(), canon.ms_to_idx())
    assert ef.flow_names == canon.flow_names == sorted(flows)
    for name in flows:
        assert_flow_equal(ef.flow(name), canon.flow(name))
        assert_flow_equal(ef.flow(name), flows[name])
        for k in range(len(flows[name])):
            np.testing.assert_array_equal(ef.flow_map(name, k)[0], canon.flow_map(name, k)[0])
    if frames is None:
        assert ef.frames() is None
    else:
        np.testing.assert_array_equal(ef.frames().images, canon.frames().images)
        np.testing.assert_array_equal(ef.frames().t_us, canon.frames().t_us)


def test_event_flow_ms_to_idx_is_built_in_chunks(tmp_path, rng):
    events = random_events(rng, n=300, t_start_us=1_700)
    write_event_flow_file(
        tmp_path / "ef.h5", events, 12.5, np.zeros(0), {}, images=None, t0_attr=True, polarity="bool"
    )
    rec = EventFlowRecording(tmp_path / "ef.h5")
    rec.ms_index_chunk = 7
    np.testing.assert_array_equal(rec.ms_to_idx(), brute_force_ms_to_idx(events.t_us))
    assert rec.flow_names == [] and rec.frames() is None


@pytest.mark.parametrize("layout", ["canonical", "event_flow"])
def test_index_at_time_matches_searchsorted(tmp_path, rng, layout):
    events = random_events(rng, n=800, t_start_us=1_500)
    path = tmp_path / "rec.h5"
    if layout == "canonical":
        write_canonical(path, events, SENSOR)
    else:
        write_event_flow_file(
            path, events, 100.0, np.zeros(0), {}, images=None, t0_attr=True, polarity="bool"
        )
    rec = open_recording(path)
    queries = np.concatenate(
        [
            rng.integers(-2_000, int(events.t_us[-1]) + 3_000, 300),
            np.arange(0, 24_000, 1_000),
            events.t_us[::17],
            events.t_us[::17] + 1,
        ]
    )
    np.testing.assert_array_equal(
        rec.index_at_time(queries), np.searchsorted(events.t_us, queries, side="left")
    )


# ----------------------------------------------------------------------------- atomic writes, pickling


def test_crash_inside_writer_leaves_no_file(tmp_path, rng):
    target = tmp_path / "rec.h5"
    with pytest.raises(RuntimeError, match="simulated crash"), CanonicalWriter(target, SENSOR) as writer:
        writer.append(random_events(rng))
        assert not target.exists()
        raise RuntimeError("simulated crash")
    assert list(tmp_path.iterdir()) == []


def test_bad_append_inside_writer_leaves_no_file(tmp_path, rng):
    events = random_events(rng)
    with (
        pytest.raises(EventDataError, match=r"rec.h5: key 'events/t' must be non-decreasing"),
        CanonicalWriter(tmp_path / "rec.h5", SENSOR) as writer,
    ):
        writer.append(events[300:])
        writer.append(events[:300])
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_unless_asked(tmp_path, rng):
    path = write_canonical(tmp_path / "rec.h5", random_events(rng, n=50), SENSOR)
    with pytest.raises(FileExistsError, match=r"rec.h5: already exists; pass overwrite=True"):
        write_canonical(path, random_events(rng, n=60), SENSOR)
    assert CanonicalRecording(path).num_events == 50
    write_canonical(path, random_events(rng, n=70), SENSOR, overwrite=True)
    assert CanonicalRecording(path).num_events == 70
    assert [p.name for p in tmp_path.iterdir()] == ["rec.h5"]


def read_window(recording: Recording, start: int, stop: int) -> tuple[np.ndarray, ...]:
    """Runs in a child process."""
    events = recording.events(start, stop)
    return events.x, events.y, events.t_us, events.p, recording.ms_to_idx()


def test_recordings_survive_pickling_and_read_in_a_child_process(tmp_path, rng):
    events = random_events(rng)
    canon = CanonicalRecording(write_canonical(tmp_path / "canon.h5", events, SENSOR))
    write_event_flow_file(
        tmp_path / "ef.h5", events, 3.0, np.zeros(0), {}, images=None, t0_attr=True, polarity="bool"
    )
    event_flow = EventFlowRecording(tmp_path / "ef.h5")
    for rec in (canon, event_flow):
        rec.events(0, 10)  # the parent's handle is open now
        assert_events_equal(pickle.loads(pickle.dumps(rec)).events(5, 250), events[5:250])
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        results = pool.starmap(read_window, [(canon, 5, 250), (event_flow, 100, 600)])
    assert_events_equal(Events(*results[0][:4]), events[5:250])
    assert_events_equal(Events(*results[1][:4]), events[100:600])
    for result in results:
        np.testing.assert_array_equal(result[4], brute_force_ms_to_idx(events.t_us))
    assert_events_equal(canon.events(0, 600), events)  # the parent still reads


def test_empty_window_is_valid_and_out_of_range_is_an_error(tmp_path, rng):
    rec = CanonicalRecording(write_canonical(tmp_path / "rec.h5", random_events(rng), SENSOR))
    assert len(rec.events(42, 42)) == 0 and len(rec.events(600, 600)) == 0
    with pytest.raises(IndexError, match=r"rec.h5: event range \[590, 601\) is outside \[0, 600\)"):
        rec.events(590, 601)


# ----------------------------------------------------------------------------- bad input


def test_missing_file_non_hdf5_and_unknown_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.h5: no such file"):
        open_recording(tmp_path / "nope.h5")
    with pytest.raises(FileNotFoundError, match=r"nope.h5: no such file"):
        CanonicalRecording(tmp_path / "nope.h5")
    (tmp_path / "notes.txt").write_text("1 2 3 1\n")
    with pytest.raises(EventDataError, match=r"notes.txt: not an HDF5 file"):
        open_recording(tmp_path / "notes.txt")
    with h5py.File(tmp_path / "other.h5", "w") as file:
        file["events/a"] = np.zeros(3)
        file["pose"] = np.zeros(3)
    with pytest.raises(
        EventDataError,
        match=r"other.h5: unknown event file layout; keys found: \['events', "
        r"'pose', 'events/a'\]; expected one of canonical: events/x.*event_flow: events/xs",
    ):
        open_recording(tmp_path / "other.h5")


CANONICAL_CORRUPTIONS = {
    "missing t": (
        "events/t",
        None,
        r"missing key 'events/t'; keys found in 'events': \['ms_to_idx', 'p', 'x', 'y'\]",
    ),
    "float x": (
        "events/x",
        np.zeros(600, np.float32),
        r"key 'events/x' must have a signed integer or unsigned integer dtype, got float32",
    ),
    "2-D x": (
        "events/x",
        np.zeros((600, 2), np.uint16),
        r"key 'events/x' must have shape \[N\], got \[600, 2\]",
    ),
    "short y": (
        "events/y",
        np.zeros(599, np.uint16),
        r"key 'events/y' must have shape \[N=600\], got \[599\]",
    ),
    "flow not [K,2,H,W]": (
        "flow/dt1/flow",
        np.zeros((3, H, W, 2), np.float32),
        r"key 'flow/dt1/flow' must have shape \[K, 2, 6, 8\], got \[3, 6, 8, 2\]",
    ),
    "flow times": (
        "flow/dt1/t_end_us",
        np.zeros(4, np.int64),
        r"key 'flow/dt1/t_end_us' must have shape \[K=3\], got \[4\]",
    ),
    "short ms_to_idx": (
        "events/ms_to_idx",
        np.zeros(5, np.uint64),
        r"key 'events/ms_to_idx' must have at least 20 entries",
    ),
}


@pytest.mark.parametrize("case", list(CANONICAL_CORRUPTIONS))
def test_corrupt_canonical_file_fails_at_open(tmp_path, rng, case):
    key, data, message = CANONICAL_CORRUPTIONS[case]
    path = write_canonical(
        tmp_path / "rec.h5", random_events(rng), SENSOR, flows={"dt1": random_flow(rng, 3, True)}
    )
    rewrite(path, key, data)
    with pytest.raises(EventDataError, match=f"rec.h5: {message}"):
        open_recording(path)


def test_bad_events_in_canonical_file_fail_at_open(tmp_path, rng):
    """Caught when the file is opened, quoting the index from the start of the file (not of a window)."""
    events = random_events(rng)
    path = write_canonical(tmp_path / "rec.h5", events, SENSOR)
    t = events.t_us.copy()
    t[100], t[101] = t[101] + 1, t[100]
    rewrite(path, "events/t", t)
    with pytest.raises(
        EventDataError,
        match=rf"rec.h5: events key 't' must be non-decreasing; t\[101\]={t[101]} µs < t\[100\]={t[100]} µs "
        r"\(key 'events/t', event 101 of the file\)",
    ):
        CanonicalRecording(path)
    rewrite(path, "events/t", events.t_us)
    x = events.x.copy()
    x[400] = W
    rewrite(path, "events/x", x)
    with pytest.raises(
        EventDataError,
        match=r"rec.h5: events key 'x' must lie in \[0, 7\] for sensor_size \(height, width\)=\(6, 8\); "
        r"x\[400\]=8 \(key 'events/x', event 400 of the file\)",
    ):
        CanonicalRecording(path)


def test_empty_recordings_fail_at_open(tmp_path, rng):
    path = write_canonical(tmp_path / "rec.h5", random_events(rng), SENSOR)
    for key, dtype in (("x", np.uint16), ("y", np.uint16), ("t", np.int64), ("p", np.uint8)):
        rewrite(path, f"events/{key}", np.zeros(0, dtype))
    with pytest.raises(EventDataError, match=r"rec.h5: recording has no events"):
        open_recording(path)
    write_event_flow_file(
        tmp_path / "ef.h5", Events.empty(), 1.0, np.zeros(0), {}, images=None, t0_attr=True, polarity="bool"
    )
    with pytest.raises(EventDataError, match=r"ef.h5: recording has no events"):
        open_recording(tmp_path / "ef.h5")
    with (
        pytest.raises(EventDataError, match=r"none.h5: recording has no events"),
        CanonicalWriter(tmp_path / "none.h5", SENSOR) as writer,
    ):
        writer.append(Events.empty())
    assert not (tmp_path / "none.h5").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: Events(e.x + 2, e.y, e.t_us, e.p), r"events key 'x' must lie in \[0, 7\]"),
        (lambda e: Events(e.x, e.y, e.t_us[::-1].copy(), e.p), r"events key 't' must be non-decreasing"),
        (lambda e: Events(e.x, e.y, e.t_us - 1_000, e.p), r"key 'events/t' must be >= 0 µs since t0"),
        (lambda e: Events(e.x, e.y, e.t_us, e.p + 1), r"events key 'p' must be 0 \(OFF\) or 1 \(ON\)"),
    ],
)
def test_writer_rejects_bad_events(tmp_path, rng, change, message):
    events = change(random_events(rng))
    with pytest.raises(EventDataError, match=f"rec.h5: {message}"):
        write_canonical(tmp_path / "rec.h5", events, SENSOR)
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_ground_truth(tmp_path, rng):
    events = random_events(rng)
    good = random_flow(rng, 2, with_valid=True)
    cases = [
        (
            {"flows": {"dt1": FlowGT(good.flow[:, :, :, :4], good.t_start_us, good.t_end_us)}},
            r"key 'flow/dt1/flow' must have shape \[K, 2, 6, 8\], got \[2, 2, 6, 4\]",
        ),
        (
            {"flows": {"dt1": FlowGT(good.flow, good.t_start_us[:1], good.t_end_us)}},
            r"key 'flow/dt1/t_start_us' must have shape \[K=2\], got \[1\]",
        ),
        (
            {"flows": {"dt1": FlowGT(good.flow, good.t_end_us, good.t_start_us)}},
            r"key 'flow/dt1/t_end_us' must be >= t_start_us",
        ),
        (
            {"flows": {"dt1": FlowGT(good.flow[:0], good.t_start_us[:0], good.t_end_us[:0])}},
            r"key 'flow/dt1/flow' has no maps",
        ),
        (
            {"frames": Frames(np.zeros((2, H, W), np.float32), np.array([0, 1]))},
            r"key 'images/images' must be uint8, got float32",
        ),
        (
            {"depth": DepthGT(np.zeros((2, H, W), np.float32), np.array([5, 1]))},
            r"key 'depth/t_us' must be non-decreasing",
        ),
        ({"calib": {"model": "radtan"}}, r"key 'calib/model' must be numeric"),
    ]
    for kwargs, message in cases:
        with pytest.raises(EventDataError, match=f"rec.h5: {message}"):
            write_canonical(tmp_path / "rec.h5", events, SENSOR, **kwargs)
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(EventDataError, match=r"rec.h5: 'sensor_size' must be \(height, width\)"):
        CanonicalWriter(tmp_path / "rec.h5", (0, 8))


def test_event_flow_bad_input(tmp_path, rng):
    events = random_events(rng, n=200)
    path = tmp_path / "ef.h5"
    clock = np.arange(3, dtype=np.int64) * 5_000
    flow = {"flow_dt1": rng.normal(size=(3, 2, H, W)).astype(np.float32)}
    write_event_flow_file(path, events, 50.0, clock, flow, images=None, t0_attr=True, polarity="bool")
    with h5py.File(path, "r+") as file:
        del file.attrs["sensor_resolution"]
    with pytest.raises(
        EventDataError,
        match=r"ef.h5: root attribute 'sensor_resolution' \(height, width\) is "
        r"missing; pass sensor_size=\(height, width\)",
    ):
        open_recording(path)
    assert open_recording(path, sensor_size=SENSOR).sensor_size == SENSOR

    def fails(key: str, data: np.ndarray, message: str, at_read: bool = False) -> None:
        write_event_flow_file(path, events, 50.0, clock, flow, images=None, t0_attr=True, polarity="bool")
        rewrite(path, key, data)
        with pytest.raises(EventDataError, match=f"ef.h5: {message}"):
            rec = EventFlowRecording(path)
            if at_read:
                rec.events(0, len(events))

    fails("events/xs", events.x.astype(np.float64), r"key 'events/xs' must have a signed integer or unsigned")
    fails("events/ts", np.zeros((200, 1)), r"key 'events/ts' must have shape \[N=200\], got \[200, 1\]")
    fails("events/ts", 50 + events.t_us.astype(np.int64), r"key 'events/ts' must have a floating-point dtype")
    fails(
        "events/ps",
        events.p.astype(np.int8) * 2,
        r"events key 'p' must be 0/1 or -1/\+1 \(OFF/ON\); p\[\d+\]=2 \(key 'events/ps', event \d+ of the file\)",
    )
    fails(
        "flow_dt1/flow000000001",
        np.zeros((H, W), np.float32),
        r"key 'flow_dt1/flow000000001' must be a float "
        r"flow map of shape \[2, 6, 8\] or \[6, 8, 2\], got float32 \[6, 8\]",
    )
    fails("events/ts", 50 + events.t_us[::-1] * 1e-6, r"events key 't' must be non-decreasing", True)
    write_event_flow_file(path, events, 50.0, clock, flow, images=None, t0_attr=True, polarity="bool")
    rewrite(path, "events/ts", 50 + np.sort(rng.random(200))[::-1] * 1e-3)
    with pytest.raises(
        EventDataError,
        match=r"ef.h5: events key 't' must be non-decreasing; t\[\d+\]=\d+ µs < t\[\d+\]=\d+ µs "
        r"\(key 'events/ts', event \d+ of the file\)",
    ):
        EventFlowRecording(path)  # at open, not when ms_to_idx is first built
    write_event_flow_file(
        path, events, 50.0, clock, {"flow_dt4": flow["flow_dt1"]}, images=None, t0_attr=True, polarity="bool"
    )
    with pytest.raises(EventDataError, match=r"ef.h5: flow groups \['flow_dt4'\] need a frame clock"):
        EventFlowRecording(path)
    images = np.zeros((3, H, W), np.uint8)
    write_event_flow_file(path, events, 50.0, clock, flow, images=images, t0_attr=True, polarity="bool")
    with h5py.File(path, "r+") as file:
        file["flow_dt1/flow000000002"].attrs["timestamp"] = 50.0123
    with pytest.raises(
        EventDataError,
        match=r"ef.h5: key 'flow_dt1/flow000000002' has timestamp 12300 µs since t0, "
        r"which is not on the frame clock \(the image timestamps\)",
    ):
        EventFlowRecording(path, sensor_size=SENSOR)
    with h5py.File(path, "r+") as file:
        del file["flow_dt1/flow000000002"].attrs["timestamp"]
    with pytest.raises(
        EventDataError, match=r"ef.h5: key 'flow_dt1/flow000000002' has no attribute 'timestamp'"
    ):
        EventFlowRecording(path)


def test_written_file_has_the_usual_permissions(tmp_path, rng):
    path = write_canonical(tmp_path / "rec.h5", random_events(rng, n=20), SENSOR)
    (tmp_path / "plain").touch()
    assert path.stat().st_mode == (tmp_path / "plain").stat().st_mode
