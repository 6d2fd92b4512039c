"""Package exports imported when first used (PEP 562 module ``__getattr__``).

vitbench-compare reads the task definitions (``vitbench.classification.task``, ...), which sit in
packages whose public classes import torch and timm; importing those classes only when asked keeps
the comparison's start free of them (seconds on a small CPU) while ``vitbench.classification.ImageClassifier``
still works as a ``_target_`` and an import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, modules: dict[str, tuple[str, ...]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name of ``modules[path]`` from the
    module ``path`` on first use."""
    exports = {name: path for path, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__
