"""The nightly job: run the models x tasks matrix a TOML file declares, then build the leaderboard.

A model's run that an earlier night left unfinished (killed, interrupted, crashed) is resumed rather than
started again: the newest unfinished run with exactly the same plan is continued.
"""
from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from harness._eval import eval as harness_eval, plan_options
from harness._registry import UsageError
from harness._runner import EvalPlan, TaskRef
from harness._toml import load_toml
from harness.store import Run, Store


class NightlyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    base_url: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    tasks: list[str] = Field(default_factory=list)  # empty: the file's tasks
    judges: dict[str, str] = Field(default_factory=dict)


class NightlySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    db: str | None = None
    out: str = "site"
    leaderboard: str | None = None  # a leaderboard definition file; default: every registered suite
    tasks: list[str] = Field(default_factory=list)
    models: list[NightlyModel] = Field(min_length=1)
    data: str = "hub"
    limit: int | None = None
    epochs: int = Field(1, ge=1)
    seed: int | None = None
    max_samples: int | None = None
    judge_base_url: str | None = None

    def plans(self) -> list[EvalPlan]:
        plans = []
        for m in self.models:
            specs = m.tasks or self.tasks
            if not specs:
                raise UsageError(f"model {m.name!r} has no tasks: give `tasks` at the top or in its [[models]] table")
            refs = [TaskRef(name, variant or "default") for name, _, variant in (s.partition("@") for s in specs)]
            plans.append(EvalPlan(model=m.name, tasks=refs, base_url=m.base_url, model_args=m.args, data=self.data,
                                  limit=self.limit, epochs=self.epochs, max_samples=self.max_samples, seed=self.seed,
                                  judges=m.judges, judge_base_url=self.judge_base_url or m.base_url))
        return plans


def load_nightly(path: str | Path) -> NightlySpec:
    path = Path(path)
    spec = load_toml(path, NightlySpec, "nightly config")
    # relative paths in the file are relative to the file, so cron can run it from anywhere
    base = path.parent
    spec.out = str(base / spec.out)
    if spec.leaderboard:
        spec.leaderboard = str(base / spec.leaderboard)
    return spec


def unfinished_run(store: Store, plan: EvalPlan) -> str | None:
    """The newest run of the same plan that did not finish, to be resumed."""
    wanted = json.loads(json.dumps(plan.to_json()))
    with store.engine.connect() as conn:
        rows = conn.execute(select(Run.id, Run.plan).where(Run.model == plan.model, Run.status != "finished")
                            .order_by(Run.created_at.desc())).all()
    return next((rid for rid, stored in rows if stored == wanted), None)


@dataclass
class NightlyResult:
    runs: list[dict[str, Any]] = field(default_factory=list)  # {"model", "run_id", "resumed", "error"}
    leaderboard: Any = None

    @property
    def failed(self) -> bool:
        return any(r["error"] for r in self.runs)


def run_nightly(spec: NightlySpec, store: Store, *, log: Callable[[str], None] = lambda s: None) -> NightlyResult:
    """Every model's plan in turn; one model failing (endpoint down) does not stop the others or the build."""
    from harness.leaderboards import build, load_spec

    result = NightlyResult()
    for plan in spec.plans():
        resume = unfinished_run(store, plan)
        entry = {"model": plan.model, "run_id": resume, "resumed": resume is not None, "error": None}
        def started(run_id: str, entry=entry, plan=plan, resume=resume) -> None:
            entry["run_id"] = run_id
            log(f"{'resuming' if resume else 'starting'} run {run_id}: {plan.model} on "
                f"{', '.join(t.label for t in plan.tasks)}")

        try:
            # the plan as given (not the stored one): a resumed run is one whose stored plan equals it
            harness_eval(**plan_options(plan), db=store, resume=resume, on_run_start=started,
                         command=" ".join(["harness", *sys.argv[1:]]))
        except Exception as e:  # noqa: BLE001 - reported per model, and in the exit status
            entry["error"] = f"{type(e).__name__}: {e}"
            log(f"run of {plan.model} failed: {entry['error']}\n{traceback.format_exc(limit=3)}")
        result.runs.append(entry)
    result.leaderboard = build(store, spec.out, load_spec(spec.leaderboard))
    log(f"leaderboard: {result.leaderboard.out} ({result.leaderboard.seconds:.1f} s)")
    return result
