"""Whole-file checks at open (tinyflow.io.checks): broken files of every reader, the verdict cache."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import re
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from dataset_fixtures import write_ecd, write_uzh_fpv

from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import FlowGT
from tinyflow.io import CanonicalRecording, EventFlowRecording, checks, open_recording, text, write_canonical
from tinyflow.io.dsec import DSECRecording
from tinyflow.io.ecd import open_ecd
from tinyflow.io.h5 import H5Recording
from tinyflow.io.mvsec import MVSECRecording
from tinyflow.io.recording import ms_to_idx_from_t
from tinyflow.io.uzh_fpv import open_uzh_fpv

SENSOR = (6, 8)  # (height, width)
HOUR_NS = 3600 * 10**9


@pytest.fixture(autouse=True)
def check_cache(tmp_path_factory, monkeypatch) -> Path:
    """Verdicts go to the test's own cache folder."""
    folder = tmp_path_factory.mktemp("check_cache")
    monkeypatch.setenv(checks.CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def settle(path: Path, hours_ago: float = 1.0) -> None:
    """Date the file back, so that its verdict is cached (a just-written file's is not, see RACY_NS)."""
    ns = time.time_ns() - int(hours_ago * HOUR_NS)
    os.utime(path, ns=(ns, ns))


def raw_events(rng: np.random.Generator, n: int, sensor: tuple[int, int]) -> dict[str, np.ndarray]:
    """Valid events as int64 columns: t from 0 µs over ~n/2 ms with repeats, x, y inside ``sensor``, p 0/1."""
    return {
        "x": rng.integers(0, sensor[1], n),
        "y": rng.integers(0, sensor[0], n),
        "t": np.sort(rng.integers(0, n * 500, n)),
        "p": rng.integers(0, 2, n),
    }


def write_raw_canonical(path: Path, ev: dict[str, np.ndarray], sensor=SENSOR, ms_to_idx=None) -> Path:
    """A canonical file written with h5py (the writer refuses bad events), uncompressed."""
    with h5py.File(path, "w") as file:
        for key, dtype in (("x", np.uint16), ("y", np.uint16), ("t", np.int64), ("p", np.uint8)):
            file[f"events/{key}"] = ev[key].astype(dtype)
        table = ms_to_idx_from_t(np.maximum.accumulate(ev["t"])) if ms_to_idx is None else ms_to_idx
        file["events/ms_to_idx"] = table
        file.attrs.update(sensor_size=np.array(sensor), t0_us=np.int64(0), source="test", format_version=1)
    return path


T0_S = 1000.0


def write_layout(layout: str, folder: Path, ev: dict[str, np.ndarray]) -> Callable[[], H5Recording]:
    """Write ``ev`` in ``layout`` and return a function opening it with that layout's reader."""
    if layout == "canonical":
        path = write_raw_canonical(folder / "rec.h5", ev)
        return lambda: CanonicalRecording(path)
    if layout == "event_flow":
        path = folder / "rec.h5"
        with h5py.File(path, "w") as file:
            file["events/xs"] = ev["x"].astype(np.int16)
            file["events/ys"] = ev["y"].astype(np.int16)
            file["events/ts"] = T0_S + ev["t"] * 1e-6
            file["events/ps"] = ev["p"].astype(bool)
            file.attrs.update(sensor_resolution=np.array(SENSOR), t0=T0_S)
        return lambda: EventFlowRecording(path)
    if layout == "dsec":
        path = folder / "events.h5"
        with h5py.File(path, "w") as file:
            for key, dtype in (("x", np.uint16), ("y", np.uint16), ("t", np.uint32), ("p", np.uint8)):
                file[f"events/{key}"] = ev[key].astype(dtype)
            t = np.maximum.accumulate(ev["t"])
            file["ms_to_idx"] = np.searchsorted(t, np.arange(t[-1] // 1000 + 1) * 1000).astype(np.uint64)
            file["t_offset"] = np.int64(5_000_000)
        return lambda: DSECRecording(path)
    if layout == "mvsec":
        path = folder / "rec_data.hdf5"
        with h5py.File(path, "w") as file:
            p = ev["p"].astype(np.float64) * 2 - 1
            file["davis/left/events"] = np.stack([ev["x"], ev["y"], T0_S + ev["t"] * 1e-6, p], 1).astype(
                float
            )
            file["davis/left/image_raw"] = np.zeros((2, 260, 346), np.uint8)
            file["davis/left/image_raw_ts"] = np.array([T0_S, T0_S + 0.01])
        return lambda: MVSECRecording(path)
    raise ValueError(layout)


LAYOUT_SENSOR = {"canonical": SENSOR, "event_flow": SENSOR, "dsec": (480, 640), "mvsec": (260, 346)}
T_KEY = {
    "canonical": "events/t",
    "event_flow": "events/ts",
    "dsec": "events/t",
    "mvsec": "davis/left/events[:, 2]",
}
X_KEY = {
    "canonical": "events/x",
    "event_flow": "events/xs",
    "dsec": "events/x",
    "mvsec": "davis/left/events[:, 0]",
}
LAYOUTS = list(LAYOUT_SENSOR)


@pytest.mark.parametrize("index", [7_777, 3_000], ids=["inside-a-chunk", "first-of-a-chunk"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_decreasing_timestamp_beyond_the_first_chunk_quotes_its_index_in_the_file(
    tmp_path, rng, monkeypatch, layout, index
):
    monkeypatch.setattr(H5Recording, "check_chunk", 1_000)
    ev = raw_events(rng, 10_000, LAYOUT_SENSOR[layout])
    ev["t"][0] = 0  # MVSEC counts time from the first event
    ev["t"][index] = ev["t"][index - 1] - 250
    opener = write_layout(layout, tmp_path, ev)
    message = (
        f"events key 't' must be non-decreasing; t[{index}]={ev['t'][index]} µs < t[{index - 1}]="
        f"{ev['t'][index - 1]} µs (key '{T_KEY[layout]}', event {index:,} of the file)"
    )
    with pytest.raises(EventDataError, match=r"\.(h5|hdf5): " + re.escape(message)):
        opener()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_coordinate_outside_the_sensor_quotes_its_index_in_the_file(tmp_path, rng, monkeypatch, layout):
    monkeypatch.setattr(H5Recording, "check_chunk", 1_000)
    height, width = LAYOUT_SENSOR[layout]
    ev = raw_events(rng, 10_000, (height, width))
    ev["x"][8_888] = width
    opener = write_layout(layout, tmp_path, ev)
    message = (
        f"events key 'x' must lie in [0, {width - 1}] for sensor_size (height, width)=({height}, {width}); "
        f"x[8888]={width} (key '{X_KEY[layout]}', event 8,888 of the file)"
    )
    with pytest.raises(EventDataError, match=re.escape(message)):
        opener()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_valid_file_of_every_layout_opens_and_gives_the_ms_index_of_its_timestamps(
    tmp_path, rng, monkeypatch, layout
):
    monkeypatch.setattr(H5Recording, "check_chunk", 999)
    ev = raw_events(rng, 5_000, LAYOUT_SENSOR[layout])
    ev["t"] -= ev["t"][0]
    recording = write_layout(layout, tmp_path, ev)()
    expected = ms_to_idx_from_t(ev["t"])
    np.testing.assert_array_equal(recording.ms_to_idx()[: len(expected)], expected)
    np.testing.assert_array_equal(recording.events(0, 5_000).t_us, ev["t"])


def test_decrease_at_event_5_000_000_with_the_default_chunk(tmp_path):
    """A 5M-event file (uncompressed, cheap columns): the decrease lies in the third default chunk."""
    n = 5_000_100
    zeros = np.zeros(n, np.uint8)
    t = np.arange(n, dtype=np.int64)
    table = ms_to_idx_from_t(t)
    t[5_000_000] = 4_999_567
    path = write_raw_canonical(
        tmp_path / "big.h5", {"x": zeros, "y": zeros, "t": t, "p": zeros}, ms_to_idx=table
    )
    assert checks.CHECK_CHUNK < 5_000_000
    with pytest.raises(
        EventDataError,
        match=re.escape(
            "big.h5: events key 't' must be non-decreasing; t[5000000]=4999567 µs < t[4999999]=4999999 µs "
            "(key 'events/t', event 5,000,000 of the file)"
        ),
    ):
        open_recording(path)


# ----------------------------------------------------------------------------- broken files


def test_missing_file_names_it(tmp_path):
    for opener in (open_recording, CanonicalRecording, EventFlowRecording, MVSECRecording, DSECRecording):
        with pytest.raises(
            FileNotFoundError, match=r"nope.h5: no such file \(expected an HDF5 event recording\)"
        ):
            opener(tmp_path / "nope.h5")


def test_truncated_hdf5_file_names_it_in_every_reader(tmp_path, rng):
    path = write_canonical(tmp_path / "rec.h5", Events(*raw_events(rng, 600, SENSOR).values()), SENSOR)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    for opener in (open_recording, CanonicalRecording, EventFlowRecording, MVSECRecording, DSECRecording):
        with pytest.raises(
            EventDataError,
            match=r"rec.h5: HDF5 cannot read it \(.*truncated file.*\); a truncated or corrupted",
        ):
            opener(path)


def test_text_or_empty_file_named_h5_is_not_an_hdf5_file(tmp_path):
    (tmp_path / "notes.h5").write_text("0.1 2 3 1\n0.2 3 4 0\n")
    (tmp_path / "empty.h5").touch()
    for name in ("notes.h5", "empty.h5"):
        for opener in (open_recording, CanonicalRecording, EventFlowRecording):
            with pytest.raises(
                EventDataError, match=rf"{name}: not an HDF5 file \(expected an HDF5 event recording\)"
            ):
                opener(tmp_path / name)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("canonical", r"missing key 'events/t'; keys found in 'events': \['ms_to_idx', 'p', 'x', 'y'\]"),
        ("event_flow", r"missing key 'events/ts'; keys found in 'events': \['ps', 'xs', 'ys'\]"),
        ("dsec", r"missing key 'events/t'; keys found in 'events': \['p', 'x', 'y'\]"),
        (
            "mvsec",
            r"missing key 'davis/left/events'; keys found in 'davis/left': \['image_raw', 'image_raw_ts'\]",
        ),
    ],
)
def test_missing_key_names_the_file_and_the_keys_found(tmp_path, rng, layout, message):
    opener = write_layout(layout, tmp_path, raw_events(rng, 100, LAYOUT_SENSOR[layout]))
    path = next(p for p in tmp_path.iterdir() if p.suffix in (".h5", ".hdf5"))
    with h5py.File(path, "r+") as file:
        del file[T_KEY[layout].removesuffix("[:, 2]")]
    with pytest.raises(EventDataError, match=rf"{path.name}: {message}"):
        opener()


def test_corrupted_chunk_fails_at_open_naming_the_file(tmp_path, rng):
    path = write_canonical(tmp_path / "rec.h5", Events(*raw_events(rng, 600, SENSOR).values()), SENSOR)
    with h5py.File(path) as file:
        info = file["events/x"].id.get_chunk_info(0)  # x: not read by the metadata checks
    with path.open("r+b") as handle:
        handle.seek(info.byte_offset + info.size // 4)
        handle.write(np.random.default_rng(0).integers(0, 256, info.size // 2, dtype=np.uint8).tobytes())
    with pytest.raises(
        EventDataError, match=r"rec.h5: HDF5 cannot read events \[0, 600\) \(.*\); a corrupted file\?"
    ):
        CanonicalRecording(path)


def test_bad_values_in_a_canonical_file_quote_key_index_and_expected_range(tmp_path, rng):
    ev = raw_events(rng, 600, SENSOR)
    cases = {
        "y": (
            np.where(np.arange(600) == 321, 6, ev["y"]),
            r"events key 'y' must lie in \[0, 5\] for sensor_size "
            r"\(height, width\)=\(6, 8\); y\[321\]=6 \(key 'events/y', event 321 of the file\)",
        ),
        "p": (
            np.where(np.arange(600) == 123, 3, ev["p"]),
            r"events key 'p' must be 0 \(OFF\) or 1 \(ON\); p\[123\]=3 \(key 'events/p', event 123 of the file\)",
        ),
    }
    for key, (column, message) in cases.items():
        path = write_raw_canonical(tmp_path / "rec.h5", {**ev, key: column})
        with pytest.raises(EventDataError, match=f"rec.h5: {message}"):
            CanonicalRecording(path)
    with h5py.File(tmp_path / "rec.h5", "r+") as file:
        file["events/p"][...] = ev["p"]
        file["events/t"][0] = -5
    with pytest.raises(
        EventDataError,
        match=r"rec.h5: events key 't' must be >= 0 µs since t0; t\[0\]=-5 µs \(key 'events/t'",
    ):
        CanonicalRecording(tmp_path / "rec.h5")


def test_dtypes_lengths_and_emptiness_are_checked(tmp_path, rng):
    ev = raw_events(rng, 600, SENSOR)
    path = write_raw_canonical(tmp_path / "rec.h5", ev)

    def replaced(key: str, data: np.ndarray, message: str) -> None:
        write_raw_canonical(path, ev)
        with h5py.File(path, "r+") as file:
            del file[key]
            file[key] = data
        with pytest.raises(EventDataError, match=f"rec.h5: {message}"):
            open_recording(path)

    replaced(
        "events/x",
        ev["x"].astype(np.float32),
        r"key 'events/x' must have a signed integer or unsigned integer dtype, got float32",
    )
    replaced(
        "events/y", ev["y"][:599].astype(np.uint16), r"key 'events/y' must have shape \[N=600\], got \[599\]"
    )
    write_raw_canonical(path, {k: v[:0] for k, v in ev.items()}, ms_to_idx=np.zeros(1, np.uint64))
    with pytest.raises(EventDataError, match=r"rec.h5: recording has no events \(key 'events/t' is empty\)"):
        open_recording(path)
    ef = write_layout("event_flow", tmp_path, ev)
    with h5py.File(tmp_path / "rec.h5", "r+") as file:
        xs = file["events/xs"][:]
        del file["events/xs"]
        file["events/xs"] = xs.astype(np.float64)
    with pytest.raises(
        EventDataError, match=r"rec.h5: key 'events/xs' must have a signed integer or unsigned"
    ):
        ef()


def test_event_flow_negative_coordinate_and_nan_timestamp(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(H5Recording, "check_chunk", 100)
    ev = raw_events(rng, 600, SENSOR)
    ev["y"][432] = -1
    with pytest.raises(
        EventDataError, match=r"events key 'y' must lie in \[0, 5\].*y\[432\]=-1 \(key 'events/ys', event 432"
    ):
        write_layout("event_flow", tmp_path, ev)()
    ev["y"][432] = 0
    opener = write_layout("event_flow", tmp_path, ev)
    with h5py.File(tmp_path / "rec.h5", "r+") as file:
        file["events/ts"][250] = np.nan
    with pytest.raises(
        EventDataError,
        match=r"rec.h5: events key 't' must be finite timestamps; t\[250\]=nan s \(key 'events/ts', event 250",
    ):
        opener()


def test_ground_truth_and_ms_index_are_checked(tmp_path, rng):
    events = Events(*raw_events(rng, 600, SENSOR).values())
    starts = np.array([0, 10_000, 20_000], np.int64)
    flow = FlowGT(np.zeros((3, 2, *SENSOR), np.float32), starts, starts + 10_000)
    path = write_canonical(tmp_path / "rec.h5", events, SENSOR, flows={"dt1": flow}, compression=None)

    def fails(key: str, data: np.ndarray, message: str) -> None:
        with h5py.File(path, "r+") as file:
            original = file[key][()]
            del file[key]
            file[key] = data
        with pytest.raises(EventDataError, match=f"rec.h5: {message}"):
            CanonicalRecording(path)
        with h5py.File(path, "r+") as file:
            del file[key]
            file[key] = original

    fails(
        "flow/dt1/flow",
        np.zeros((3, 2, 6, 7), np.float32),
        r"key 'flow/dt1/flow' must have shape \[K, 2, 6, 8\], got \[3, 2, 6, 7\]",
    )
    fails(
        "flow/dt1/t_end_us",
        starts[:2] + 10_000,
        r"key 'flow/dt1/t_end_us' must have shape \[K=3\], got \[2\]",
    )
    fails(
        "flow/dt1/t_start_us",
        np.array([0, 20_000, 10_000]),
        r"key 'flow/dt1/t_start_us' must be non-decreasing; entry 2 is 10000 µs < 20000 µs of entry 1",
    )
    fails(
        "flow/dt1/t_end_us",
        np.array([10_000, 5_000, 30_000]),
        r"key 'flow/dt1/t_end_us' must be non-decreasing; entry 1 is 5000 µs < 10000 µs of entry 0",
    )
    fails(
        "flow/dt1/t_end_us",
        np.array([10_000, 15_000, 19_000]),
        r"key 'flow/dt1/t_end_us' must be >= t_start_us for every map; map 2 ends at 19000 µs, before it "
        r"starts \(20000 µs\)",
    )
    table = ms_to_idx_from_t(events.t_us)
    wrong = table.copy()
    wrong[3] += 1
    fails(
        "events/ms_to_idx",
        wrong,
        rf"key 'events/ms_to_idx' disagrees with 'events/t' at entry 3: it holds {wrong[3]}, but the first event "
        rf"with t >= 3000 µs is event {table[3]}",
    )
    CanonicalRecording(path).close()  # restored: valid again


def test_a_changed_file_is_an_error_when_a_pickled_recording_reopens_it(tmp_path, rng):
    path = write_canonical(tmp_path / "rec.h5", Events(*raw_events(rng, 600, SENSOR).values()), SENSOR)
    recording = CanonicalRecording(path)
    blob = pickle.dumps(recording)  # as sent to a DataLoader worker
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(
        EventDataError, match=r"rec.h5: the file changed on disk since it was opened and checked"
    ):
        pickle.loads(blob).events(0, 10)


# ----------------------------------------------------------------------------- text readers


def test_ecd_text_checks_time_order_and_coordinates_as_it_parses(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(text, "TEXT_CHUNK_LINES", 5_000)
    events_txt = write_ecd(tmp_path, "office_zigzag", rng) / "events.txt"
    lines = events_txt.read_text().splitlines(keepends=True)
    original = list(lines)
    t, x, y, p = lines[14_999].split()
    lines[15_000] = f"0.000000001 {x} {y} {p}\n"  # line 15,001: the first of the fourth chunk
    events_txt.write_text("".join(lines))
    with pytest.raises(
        EventDataError,
        match=r"events.txt: events key 't' must be non-decreasing; t\[15000\]=-?\d+ µs < t\[14999\]=\d+ µs "
        r"\(key 'column t', line 15001 of the file\)",
    ):
        open_ecd(tmp_path, "office_zigzag")
    lines = list(original)
    t, x, y, p = lines[20].split()
    lines[20] = f"{t} 240 {y} {p}\n"
    events_txt.write_text("".join(lines))
    with pytest.raises(
        EventDataError,
        match=r"events.txt: events key 'x' must lie in \[0, 239\] for sensor_size \(height, width\)=\(180, 240\); "
        r"x\[20\]=240 \(key 'column x', line 21 of the file\)",
    ):
        open_ecd(tmp_path, "office_zigzag")


def test_uzh_fpv_line_numbers_count_the_comment_lines(tmp_path, rng):
    events_txt = write_uzh_fpv(tmp_path, "indoor_forward_3", rng) / "events.txt"
    lines = events_txt.read_text().splitlines(keepends=True)
    assert lines[0].startswith("#")
    t, x, y, p = lines[101].split()  # event 100
    lines[102] = f"{float(t) - 0.5:.9f} {x} {y} {p}\n"  # event 101 on line 103
    events_txt.write_text("".join(lines))
    with pytest.raises(
        EventDataError,
        match=r"events key 't' must be non-decreasing; t\[101\]=.*\(key 'column t', line 103 of the file\)",
    ):
        open_uzh_fpv(tmp_path, "indoor_forward_3")


# ----------------------------------------------------------------------------- the verdict cache


def test_second_open_reads_no_events_and_a_touched_file_is_checked_again(tmp_path, rng, monkeypatch):
    path = write_canonical(tmp_path / "rec.h5", Events(*raw_events(rng, 600, SENSOR).values()), SENSOR)
    settle(path)
    CanonicalRecording(path).close()
    entry = json.loads(checks.entry_path(path).read_text())
    stat = path.stat()
    assert (entry["path"], entry["size"], entry["mtime_ns"], entry["inode"]) == (
        str(path.resolve()),
        stat.st_size,
        stat.st_mtime_ns,
        stat.st_ino,
    )
    assert entry["checker"] == checks.CHECKER_VERSION
    assert entry["specs"] == ["CanonicalRecording sensor_size=(6, 8)"]

    def fail(*args: object) -> None:
        raise AssertionError("events read again")

    monkeypatch.setattr(checks.EventStreamCheck, "add", fail)
    recording = open_recording(path)  # the cached verdict holds: no event is read
    assert len(recording.events(0, 600)) == 600
    settle(path, hours_ago=0.5)  # touched: same size, another mtime
    with pytest.raises(AssertionError, match="events read again"):
        CanonicalRecording(path)


def test_only_settled_successful_verdicts_are_cached(tmp_path, rng, check_cache):
    ev = raw_events(rng, 600, SENSOR)
    fresh = write_raw_canonical(tmp_path / "fresh.h5", ev)
    CanonicalRecording(fresh).close()  # just written: its mtime may still tick, not cached
    assert not checks.is_checked(fresh, "CanonicalRecording sensor_size=(6, 8)")
    ev["x"][5] = 99
    bad = write_raw_canonical(tmp_path / "bad.h5", ev)
    settle(bad)
    for _ in range(2):
        with pytest.raises(EventDataError, match=r"x\[5\]=99"):
            CanonicalRecording(bad)
    assert not (check_cache / checks.CACHE_NAME).exists()


def test_spec_and_checker_version_are_part_of_the_key(tmp_path, rng, monkeypatch):
    opener = write_layout("event_flow", tmp_path, raw_events(rng, 600, SENSOR))
    path = tmp_path / "rec.h5"
    settle(path)
    opener().close()
    spec = EventFlowRecording(path).check_spec
    assert spec == "EventFlowRecording sensor_size=(6, 8) t0_s=1000.0" and checks.is_checked(path, spec)
    other = spec.replace("(6, 8)", "(7, 9)")
    assert not checks.is_checked(path, other)  # another sensor size: another verdict
    EventFlowRecording(path, sensor_size=(7, 9)).close()
    assert checks.is_checked(path, other) and checks.is_checked(path, spec)  # both held
    monkeypatch.setattr(checks, "CHECKER_VERSION", checks.CHECKER_VERSION + 1)
    assert not checks.is_checked(path, spec)  # a newer checker: checked again


def test_a_corrupt_or_unwritable_cache_only_costs_a_new_check(tmp_path, rng, monkeypatch):
    path = write_canonical(tmp_path / "rec.h5", Events(*raw_events(rng, 600, SENSOR).values()), SENSOR)
    settle(path)
    entry = checks.entry_path(path)
    entry.parent.mkdir(parents=True)
    entry.write_text('{"format": 1, "path": "torn')
    CanonicalRecording(path).close()
    assert checks.is_checked(path, "CanonicalRecording sensor_size=(6, 8)")
    blocker = tmp_path / "a_file"
    blocker.touch()
    monkeypatch.setenv(checks.CACHE_ENV, str(blocker / "cache"))  # cannot be created
    CanonicalRecording(path).close()
    assert not checks.is_checked(path, "CanonicalRecording sensor_size=(6, 8)")


def test_prune_drops_verdicts_of_deleted_files_then_the_oldest(tmp_path):
    paths = [tmp_path / f"f{i}.h5" for i in range(5)]
    for i, path in enumerate(paths):
        path.touch()
        checks.record_checked(path, "spec", checks.file_identity(path), 0.0)
        entry = checks.entry_path(path)
        data = json.loads(entry.read_text())
        entry.write_text(json.dumps({**data, "checked_at": float(i)}))
    paths[3].unlink()
    assert checks.prune_cache(max_entries=5) == 0
    assert checks.prune_cache(max_entries=2) == 3  # f3 (deleted), then f0 and f1 (the oldest)
    assert [checks.is_checked(p, "spec") for p in (paths[0], paths[1], paths[2], paths[4])] == [
        False,
        False,
        True,
        True,
    ]


def record_many(args: tuple[str, list[str]]) -> None:
    """Runs in a child process: record the verdicts of files, many times over."""
    cache_dir, paths = args
    os.environ[checks.CACHE_ENV] = cache_dir
    for _ in range(5):
        for path in paths:
            checks.record_checked(path, "spec", checks.file_identity(path), 0.0)


def test_concurrent_processes_neither_corrupt_the_cache_nor_lose_entries(tmp_path, check_cache):
    paths = []
    for i in range(40):
        paths.append(str(tmp_path / f"f{i}.h5"))
        Path(paths[-1]).touch()
    jobs = [(str(check_cache), paths[i::2] + paths) for i in range(3)]  # every entry has several writers
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pool.map(record_many, jobs)
    assert all(checks.is_checked(path, "spec") for path in paths)
    assert len(list((check_cache / checks.CACHE_NAME).glob("*.json"))) == 40
    assert not list((check_cache / checks.CACHE_NAME).glob("*.tmp"))
