"""One judge request: looked up in the cache, else sent; either way recorded as a judge call of the sample."""
from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness._types import ContextLengthExceeded, InfraError, Message, ModelCall
from harness.model._client import AnswersFromData

if TYPE_CHECKING:
    from harness._task import SolveContext, TaskState
    from harness.model import ModelClient
    from harness.store import Store

PANEL_SEP = "#"  # `--judge-model ROLE=A --judge-model ROLE=B` becomes roles ROLE and ROLE#2: a panel of two


class JudgeNoVerdict(InfraError):
    """A judge answered, but not with a verdict the scorer can read (no "True/False", JSON that does not fit the
    schema, ...). That is the judge's failure, never the model's: a scorer raises this instead of counting the
    sample as wrong, the sample is stored as an infrastructure error with this reason, the unusable answer is
    dropped from the judge cache (forget_unusable), and a resume asks the judge again."""

    def __init__(self, judge: str, reason: str, reply: str | None = None):
        said = f"; it answered {reply[:200]!r}" if reply is not None else ""
        super().__init__(f"judge {judge} gave no verdict: {reason}{said}")
        self.reply = reply


async def forget_unusable(ctx: "SolveContext", state: "TaskState", exc: JudgeNoVerdict) -> None:
    """Drop the cached judge answers of this sample that gave no verdict, so that a resume asks again."""
    cache: JudgeCache | None = getattr(ctx, "judge_cache", None)
    if cache is None or exc.reply is None:
        return
    keys = {c.raw["cache_key"] for c in state.calls
            if c.kind == "judge" and c.raw and c.raw.get("cache_key") and c.text == exc.reply}
    if keys:
        await asyncio.to_thread(cache.forget, keys)


def panel(judges: dict[str, "ModelClient"], role: str) -> list["ModelClient"]:
    """The judges of `role` (ROLE, ROLE#2, ...), else those given for every role ("default", "default#2", ...)."""
    for name in (role, "default"):
        found = [client for key, client in judges.items() if key == name or key.startswith(name + PANEL_SEP)]
        if found:
            return found
    return []


def missing_roles(roles: list[str], judges: dict[str, Any]) -> list[str]:
    return [r for r in roles if not panel(judges, r)]


def cache_key(client: "ModelClient", messages: list[Message], config: dict[str, Any]) -> str:
    """(judge model, its endpoint, settings, prompt): the same request to the same judge gets the stored answer."""
    endpoint = (client.info() or {}).get("endpoint")
    blob = json.dumps({"model": client.name, "endpoint": endpoint, "config": config, "messages": messages},
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class JudgeCache:
    """Judge answers in the run's database (table judge_cache), so a cluster sharing PostgreSQL shares it too."""

    def __init__(self, store: "Store"):
        self.store = store

    def _get(self, key: str) -> dict[str, Any] | None:
        from sqlalchemy import select

        from harness.store._schema import JudgeCacheRow

        with self.store.engine.connect() as conn:
            row = conn.execute(select(JudgeCacheRow.__table__).where(JudgeCacheRow.key == key)).mappings().first()
        return dict(row) if row else None

    def _put(self, key: str, call: ModelCall) -> None:
        from harness.store._schema import JudgeCacheRow
        from harness.store._store import utcnow

        with self.store.engine.begin() as conn:
            conn.execute(self.store._insert_ignore(JudgeCacheRow).values(
                key=key, model=call.model, text=call.text or "", input_tokens=call.input_tokens,
                output_tokens=call.output_tokens, latency_s=call.latency_s, created_at=utcnow()))

    def forget(self, keys: set[str]) -> None:
        from sqlalchemy import delete

        from harness.store._schema import JudgeCacheRow

        with self.store.engine.begin() as conn:
            conn.execute(delete(JudgeCacheRow).where(JudgeCacheRow.key.in_(sorted(keys))))

    async def get(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._get, key)

    async def put(self, key: str, call: ModelCall) -> None:
        await asyncio.to_thread(self._put, key, call)


@dataclass
class JudgeReply:
    text: str
    call: ModelCall
    cached: bool


async def ask(ctx: "SolveContext", state: "TaskState", client: "ModelClient", prompt: str | list[Message],
              config: dict[str, Any], *, system: str | None = None, role: str = "") -> JudgeReply:
    """Send `prompt` to the judge `client` (or answer it from the cache) and record the call on the sample.

    A failed request raises InfraError as for the evaluated model: the sample is stored as errored and a
    resume retries it, so a judge outage (or a prompt over the judge's context) never counts as the model's
    failure."""
    messages: list[Message] = ([{"role": "system", "content": system}] if system else []) + (
        [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt))
    cache: JudgeCache | None = getattr(ctx, "judge_cache", None)
    key = cache_key(client, messages, config)
    hit = await cache.get(key) if cache is not None else None
    if hit is not None:
        # a cached answer costs nothing now; what the original call cost stays visible in raw
        call = ModelCall(kind="judge", model=client.name, messages=messages, config=config, text=hit["text"],
                         input_tokens=0, output_tokens=0, started_at=time.time(),
                         raw={"role": role, "cached": True, "cache_key": key,
                              "original": {"input_tokens": hit["input_tokens"], "output_tokens": hit["output_tokens"],
                                           "latency_s": hit["latency_s"], "at": str(hit["created_at"])}})
        state.calls.append(call)
        return JudgeReply(hit["text"], call, True)
    try:
        if isinstance(client, AnswersFromData):  # a scripted (mock) judge answers from the sample
            client = client.bind(state, ctx.task)
        output = await client.generate(messages, config, kind="judge")
    except ContextLengthExceeded as e:
        # the judge's context, not the evaluated model's: an infrastructure error, never the model's failure
        raise InfraError(f"judge {role or client.name}: {e}", e.call) from None
    call = output.call
    call.kind = "judge"  # clients that answer from data (mock) label by the argument; make sure either way
    call.raw = {**(call.raw or {}), "role": role, "cached": False, "cache_key": key}
    state.calls.append(call)
    if cache is not None and call.error is None:
        await cache.put(key, call)
    return JudgeReply(output.text, call, False)
