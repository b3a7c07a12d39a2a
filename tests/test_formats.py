"""Camera files: Prophesee RAW (EVT 2.0 / 3.0), AEDAT4 and ROS bags, read through their decoders, on the real
samples in ../shared/data/formats and on fixtures written by the libraries; conversion to canonical files."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faery", reason="the formats extra is not installed (pip install -e '.[formats]')")
pytest.importorskip("evt3", reason="the formats extra is not installed")
pytest.importorskip("rosbags", reason="the formats extra is not installed")

from format_fixtures import (
    FORMATS,
    SENSOR,
    random_events,
    raw_body,
    write_aedat4,
    write_array_bag,
    write_packet_bag,
    write_raw,
)

from tinyflow.data.files import FilesDataModule
from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import FlowGT
from tinyflow.io import open_recording
from tinyflow.io.aedat4 import Aedat4File
from tinyflow.io.camera_files import find_event_files, open_camera_file
from tinyflow.io.convert import convert_camera_files
from tinyflow.io.memory import ArrayRecording
from tinyflow.io.prophesee import PropheseeRawFile
from tinyflow.io.stream import MonotonicClock, read_camera_file, write_camera_file
from tinyflow.io.view import RecordingView

needs_samples = pytest.mark.skipif(
    not FORMATS.is_dir(),
    reason=f"the real camera-file samples are not at {FORMATS} (see shared/data/README.md)",
)
SAMPLES = {
    "evt3_sample": "prophesee/evt3_sample.raw",
    "evt2_sample": "prophesee/evt2_sample.raw",
    "davis346_sample": "aedat4/davis346_sample.aedat4",
    "evt3_events": "rosbag/evt3_events.bag",
}
STAMP_US = 1_600_000_000_000_000


def all_events(recording) -> Events:
    return recording.events(0, recording.num_events)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One fixture of each layout holding the same events (faery's array) in a folder, with other files beside."""
    folder = tmp_path_factory.mktemp("camera_files")
    events = random_events(np.random.default_rng(3))
    evt3_file = write_raw(folder / "prophesee" / "evt3.raw", events, "evt3")
    write_raw(folder / "prophesee" / "evt2.raw", events, "evt2")
    write_aedat4(folder / "dv" / "dvs.aedat4", events)
    write_packet_bag(folder / "bags" / "packets.bag", raw_body(evt3_file), STAMP_US)
    write_array_bag(folder / "bags" / "arrays.bag", events)
    write_array_bag(folder / "bags" / "ros2_arrays", events, ros2=True)
    (folder / "notes.txt").write_text("not a recording")
    return folder, events


NAMES = ["arrays", "dvs", "evt2", "evt3", "packets", "ros2_arrays"]


# ------------------------------------------------------------------------------------------------ real samples


@needs_samples
def test_the_evt3_sample_equals_its_reference_event_for_event():
    """(x, y, p) equal the reference at every event; the reference times (expelliarmus's decoder) count each
    TIME_LOW wrap once more on top of the TIME_HIGH word, so they differ from the file's time by whole
    4096 µs steps: equal until the first wrap, a multiple of 4096 µs after it."""
    reference = np.load(FORMATS / "prophesee" / "evt3_sample.npy")
    file = PropheseeRawFile(FORMATS / SAMPLES["evt3_sample"])
    assert file.info.sensor_size == (720, 1280) and "Gen4" in file.info.sensor_size_from
    recording = read_camera_file(file, 10**6)
    events = all_events(recording)
    assert recording.num_events == len(reference) == 219_596
    for ours, key in ((events.x, "x"), (events.y, "y"), (events.p, "p")):
        np.testing.assert_array_equal(ours, reference[key])
    t_us = recording.t0_us + events.t_us
    assert recording.t0_us == reference["t"][0] == 11_718_656
    steps = (reference["t"] - t_us) // 4096
    np.testing.assert_array_equal((reference["t"] - t_us) % 4096, 0)
    first_wrap = int(np.argmax(steps > 0))
    assert first_wrap > 0 and np.all(steps[:first_wrap] == 0) and np.all(np.diff(steps) >= 0)
    # the TIME_HIGH words of the file span 2861..2863 (x 4096 µs): our times stay inside them
    assert t_us[0] >= 2861 * 4096 and t_us[-1] < 2864 * 4096


