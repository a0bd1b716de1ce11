"""What a leaderboard contains, declared in a TOML file (see default.toml)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness._toml import load_toml

DEFAULT = Path(__file__).parent / "default.toml"


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str
    variants: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)


class LeaderboardSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    title: str = "harness leaderboard"
    select: Literal["latest", "pinned"] = "latest"
    pinned: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    sample_page_size: int = Field(100, ge=1)
    suites: list[SuiteSpec] = Field(default_factory=list)

    def suite(self, task: str) -> SuiteSpec | None:
        return next((s for s in self.suites if s.task == task), None)


def load_spec(path: str | Path | None = None) -> LeaderboardSpec:
    return load_toml(Path(path) if path else DEFAULT, LeaderboardSpec, "leaderboard definition")
