"""Export folders appear whole or not at all; an existing export is never replaced silently."""

from __future__ import annotations

import pytest

from tinyflow.export.errors import ExportError
from tinyflow.export.files import export_folder


def test_a_failed_export_leaves_nothing(tmp_path) -> None:
    target = tmp_path / "export" / "onnx"
    with pytest.raises(RuntimeError, match="boom"), export_folder(target) as temporary:
        (temporary / "model.onnx").write_text("half")
        raise RuntimeError("boom")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_an_export_appears_complete_and_is_replaced_only_with_overwrite(tmp_path) -> None:
    target = tmp_path / "onnx"
    with export_folder(target) as temporary:
        (temporary / "model.onnx").write_text("first")
        assert not target.exists()  # nothing at the target until the export is complete
    assert (target / "model.onnx").read_text() == "first"
    with (
        pytest.raises(ExportError, match=r"onnx: an export is already there; pass overwrite=true"),
        export_folder(target),
    ):
        pytest.fail("the block must not run")
    with pytest.raises(RuntimeError), export_folder(target, overwrite=True) as temporary:
        (temporary / "model.onnx").write_text("broken")
        raise RuntimeError
    assert (target / "model.onnx").read_text() == "first"  # a failed overwrite keeps the old export
    with export_folder(target, overwrite=True) as temporary:
        (temporary / "model.onnx").write_text("second")
    assert (target / "model.onnx").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]


def test_temporaries_of_dead_writers_are_removed(tmp_path) -> None:
    stale = tmp_path / ".onnx.999999999.tmp"
    stale.mkdir()
    with export_folder(tmp_path / "onnx") as temporary:
        (temporary / "m").write_text("x")
    assert not stale.exists()
