"""One module per Harbor release: what that release changed in harbor.yml.

``STEPS[version]`` migrates a document from the previous release to ``version``.
"""
from __future__ import annotations

from collections.abc import Callable

from ..document import Document
from . import v1_10_0, v2_0_0, v2_1_0, v2_2_0, v2_3_0, v2_4_0

STEPS: dict[str, Callable[[Document], None]] = {
    module.VERSION: module.apply
    for module in (v1_10_0, v2_0_0, v2_1_0, v2_2_0, v2_3_0, v2_4_0)
}
