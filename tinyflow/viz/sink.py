"""Where a Rerun recording goes: a spawned viewer, a running viewer, a served stream, or an .rrd file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import rerun as rr
import rerun.blueprint as rrb

RERUN_MODES = ("spawn", "connect", "serve", "save")


@dataclass(frozen=True)
class RerunSink:
    """How to open a recording stream.

    Attributes:
        mode: ``spawn`` a local viewer (listening on ``port``), ``connect`` to a viewer or ``rerun``
            server at ``address``, ``serve`` a gRPC stream on ``port`` (and a web viewer on ``web_port``
            when ``web_viewer``), or ``save`` to the .rrd file ``save_path``.
        address: ``host:port`` of the viewer in connect mode, or a full ``rerun+http://.../proxy`` URL.
        port: gRPC port of the spawned viewer (spawn) or of the served stream (serve).
        web_viewer, web_port: also host a web viewer (serve mode) on this HTTP port.
        save_path: the .rrd file of save mode.
    """

    mode: str = "spawn"
    address: str = "127.0.0.1:9876"
    port: int = 9876
    web_viewer: bool = True
    web_port: int = 9090
    save_path: str | Path | None = None

    def __post_init__(self) -> None:
        if self.mode not in RERUN_MODES:
            raise ValueError(f"rerun mode: expected one of {', '.join(RERUN_MODES)}; got {self.mode!r}")

    @property
    def url(self) -> str:
        """The gRPC proxy URL of ``address``."""
        return self.address if "://" in self.address else f"rerun+http://{self.address}/proxy"

    def open(
        self, application_id: str, recording_id: str | None, blueprint: rrb.Blueprint | None
    ) -> rr.RecordingStream:
        """A new recording stream sending to this sink, with ``blueprint`` as its default layout."""
        stream = rr.RecordingStream(application_id, recording_id=recording_id)
        if self.mode == "spawn":
            stream.spawn(port=self.port, default_blueprint=blueprint)
        elif self.mode == "connect":
            stream.connect_grpc(self.url, default_blueprint=blueprint)
        elif self.mode == "serve":
            uri = stream.serve_grpc(grpc_port=self.port, default_blueprint=blueprint)
            if self.web_viewer:
                rr.serve_web_viewer(web_port=self.web_port, open_browser=False, connect_to=uri)
            print(
                f"rerun: serving {uri}" + (f", web viewer on port {self.web_port}" if self.web_viewer else "")
            )
        else:
            if not self.save_path:
                raise ValueError("rerun mode 'save' needs save_path (an .rrd file); got none")
            path = Path(self.save_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            stream.save(path, default_blueprint=blueprint)
        return stream
