"""Where detectors may look: the workspace spec read from recording metadata and hardware files
(`perception.workspace` applies it to frames)."""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from benchbot.core.errors import BenchbotError

__all__ = ["WorkspaceSpec", "parse_workspace"]


class WorkspaceSpec(BaseModel):
    """Where detectors may look. Validated where it is read (recording metadata, hardware file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    auto: bool = True
    polygon_px: tuple[tuple[float, float], ...] | None = None
    polygon_m: tuple[tuple[float, float], ...] | None = None
    polygon_px_m: tuple[tuple[float, float], ...] | None = None  # polygon_m in pixels (set by resolve_polygon_m)
    table_tol_m: float = 0.012
    max_height_m: float = 0.25
    margin_px: int = 3

    @model_validator(mode="after")
    def _polygons(self) -> WorkspaceSpec:
        for name in ("polygon_px", "polygon_m", "polygon_px_m"):
            poly = getattr(self, name)
            if poly is not None and (len(poly) < 3 or not np.all(np.isfinite(np.asarray(poly, float)))):
                raise ValueError(f"{name} needs at least 3 finite vertices")
        if not (0 < self.table_tol_m < 0.1 and 0 < self.max_height_m and 0 <= self.margin_px <= 50):
            raise ValueError("table_tol_m must be in (0, 0.1) m, max_height_m > 0, margin_px in 0..50")
        return self

    def describe(self) -> str:
        parts = (["auto"] if self.auto else []) + [n for n in ("polygon_px", "polygon_m", "polygon_px_m")
                                                   if getattr(self, n)]
        return "+".join(parts) or "none"


def parse_workspace(data: Any, source: str) -> WorkspaceSpec:
    """A WorkspaceSpec from a mapping (one-line BenchbotError naming `source` when invalid)."""
    if isinstance(data, WorkspaceSpec):
        return data
    try:
        return WorkspaceSpec.model_validate(data)
    except Exception as e:  # pydantic ValidationError: keep its first message only
        msg = str(e).splitlines()
        raise BenchbotError(f"{source}: invalid workspace ({msg[-1].strip() if msg else e})",
                            "give e.g. {\"polygon_px\": [[r, c], [r, c], [r, c]]} or {\"auto\": true}") from None
