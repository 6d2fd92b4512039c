"""Objects built from the config: Hydra's ``instantiate`` with our own errors left readable."""

from __future__ import annotations

import hydra
from hydra.errors import CompactHydraException, InstantiationException
from omegaconf import DictConfig


class RunError(CompactHydraException):
    """A bad value or a missing file: Hydra prints its message alone, without a traceback
    (the full one with HYDRA_FULL_ERROR=1)."""


def build(node: DictConfig, **kwargs):
    """`hydra.utils.instantiate`, except that a bad value or a missing file raised by our own
    constructors surfaces as itself, with its message, rather than wrapped by Hydra."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError | FileNotFoundError):
            raise err.__cause__ from None
        raise


def instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every `_target_` entry of a callbacks or loggers group (null entries are skipped)."""
    if not group:
        return []
    return [build(c) for c in group.values() if c is not None and "_target_" in c]
