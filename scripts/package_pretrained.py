"""Package a trained flow run as the pretrained run of ``tinyflow/app/pretrained/`` (``runid=pretrained``).

``python scripts/package_pretrained.py --runid fxlgeyu8`` writes the run's config (its run folder renamed
``pretrained``), the network's weights of its last checkpoint (``network.pt``, the state dict only) and
``metrics.json``: the source run, its validation means on its own data, and the means on a small check set
(:data:`CHECK_OVERRIDES`) that ``tests/test_pretrained.py`` reproduces. Run it whenever the default changes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from tinyflow.app.checkpoints import load_checkpoint_file
from tinyflow.app.pretrained import CONFIG_FILE, METRICS_FILE, PACKAGE_DIR, PRETRAINED_RUN_ID, WEIGHTS_FILE
from tinyflow.app.resolvers import register_resolvers
from tinyflow.app.validate import validate

ROOT = Path(__file__).resolve().parents[1]
# A small held-apart synthetic set (5 GT windows at 64x64, generated in about a second) for the check.
CHECK_OVERRIDES = ["data=transfer_world", "data.num_val=1", "data.synth.duration_us=100000"]


def validated_means(runid: str, root: Path, overrides: list[str]) -> dict[str, float]:
    """validate.py's mean metrics of run ``runid`` (below ``root``) with ``overrides``."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "config"), version_base="1.3"):
        cfg = compose("validate", overrides=[f"paths.root_dir={root}", f"runid={runid}", *overrides])
    return validate(cfg)["mean"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runid", required=True, help="the run to package (below --root/runs)")
    parser.add_argument("--root", type=Path, default=Path("."), help="project root holding runs/ and data/")
    args = parser.parse_args()
    run_dir = args.root / "runs" / args.runid
    checkpoint = load_checkpoint_file(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")
    PACKAGE_DIR.mkdir(exist_ok=True)
    config = (run_dir / CONFIG_FILE).read_text().replace(f"/{args.runid}", f"/{PRETRAINED_RUN_ID}")
    config = config.replace(f"run_id: {args.runid}", f"run_id: {PRETRAINED_RUN_ID}")
    (PACKAGE_DIR / CONFIG_FILE).write_text(config)
    state = {key: value.clone() for key, value in checkpoint["state_dict"].items()}
    torch.save(state, PACKAGE_DIR / WEIGHTS_FILE)
    metrics = {
        "source_run": args.runid,
        "global_step": int(checkpoint["global_step"]),
        "validation": validated_means(args.runid, args.root.resolve(), []),
        "check": {
            "overrides": CHECK_OVERRIDES,
            "mean": validated_means(PRETRAINED_RUN_ID, args.root.resolve(), CHECK_OVERRIDES),
        },
    }
    (PACKAGE_DIR / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
