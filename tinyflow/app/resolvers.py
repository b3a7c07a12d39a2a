"""OmegaConf resolvers used by the config tree (registered by the entry points)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from hydra.utils import get_class
from omegaconf import OmegaConf

WANDB_HOST = "api.wandb.ai"


def wandb_credentials_available() -> bool:
    """True when W&B can authenticate: ``WANDB_API_KEY`` is set or ``~/.netrc`` holds a W&B entry."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc_path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if not netrc_path.is_file():
        return False
    try:
        return netrc.netrc(netrc_path).authenticators(WANDB_HOST) is not None
    except (netrc.NetrcParseError, OSError):
        return False


def wandb_offline() -> bool:
    """W&B runs offline unless credentials exist; ``WANDB_MODE`` set by the user wins."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode in ("offline", "dryrun", "disabled")
    return not wandb_credentials_available()


def monitored_metric(task_target: str) -> str:
    """``val/<key>`` of the metric that a task's best checkpoint is selected by (its registry objective)."""
    return f"val/{get_class(task_target).metrics().monitor.key}"


def monitor_mode(task_target: str) -> str:
    """``min`` or ``max``: the direction of :func:`monitored_metric`."""
    return "min" if get_class(task_target).metrics().monitor.lower_is_better else "max"


RESOLVERS = {
    "wandb_offline": wandb_offline,
    "monitored_metric": monitored_metric,
    "monitor_mode": monitor_mode,
}


def register_resolvers() -> None:
    """Register tinyflow's resolvers once (safe to call repeatedly)."""
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