@needs_samples
def test_the_evt2_sample_has_the_time_range_its_readme_states():
    """00:15:13.716224 to 00:15:13.812096 (faery's range: first event to one µs after the last)."""
    recording = read_camera_file(PropheseeRawFile(FORMATS / SAMPLES["evt2_sample"]), 10**6)
    assert recording.sensor_size == (480, 640)
    assert recording.t0_us == ((15 * 60 + 13) * 10**6 + 716_224)
    assert recording.t0_us + recording.t_end_us + 1 == (15 * 60 + 13) * 10**6 + 812_096


@needs_samples
def test_the_aedat4_sample_gives_events_inside_its_sensor_and_its_side_streams():
    """Size from the file's description; one frame per frame packet of the file's index; side streams in
    time order."""
    from faery.extension import aedat

    path = FORMATS / SAMPLES["davis346_sample"]
    file = Aedat4File(path, streams=["frames", "imu", "triggers"])
    assert file.info.sensor_size == (260, 346) and file.info.sensor_size_from == "header"
    recording = read_camera_file(file, 10**6)  # validates coordinates and time order
    with aedat.Decoder(path) as decoder:
        kinds = {t.id: t.data_type for t in decoder.tracks()}
        frame_packets = sum(kinds[d.track_id] == "frame" for d in decoder.file_data_definitions())
    events = all_events(recording)
    assert recording.num_events > 0 and np.all(np.diff(events.t_us) >= 0)
    assert events.x.max() < 346 and events.y.max() < 260
    assert recording.frames().images.shape == (frame_packets, 260, 346)
    tables = recording.tables()
    assert {"accelerometer_x", "gyroscope_z", "temperature"} <= tables["imu"].keys()
    for table in tables.values():
        assert len(table["t_us"]) > 0 and np.all(np.diff(table["t_us"]) >= 0)
    assert {"t_us", "source"} == tables["triggers"].keys()


@needs_samples
def test_the_rosbag_sample_gives_the_counts_of_its_readme():
    recording = read_camera_file(open_camera_file(FORMATS / SAMPLES["evt3_events"]), 10**6)
    events = all_events(recording)
    assert recording.sensor_size == (480, 640)
    assert (int(np.sum(events.p == 0)), int(np.sum(events.p == 1))) == (218_291, 125_183)
    assert np.all(np.diff(events.t_us) >= 0) and events.x.max() < 640 and events.y.max() < 480


@needs_samples
def test_converting_each_sample_reads_back_the_same_events(tmp_path):
    converted = convert_camera_files(
        FORMATS, tmp_path / "h5", streams=["frames", "imu", "triggers"], log=lambda _: None
    )
    assert sorted(p.stem for p in converted) == sorted(SAMPLES)
    for path in converted:
        direct = read_camera_file(open_camera_file(FORMATS / SAMPLES[path.stem]), 10**6)
        with open_recording(path) as canonical:
            assert (canonical.sensor_size, canonical.t0_us) == (direct.sensor_size, direct.t0_us)
            for ours, theirs in zip(
                (all_events(canonical).x, all_events(canonical).t_us, all_events(canonical).p),
                (all_events(direct).x, all_events(direct).t_us, all_events(direct).p),
                strict=True,
            ):
                np.testing.assert_array_equal(ours, theirs)
    with open_recording(tmp_path / "h5" / "davis346_sample.h5") as aedat:
        assert aedat.frames().images.shape[1:] == (260, 346) and len(aedat.tables()["imu"]["t_us"]) > 0


# ------------------------------------------------------------------------------------------------ fixtures


def test_every_layout_reads_the_events_it_was_written_with(written):
    folder, events = written
    paths = find_event_files(folder)
    assert [p.stem for p in paths] == ["arrays", "packets", "ros2_arrays", "dvs", "evt2", "evt3"]
    for path in paths:
        file = open_camera_file(path)
        recording = read_camera_file(file, 10**6)
        assert recording.sensor_size == SENSOR and file.info.sensor_size_from == "header", path
        got = all_events(recording)
        np.testing.assert_array_equal(got.x, events["x"])
        np.testing.assert_array_equal(got.y, events["y"])
        np.testing.assert_array_equal(got.p, events["on"].astype(np.uint8))
        np.testing.assert_array_equal(got.t_us, events["t"].astype(np.int64) - int(events["t"][0]))
        # absolute times: the file's clock, or ROS time placed by the first packet's stamp
        assert recording.t0_us == (STAMP_US if path.stem == "packets" else int(events["t"][0])), path


