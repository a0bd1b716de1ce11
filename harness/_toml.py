"""Configuration files (leaderboard definitions, nightly matrices): TOML read into a pydantic model."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from harness._registry import UsageError

M = TypeVar("M", bound=BaseModel)


def load_toml(path: Path, model: type[M], what: str) -> M:
    """The file validated as `model`; a missing file, bad TOML or a wrong field is one UsageError line."""
    try:
        with open(path, "rb") as fh:
            return model.model_validate(tomllib.load(fh))
    except FileNotFoundError:
        raise UsageError(f"{what} {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not TOML: {e}") from None
    except ValidationError as e:
        first = e.errors()[0]
        raise UsageError(f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
