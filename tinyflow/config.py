"""OmegaConf resolvers used by the config tree (registered by the entry points)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

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


def register_resolvers() -> None:
    """Register tinyflow's resolvers once (safe to call repeatedly)."""
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", wandb_offline)