def test_conversion_streams_in_chunks_and_never_overwrites(written, tmp_path):
    folder, events = written
    path = folder / "bags" / "packets.bag"  # 1 kB packets: the stream gathers them into chunks
    calls = []
    stream = write_camera_file(
        open_camera_file(path),
        tmp_path / "a.h5",
        progress=lambda f, n: calls.append((f, n)),
        chunk_events=1000,
    )
    assert len(calls) >= 6 and calls[-1] == (1.0, len(events)) and stream.raised == 0
    assert [n for _, n in calls] == sorted(n for _, n in calls)
    with open_recording(tmp_path / "a.h5") as recording:
        np.testing.assert_array_equal(all_events(recording).x, events["x"])
    with pytest.raises(FileExistsError, match="already exists"):
        write_camera_file(open_camera_file(path), tmp_path / "a.h5")

    # a failure midway leaves neither the target nor a temporary
    def fail(fraction: float, count: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_camera_file(open_camera_file(path), tmp_path / "b.h5", progress=fail, chunk_events=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]


def test_convert_folder_skips_what_is_done_and_refuses_other_targets(written, tmp_path):
    folder, _ = written
    lines: list[str] = []
    targets = convert_camera_files(folder, tmp_path / "out", log=lines.append)
    assert sorted(p.stem for p in targets) == NAMES and len(lines) == len(NAMES)
    before = {p: p.stat().st_mtime_ns for p in targets}
    convert_camera_files(folder, tmp_path / "out", log=lines.append)
    assert all("already converted" in line for line in lines[len(NAMES) :])
    assert {p: p.stat().st_mtime_ns for p in targets} == before
    with pytest.raises(
        EventDataError, match=r"holds 'aedat4:dvs.aedat4', not 'aedat4:dvs.aedat4 \(with frames\)'"
    ):
        convert_camera_files(
            folder / "dv" / "dvs.aedat4", tmp_path / "out", streams=["frames"], log=lines.append
        )
    with pytest.raises(ValueError, match="outside the source folder"):
        convert_camera_files(folder, folder / "converted")


def test_convert_script_errors_are_one_line(written, tmp_path, capsys):
    from tinyflow.app.errors import user_errors_as_messages

    folder, _ = written
    for argv, message in (
        (["files", str(tmp_path / "nowhere"), str(tmp_path / "o")], "no such file or folder"),
        (["files", str(folder / "notes.txt"), str(tmp_path / "o")], "not a supported camera file"),
        (
            ["files", str(folder / "bags" / "arrays.bag"), str(tmp_path / "o"), "--streams", "imu"],
            "keep the side streams []",
        ),
    ):
        with pytest.raises(SystemExit) as exit_info, user_errors_as_messages():
            convert_main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "o").exists()


