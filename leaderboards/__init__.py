"""Leaderboards: static sites built from the store's SQL rows (`harness leaderboard build`), declared by
TOML files like default.toml (which suites and metrics, which runs count)."""
from harness.leaderboards._build import BuildResult, build, slug
from harness.leaderboards._spec import DEFAULT, LeaderboardSpec, SuiteSpec, load_spec

__all__ = ["BuildResult", "DEFAULT", "LeaderboardSpec", "SuiteSpec", "build", "load_spec", "slug"]
