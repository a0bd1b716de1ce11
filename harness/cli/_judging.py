"""`harness rescore RUN`: judge stored responses again, without calling the evaluated model.

The result is a new run (its `rescored_from` names RUN), so the original run and its scores stay intact and
both can be compared; unchanged judge requests are answered from the judge cache and cost nothing."""
from __future__ import annotations

import dataclasses
import sys
from typing import Annotated, Any, Optional

import typer

from harness._registry import UsageError
from harness.cli._app import DbOpt, JsonOpt, _judges, app


class StoredResponses:
    """Stands in for the evaluated model of a re-scored run: it has answered already."""

    def __init__(self, name: str, info: dict[str, Any]):
        self.name, self._info = name, info

    async def generate(self, messages, config=None, *, tools=None, tool_choice=None, kind="model"):
        from harness._types import InfraError

        raise InfraError("re-scoring never calls the evaluated model")

    async def check(self) -> None:
        return None

    def info(self) -> dict[str, Any]:
        return self._info

    async def aclose(self) -> None:
        return None


@dataclasses.dataclass
class Restore:
    """The solver of a re-scored task: puts back the stored conversation and response of (sample, epoch)."""

    store: Any
    model: str
    stored: dict[tuple[str, int], tuple[str, str | None]]  # (sample id, epoch) -> (response, trace hash)

    async def __call__(self, state, ctx):
        import asyncio

        from harness._events import Event
        from harness._types import InfraError, ModelCall, ModelOutput

        found = self.stored.get((state.sample.id, state.epoch))
        if found is None:
            raise InfraError("no stored response to re-score (the sample errored or was not run)")
        response, trace_hash = found
        trace = (await asyncio.to_thread(self.store.trace, trace_hash) if trace_hash else None) or {}
        state.messages = trace.get("messages") or []
        state.calls.extend(ModelCall.from_json(c) for c in trace.get("calls") or [] if c.get("kind") == "model")
        last = state.calls[-1] if state.calls else ModelCall("model", self.model, state.messages, {}, text=response)
        state.output = ModelOutput(text=response, call=last)
        state.answer = trace.get("answer")  # what an agent submitted, which its scorer reads
        # the trajectory's steps come along, so the new run's events (and tool statistics) are the original's
        state.events.events.extend(Event(**e) for e in trace.get("events") or [])
        return state


@app.command("rescore")
def rescore(
    run: Annotated[str, typer.Argument(metavar="RUN", help="The run whose stored responses are judged again (a unique prefix is enough).")],
    judge_model: Annotated[Optional[list[str]], typer.Option("--judge-model", metavar="[ROLE=]MODEL", help="Judge model: MODEL for every judge, or ROLE=MODEL; repeat a role for a voting panel. Default: the run's judges.")] = None,
    judge_base_url: Annotated[Optional[str], typer.Option(metavar="URL", help="OpenAI-compatible endpoint for the judges (default: the run's).")] = None,
    data: Annotated[Optional[str], typer.Option(metavar="SOURCE", help="Where the samples come from (default: the run's --data).")] = None,
    sandbox: Annotated[Optional[str], typer.Option(metavar="NAME", help="docker, bwrap or auto, for tasks whose judges run code (default: the run's).")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-score a run's stored responses with (other) judges; writes a new run that records RUN as its source.

    Example: harness rescore 20261127-0102 --judge-model openai/gpt-4.1-mini
    """
    from harness._eval import eval as run_eval
    from harness._registry import get_task
    from harness.cli._render import print_run
    from harness.store import Store

    store = Store(db, create=False)
    source = store.get_run(run)
    if source is None:
        raise UsageError(f"no run {run!r} in {store.url}; `harness runs` lists them")
    plan = source["plan"]
    stored_tasks = {(t["task"], t["variant"]): t for t in store.run_tasks(source["id"])}
    tasks, wanted = [], set()
    for ref in plan["tasks"]:
        task = get_task(ref["name"]).build(ref["variant"], ref["args"])
        prior = stored_tasks.get((task.name, task.variant))
        rows = store.samples(prior["id"]) if prior else []
        stored = {(r["sample_id"], r["epoch"]): (r["response"], r["trace_hash"]) for r in rows
                  if r["response"] is not None}
        wanted |= {sid for sid, _ in stored}
        tasks.append(dataclasses.replace(task, solver=Restore(store, source["model"], stored)))
    if not wanted:
        raise UsageError(f"run {source['id']} has no stored responses to re-score")

    def mark(run_id: str) -> None:
        store.set_run_status(run_id, "running", rescored_from=source["id"])

    result = run_eval(
        tasks, StoredResponses(source["model"], source["model_info"]), db=store, base_url=plan["base_url"],
        model_args=plan["model_args"], data=data or plan["data"], sample_ids=sorted(wanted), epochs=plan["epochs"],
        max_samples=plan["max_samples"], seed=plan["seed"],
        judges=_judges(judge_model) if judge_model else plan["judges"],
        judge_base_url=judge_base_url or plan["judge_base_url"], sandbox=sandbox or plan["sandbox"],
        allow_unsafe=plan["allow_unsafe"], command=" ".join(["harness", *sys.argv[1:]]), on_run_start=mark)
    if not as_json:
        print(f"re-scored run {source['id']} as run {result.run_id} (the original is unchanged)", file=sys.stderr)
    print_run(store, result.run_id, as_json=as_json)