def convert_main(argv: list[str]) -> None:
    """``scripts/convert.py``'s main, imported from the script file."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "convert.py"
    spec = importlib.util.spec_from_file_location("convert_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(argv)


def test_folders_without_recordings_and_missing_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_event_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("")
    with pytest.raises(FileNotFoundError, match=r"holds no event recordings .*found: \['README'\]"):
        find_event_files(tmp_path / "empty")


def _raw_with_header(path, header_lines: list[str], body: bytes):
    path.write_bytes("".join(f"% {line}\n" for line in header_lines).encode() + body)
    return path


def test_raw_sensor_size_comes_from_the_header_a_camera_default_or_the_option(written, tmp_path):
    body = raw_body(written[0] / "prophesee" / "evt3.raw")
    geometry = PropheseeRawFile(_raw_with_header(tmp_path / "g.raw", ["evt 3.0", "geometry 64x48"], body))
    assert geometry.info.sensor_size == (48, 64) and geometry.info.sensor_size_from == "header"
    fmt = PropheseeRawFile(_raw_with_header(tmp_path / "f.raw", ["format EVT3;height=48;width=64"], body))
    assert fmt.info.sensor_size == (48, 64) and fmt.version == "evt3"
    for plugin, size in (("hal_plugin_imx636_evk4", (720, 1280)), ("hal_plugin_gen31_fx3", (480, 640))):
        camera = PropheseeRawFile(
            _raw_with_header(tmp_path / f"{plugin}.raw", ["evt 3.0", f"plugin_name {plugin}"], body)
        )
        assert camera.info.sensor_size == size and plugin in camera.info.sensor_size_from
    unknown = _raw_with_header(tmp_path / "u.raw", ["evt 3.0", "plugin_name hal_plugin_mystery"], body)
    with pytest.raises(EventDataError, match=r"no sensor size .* pass sensor_size"):
        PropheseeRawFile(unknown)
    assert PropheseeRawFile(unknown, sensor_size=[48, 64]).info.sensor_size == (48, 64)
    with pytest.raises(EventDataError, match="disagrees with the header's"):
        PropheseeRawFile(tmp_path / "g.raw", sensor_size=[480, 640])
    with pytest.raises(EventDataError, match="no known event encoding"):
        PropheseeRawFile(_raw_with_header(tmp_path / "v.raw", ["geometry 64x48"], body))
    too_small = PropheseeRawFile(unknown, sensor_size=[10, 10])
    with pytest.raises(EventDataError, match="sensor"):
        read_camera_file(too_small, 10**6)


def test_timestamps_that_step_back_are_raised_and_counted():
    clock = MonotonicClock()
    np.testing.assert_array_equal(clock(np.array([5, 7, 6, 9])), [5, 7, 7, 9])
    np.testing.assert_array_equal(clock(np.array([8, 10])), [9, 10])
    assert clock.raised == 2


def test_too_many_events_for_memory_says_how_to_convert(written):
    file = open_camera_file(written[0] / "dv" / "dvs.aedat4")
    with pytest.raises(EventDataError, match=r"convert it .* scripts/convert.py files"):
        read_camera_file(file, 100)


def test_bags_with_several_event_topics_need_a_topic(written, tmp_path):
    from rosbags.rosbag1 import Writer

    from tinyflow.io.rosbag import typestore

    store = typestore()
    path = tmp_path / "two.bag"
    name = "dvs_msgs/msg/EventArray"
    with Writer(path) as writer:
        for topic in ("/left/events", "/right/events"):
            connection = writer.add_connection(topic, name, typestore=store)
            header = store.types["std_msgs/msg/Header"](
                stamp=store.types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id=""
            )
            message = store.types[name](header=header, height=4, width=4, events=[])
            writer.write(connection, 1, store.serialize_ros1(message, name))
    with pytest.raises(
        EventDataError, match=r"several topics of event messages.*/left/events.*/right/events"
    ):
        open_camera_file(path)
    assert open_camera_file(path, options={"topic": "/right/events"}).topic == "/right/events"


def test_files_datamodule_reads_every_layout_through_crop_and_downscale(written):
    folder, events = written
    data = FilesDataModule(
        folder, crop=[40, 60], downscale=2, val_windowing={"mode": "count", "events_per_window": 1000}
    )
    data.setup("validate")
    assert sorted(data.val_set.recording_names) == NAMES
    assert {r.sensor_size for r in data.val_set.recordings} == {(20, 30)}
    recording = data.val_set.recordings[data.val_set.recording_names.index("evt3")]
    got = all_events(recording)
    keep = (events["x"] >= 2) & (events["x"] < 62) & (events["y"] >= 4) & (events["y"] < 44)
    np.testing.assert_array_equal(got.x, (events["x"][keep] - 2) // 2)
    np.testing.assert_array_equal(got.y, (events["y"][keep] - 4) // 2)


def test_a_downscaled_view_averages_gt_flow_in_coarser_pixels():
    events = Events(
        np.array([0, 7], np.uint16),
        np.array([0, 5], np.uint16),
        np.array([0, 10], np.int64),
        np.array([1, 0], np.uint8),
    )
    flow = np.zeros((1, 2, 6, 8), np.float32)
    flow[0, 0], flow[0, 1] = 4.0, -2.0
    flow[0, 0, :2, :2] = [[4.0, 8.0], [4.0, 8.0]]
    recording = ArrayRecording(
        "r", events, (6, 8), flows={"dt1": FlowGT(flow, np.array([0]), np.array([11]))}
    )
    view = RecordingView(recording, downscale=2)
    assert view.sensor_size == (3, 4)
    np.testing.assert_array_equal(all_events(view).x, [0, 3])
    coarse, _ = view.flow_map("dt1", 0)
    assert coarse.shape == (2, 3, 4) and coarse[0, 0, 0] == pytest.approx(3.0) and coarse[0, 1, 1] == 2.0
    np.testing.assert_allclose(coarse[1], -1.0)
