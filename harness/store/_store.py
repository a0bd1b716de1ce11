"""The SQL store: SQLite (WAL, one writer) by default, PostgreSQL through the same code."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import (ArgumentError, InterfaceError, NoSuchModuleError, OperationalError, ProgrammingError,
                            StatementError)

from harness._registry import UsageError
from harness.store._schema import CallRow, EventRow, Run, RunTask, SampleRow, Trace, WorkItem, Worker

HEAD = "0004"  # the newest migration; tests check it matches migrations/versions


log = logging.getLogger("harness.store")

# A process working on a run renews its lease every LEASE_RENEW_S; a lease not renewed for LEASE_STALE_S (or
# held by a pid that no longer exists on this host) is stale: its run shows as interrupted and may be resumed.
LEASE_RENEW_S = 5.0
LEASE_STALE_S = 60.0
# text columns of a sample row, and of a call row, that carry text from the model, the data or an error
SAMPLE_TEXT = ("sample_id", "answer", "target", "prompt", "response", "error_category", "error", "explanation")
CALL_TEXT = ("sample_id", "model", "error")
EVENT_TEXT = ("sample_id", "agent", "name", "input", "output", "error")
# every column an event row is written with: one shape for the whole batched insert, whatever each event holds
EVENT_COLUMNS = ("seq", "span", "agent", "kind", "name", "input", "output", "error", "started_at", "latency_s",
                 "input_tokens", "output_tokens")
NAME_MAX = 200  # events.name and events.agent are String(200): a model may call a tool by any name


def lease_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_is_stale(owner: str | None, heartbeat_at: datetime | None, now: datetime | None = None) -> bool:
    if owner is None or heartbeat_at is None:
        return True
    if ((now or utcnow()) - heartbeat_at).total_seconds() > LEASE_STALE_S:
        return True
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True  # killed (kill -9, OOM) without the chance to say so
        except PermissionError:
            pass  # alive, another user's
    return False


def shown_status(run: dict[str, Any]) -> str:
    """The stored status, except that a 'running' run nobody holds a fresh lease on is 'interrupted'. Runs made
    before leases existed (no owner recorded) keep their stored status."""
    if run.get("status") == "running" and run.get("lease_owner") and lease_is_stale(run["lease_owner"], run.get("heartbeat_at")):
        return "interrupted"
    return run.get("status")


def storable(value: str) -> tuple[str, bool]:
    """Text every backend can store: lone surrogates (not UTF-8) and NUL (PostgreSQL text refuses it) are
    backslash-escaped. Returns the text and whether it was changed."""
    try:
        value.encode("utf-8")
        if "\x00" not in value:
            return value, False
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value.replace("\x00", "\\x00"), True


def _sanitised(row: dict[str, Any], fields: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    escaped = []
    for key in fields:
        value = row.get(key)
        if isinstance(value, str):
            clean, changed = storable(value)
            if changed:
                row = {**row, key: clean}
                escaped.append(key)
    return row, escaped


def default_url() -> str:
    if os.environ.get("HARNESS_DB_URL"):
        return os.environ["HARNESS_DB_URL"]
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{base / 'harness' / 'harness.db'}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class SampleResult:
    """What the runner hands to the writer for one finished (sample, epoch)."""

    run_task_id: int
    row: dict[str, Any]
    calls: list[dict[str, Any]] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # harness._events.Event.to_json() each, in order


def event_row(run_task_id: int, sample_id: str, epoch: int, event: dict[str, Any]) -> dict[str, Any]:
    """An Event.to_json() as an events row: input and output as their clip()ped text, every text field storable
    (escaped like a sample row's, the changed fields named in `escaped`), and every column present."""
    from harness._events import clip

    row = {key: event.get(key) for key in EVENT_COLUMNS}
    row.update(run_task_id=run_task_id, sample_id=sample_id, epoch=epoch, input=clip(row["input"]),
               output=clip(row["output"]), error=None if row["error"] is None else str(row["error"]))
    for key in ("name", "agent"):
        if row[key] is not None:
            row[key] = str(row[key])[:NAME_MAX]
    row, escaped = _sanitised(row, EVENT_TEXT)
    row["escaped"] = [k for k in escaped if k != "sample_id"] or None
    return row


def encode_trace(trace: dict[str, Any]) -> tuple[str, bytes]:
    raw = json.dumps(trace, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest(), zlib.compress(raw, 6)


def decode_trace(data: bytes) -> dict[str, Any]:
    return json.loads(zlib.decompress(data))



def _held(conn: Any, run_id: str, worker: str) -> list[int]:
    """The ids of the items the worker holds, locked in id order (the order every writer locks them in)."""
    return conn.execute(select(WorkItem.id).where(WorkItem.run_id == run_id, WorkItem.lease_owner == worker,
                                                  WorkItem.state == "leased")
                        .order_by(WorkItem.id).with_for_update()).scalars().all()

class Store:
    def __init__(self, url: str | None = None, *, upgrade: bool = True, create: bool = True):
        """create=False (read-only commands): a SQLite file that does not exist is an error, not a new database,
        so a typo in --db cannot leave an empty database (and its folders) behind."""
        self.url = url or default_url()
        try:
            if self.url.startswith("sqlite:///") and self.url != "sqlite:///:memory:":
                path = Path(self.url.removeprefix("sqlite:///").partition("?")[0]).expanduser()
                if not create and not path.is_file():
                    raise UsageError(f"no database at {path}: check --db / HARNESS_DB_URL (`harness eval` creates "
                                     "one, e.g. harness eval --model reference --task cipherbank --data bundled)")
                path.parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(self.url, future=True, pool_pre_ping=not self.is_sqlite)
            if self.is_sqlite:
                event.listen(self.engine, "connect", _sqlite_pragmas)
            with self.engine.connect() as conn:
                conn.execute(text("select 1"))
        except (ArgumentError, NoSuchModuleError, OperationalError, ValueError, OSError) as e:
            reason = str(getattr(e, "orig", None) or e).splitlines()[0]
            raise UsageError(f"cannot open database {_redact(self.url)}: {reason}; check --db / HARNESS_DB_URL") from None
        if upgrade:
            self.upgrade()

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    # ---- schema
    def current_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("select version_num from alembic_version")).scalar()
        except (OperationalError, ProgrammingError):
            return None

    def upgrade(self) -> None:
        if self.current_revision() == HEAD:
            return  # the common case: skip importing alembic
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self.engine.begin() as conn:
            # processes opening a fresh database at once: the first migrates, the others wait for it here
            # and then find the schema at head (alembic reads the version inside this transaction)
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('harness.store.upgrade'))"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    # ---- runs
    def create_run(self, **fields: Any) -> None:
        """A new run, leased to this process (see acquire_lease)."""
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(insert(Run).values(created_at=now, status="running", lease_owner=lease_owner(),
                                            heartbeat_at=now, **fields))

    def acquire_lease(self, run_id: str, owner: str | None = None) -> None:
        """Take the run for `owner` (this process): allowed when nobody holds it or the holder's lease is stale.
        The check and the take are one conditional UPDATE, so of two processes resuming at once exactly one
        wins; the other gets a UsageError naming the holder."""
        owner = owner or lease_owner()
        with self.engine.begin() as conn:
            row = conn.execute(select(Run.lease_owner, Run.heartbeat_at, Run.status).where(Run.id == run_id)).first()
            if row is None:
                raise UsageError(f"no run {run_id!r} in {_redact(self.url)}")
            held, beat, _ = row
            if held not in (None, owner) and not lease_is_stale(held, beat):
                raise _LeaseHeld(run_id, held, beat)
            now = utcnow()
            taken = conn.execute(update(Run).where(
                Run.id == run_id,
                (Run.lease_owner == held) if held is not None else Run.lease_owner.is_(None),
                (Run.heartbeat_at == beat) if beat is not None else Run.heartbeat_at.is_(None),
            ).values(lease_owner=owner, heartbeat_at=now, status="running", finished_at=None)).rowcount
        if taken != 1:  # someone took it between the read and the update
            fresh = self.get_run(run_id) or {}
            raise _LeaseHeld(run_id, fresh.get("lease_owner"), fresh.get("heartbeat_at"))

    def renew_lease(self, run_id: str, owner: str | None = None) -> bool:
        """The heartbeat; False when the lease is no longer this owner's."""
        with self.engine.begin() as conn:
            return conn.execute(update(Run).where(Run.id == run_id, Run.lease_owner == (owner or lease_owner()))
                                .values(heartbeat_at=utcnow())).rowcount == 1

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(Run.__table__).where(Run.id == run_id)).mappings().first()
            if row is None:
                prefix = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                matches = conn.execute(select(Run.id).where(Run.id.like(f"{prefix}%", escape="\\"))
                                       .order_by(Run.id).limit(11)).scalars().all()
                if len(matches) > 1:
                    shown = ", ".join(matches[:10]) + (", ..." if len(matches) > 10 else "")
                    raise UsageError(f"run id {run_id!r} matches {'more than 10' if len(matches) > 10 else len(matches)}"
                                     f" runs: {shown}; give more of the id")
                if matches:
                    row = conn.execute(select(Run.__table__).where(Run.id == matches[0])).mappings().first()
            return {**row, "status": shown_status(row)} if row else None

    def set_run_status(self, run_id: str, status: str, **fields: Any) -> None:
        """Any status but 'running' also gives the run's lease up."""
        values = {"status": status, **fields}
        if status != "running":
            values.update(finished_at=utcnow(), lease_owner=None, heartbeat_at=None)
        with self.engine.begin() as conn:
            conn.execute(update(Run).where(Run.id == run_id).values(**values))

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            runs = [dict(r) for r in conn.execute(select(Run.__table__).order_by(Run.created_at.desc()).limit(limit)).mappings()]
            counts = conn.execute(
                select(RunTask.run_id, SampleRow.status, func.count())
                .join(SampleRow, SampleRow.run_task_id == RunTask.id)
                .where(RunTask.run_id.in_([r["id"] for r in runs]))
                .group_by(RunTask.run_id, SampleRow.status)
            ).all()
            tasks = conn.execute(select(RunTask.run_id, RunTask.task, RunTask.variant)
                                 .where(RunTask.run_id.in_([r["id"] for r in runs]))).all()
        queues = self.queue_status(r["id"] for r in runs if r.get("executor"))
        for r in runs:
            r["status"] = shown_status(r)
            if r["id"] in queues:
                r["queue"] = queues[r["id"]]
            r["counts"] = {status: n for rid, status, n in counts if rid == r["id"]}
            r["tasks"] = [t if v == "default" else f"{t}@{v}" for rid, t, v in tasks if rid == r["id"]]
        return runs

    # ---- tasks in a run
    def run_task(self, run_id: str, task: str, variant: str, **fields: Any) -> int:
        """The id of (run, task, variant), created on first use: resume finds the same row."""
        with self.engine.begin() as conn:
            found = conn.execute(select(RunTask.id).where(RunTask.run_id == run_id, RunTask.task == task,
                                                          RunTask.variant == variant)).scalar()
            if found is not None:
                if fields:
                    conn.execute(update(RunTask).where(RunTask.id == found).values(**fields))
                return found
            return conn.execute(insert(RunTask).values(run_id=run_id, task=task, variant=variant, **fields)
                                .returning(RunTask.id)).scalar_one()

    def run_tasks(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(RunTask.__table__).where(RunTask.run_id == run_id)
                                                  .order_by(RunTask.id)).mappings()]

    def set_metrics(self, run_task_id: int, metrics: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(RunTask).where(RunTask.id == run_task_id).values(metrics=metrics))

    # ---- samples
    def done(self, run_task_id: int) -> set[tuple[str, int]]:
        """Finished (sample, epoch) keys; errored rows are dropped first so that a resume retries them."""
        with self.engine.begin() as conn:
            errored = select(SampleRow.sample_id, SampleRow.epoch).where(
                SampleRow.run_task_id == run_task_id, SampleRow.status == "error")
            for sid, epoch in conn.execute(errored).all():
                for table in (CallRow, EventRow):  # the redone sample writes its own
                    conn.execute(delete(table).where(table.run_task_id == run_task_id, table.sample_id == sid,
                                                     table.epoch == epoch))
            conn.execute(delete(SampleRow).where(SampleRow.run_task_id == run_task_id, SampleRow.status == "error"))
            return {(s, e) for s, e in conn.execute(
                select(SampleRow.sample_id, SampleRow.epoch).where(SampleRow.run_task_id == run_task_id)).all()}

    def write(self, results: Iterable[SampleResult], *, worker: str | None = None) -> list[str]:
        """One transaction per batch: each result is either fully stored (row, calls, events, trace) or not at all.

        worker (a run executed from the work queue): the same transaction marks each result's work item done,
        and a result whose item is already done or failed (another worker stored it first, after this one's
        lease expired) is skipped, so every (run task, sample, epoch) is stored exactly once.

        Text that no backend can store (lone surrogates, NUL) is stored escaped and the row's `escaped` names
        those fields. If the batch still fails, its results are written one by one, so one unwritable result
        fails alone: it is stored as an error row saying why (or, if even that fails, skipped: a resume redoes
        it). Returns one message per result that could not be stored as it was."""
        results = list(results)
        if not results:
            return []
        try:
            self._write(results, worker)
            return []
        except UNWRITABLE as e:
            _unless_database_failed(e)
            if len(results) == 1:
                return [self._write_failed(results[0], e, worker)]
        problems = []
        for r in results:
            try:
                self._write([r], worker)
            except UNWRITABLE as e:
                _unless_database_failed(e)
                problems.append(self._write_failed(r, e, worker))
        return problems

    def _write_failed(self, r: SampleResult, e: Exception, worker: str | None = None) -> str:
        cause = getattr(e, "orig", None) or e  # the driver's or serializer's error, not SQLAlchemy's wrapper
        reason = f"could not store this sample's result: {type(cause).__name__}: {(str(cause).splitlines() or [''])[0][:300]}"
        key = f"sample {r.row.get('sample_id')!r} epoch {r.row.get('epoch')}"
        row = {**dict.fromkeys(r.row), "sample_id": r.row.get("sample_id"), "epoch": r.row.get("epoch"),
               "status": "error", "error": reason}
        try:
            self._write([SampleResult(r.run_task_id, row, [], {"write_error": reason})], worker)
        except UNWRITABLE as again:
            _unless_database_failed(again)
            log.error("%s: %s; and the error row failed too (%s): a resume redoes it", key, reason, again)
            return f"{key}: {reason}; not stored (a resume redoes it)"
        return f"{key}: {reason}; stored as an error"

    def _write(self, results: list[SampleResult], worker: str | None = None) -> None:
        if worker is not None:
            _retrying(lambda: self._write_once(results, worker))
        else:
            self._write_once(results, None)

    def _write_once(self, results: list[SampleResult], worker: str | None) -> None:
        now = utcnow()
        traces, samples, calls, events = {}, [], [], []
        for r in results:
            trace_hash, blob = encode_trace(r.trace)
            traces[trace_hash] = blob
            row, escaped = _sanitised(r.row, SAMPLE_TEXT)
            samples.append({**row, "run_task_id": r.run_task_id, "trace_hash": trace_hash, "created_at": now,
                            "escaped": escaped or None})
            calls.extend({**_sanitised(c, CALL_TEXT)[0], "run_task_id": r.run_task_id} for c in r.calls)
            # the sample row's own sample_id (already escaped the same way), so events join it
            events.extend(event_row(r.run_task_id, r.row.get("sample_id"), r.row.get("epoch"), e) for e in r.events)
        with self.engine.begin() as conn:
            if worker is not None:
                won = self._claimed_done(conn, results, worker, now)
                samples = [s for s in samples if (s["run_task_id"], s["sample_id"], s["epoch"]) in won]
                calls = [c for c in calls if (c["run_task_id"], c["sample_id"], c["epoch"]) in won]
                events = [e for e in events if (e["run_task_id"], e["sample_id"], e["epoch"]) in won]
                if not samples:
                    return
                # only the stored results' traces, in hash order: concurrent writers take the keys in one order
                traces = {h: traces[h] for h in sorted({s["trace_hash"] for s in samples})}
            conn.execute(self._insert_ignore(Trace), [{"hash": h, "data": b} for h, b in traces.items()])
            conn.execute(insert(SampleRow.__table__), samples)
            if calls:
                conn.execute(insert(CallRow.__table__), calls)
            if events:
                conn.execute(insert(EventRow.__table__), events)

    def _insert_ignore(self, table):
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        return dialect_insert(table).on_conflict_do_nothing()

    def sample_values(self, run_task_id: int) -> list[dict[str, Any]]:
        """Per-row values the metrics are computed from: scored rows only. Errored rows are not values; the metrics
        carry their count beside (harness._runner.compute_metrics: counts, complete)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(SampleRow.sample_id, SampleRow.epoch, SampleRow.score, SampleRow.scores,
                                       SampleRow.sample_metadata.label("metadata"))
                                .where(SampleRow.run_task_id == run_task_id, SampleRow.status == "scored"))
            return [dict(r) for r in rows.mappings()]

    def status_counts(self, run_task_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(SampleRow.status, func.count()).where(SampleRow.run_task_id == run_task_id)
                                     .group_by(SampleRow.status)).all())

    def samples(self, run_task_id: int, *, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        q = select(SampleRow.__table__).where(SampleRow.run_task_id == run_task_id).order_by(SampleRow.sample_id, SampleRow.epoch)
        if status:
            q = q.where(SampleRow.status == status)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q.limit(limit)).mappings()]

    def trace(self, trace_hash: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            blob = conn.execute(select(Trace.data).where(Trace.hash == trace_hash)).scalar()
        return decode_trace(blob) if blob is not None else None

    def sample_rows(self, run_id: str, sample_id: str, epoch: int | None = None) -> list[dict[str, Any]]:
        """Every stored row of one sample in a run (each task and epoch it has), with its task and variant."""
        q = (select(SampleRow.__table__, RunTask.task, RunTask.variant)
             .join(RunTask, RunTask.id == SampleRow.run_task_id)
             .where(RunTask.run_id == run_id, SampleRow.sample_id == sample_id))
        if epoch is not None:
            q = q.where(SampleRow.epoch == epoch)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q.order_by(RunTask.id, SampleRow.epoch)).mappings()]

    def events(self, run_id: str, sample_id: str | None = None, epoch: int | None = None) -> list[dict[str, Any]]:
        """The stored steps of a run (or of one sample, or one sample's epoch) as events_v rows, in trajectory
        order: task, variant, sample, epoch, seq. input / output are the truncated copy; the trace has them whole."""
        from sqlalchemy import column, table

        cols = ("run_id", "model", "task", "variant", "sample_id", "epoch", "seq", "span", "agent", "kind", "name",
                "input", "output", "error", "started_at", "latency_s", "input_tokens", "output_tokens")
        view = table("events_v", *(column(c) for c in cols))
        q = select(view).where(view.c.run_id == run_id)
        if sample_id is not None:
            q = q.where(view.c.sample_id == sample_id)
        if epoch is not None:
            q = q.where(view.c.epoch == epoch)
        q = q.order_by(view.c.task, view.c.variant, view.c.sample_id, view.c.epoch, view.c.seq)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def run_traces(self, run_id: str, *, status: str | None = None, batch: int = 200) -> Iterator[dict[str, Any]]:
        """Every sample row of a run (or only those with `status`) with its task, variant and decoded `trace`, in
        stored order (task, sample, epoch); streamed, so a large run is never held in memory at once."""
        q = (select(SampleRow.__table__, RunTask.task, RunTask.variant, Trace.data.label("trace_data"))
             .join(RunTask, RunTask.id == SampleRow.run_task_id).outerjoin(Trace, Trace.hash == SampleRow.trace_hash)
             .where(RunTask.run_id == run_id).order_by(RunTask.id, SampleRow.sample_id, SampleRow.epoch))
        if status is not None:
            q = q.where(SampleRow.status == status)
        with self.engine.connect() as conn:
            for r in conn.execution_options(stream_results=True, yield_per=batch).execute(q).mappings():
                row = dict(r)
                blob = row.pop("trace_data")
                yield {**row, "trace": decode_trace(blob) if blob is not None else {}}

    # ---- the work queue (runs executed by workers; PostgreSQL)
    def enqueue(self, run_id: str, run_task_id: int, keys: Iterable[tuple[str, int]], batch: int = 5000) -> int:
        """One queued work item per (sample id, epoch) of a run task; items that exist already are kept as they
        are (enqueueing again is harmless). Returns how many were added."""
        added, chunk = 0, []
        stmt = self._insert_ignore(WorkItem)

        def flush() -> int:
            with self.engine.begin() as conn:
                return conn.execute(stmt, chunk).rowcount

        for sample_id, epoch in keys:
            chunk.append({"run_id": run_id, "run_task_id": run_task_id, "sample_id": storable(sample_id)[0],
                          "epoch": epoch, "state": "queued", "attempts": 0})
            if len(chunk) >= batch:
                added, chunk = added + flush(), []
        if chunk:
            added += flush()
        return added

    def set_executor(self, run_id: str, info: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(Run).where(Run.id == run_id).values(executor=info))

    def register_worker(self, run_id: str, worker: str) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(self._insert_ignore(Worker), [{"run_id": run_id, "name": worker, "started_at": now,
                                                        "heartbeat_at": now, "done": 0, "status": "working"}])

    def stop_worker(self, run_id: str, worker: str, status: str = "stopped") -> None:
        with self.engine.begin() as conn:
            conn.execute(update(Worker).where(Worker.run_id == run_id, Worker.name == worker)
                         .values(stopped_at=utcnow(), status=status))

    def claim(self, run_id: str, worker: str, n: int, lease_s: float) -> list[dict[str, Any]]:
        """Lease up to n queued items of the run to `worker` for lease_s seconds, in id order. Concurrent
        workers skip each other's locked rows (FOR UPDATE SKIP LOCKED), so no claim waits on another and no
        item is leased twice. Each claim counts as an attempt."""
        if self.is_sqlite:
            raise UsageError(SQLITE_NO_QUEUE)
        picked = (select(WorkItem.id).where(WorkItem.run_id == run_id, WorkItem.state == "queued")
                  .order_by(WorkItem.id).limit(n).with_for_update(skip_locked=True)).scalar_subquery()

        def once() -> list[dict[str, Any]]:
            with self.engine.begin() as conn:
                rows = conn.execute(
                    update(WorkItem).where(WorkItem.id.in_(picked))
                    .values(state="leased", lease_owner=worker, attempts=WorkItem.attempts + 1,
                            lease_expires=utcnow() + timedelta(seconds=lease_s))
                    .returning(WorkItem.id, WorkItem.run_task_id, WorkItem.sample_id, WorkItem.epoch,
                               WorkItem.attempts)).mappings().all()
            return sorted((dict(r) for r in rows), key=lambda r: r["id"])

        return _retrying(once)

    def renew(self, run_id: str, worker: str, lease_s: float) -> int:
        """The worker's heartbeat: extend every lease it holds (locked in id order, as every writer locks them)
        and note it in workers. Returns the number of leases renewed."""
        def once() -> int:
            now = utcnow()
            with self.engine.begin() as conn:
                ids = _held(conn, run_id, worker)
                if ids:
                    conn.execute(update(WorkItem).where(WorkItem.id.in_(ids))
                                 .values(lease_expires=now + timedelta(seconds=lease_s)))
                conn.execute(update(Worker).where(Worker.run_id == run_id, Worker.name == worker)
                             .values(heartbeat_at=now))
                return len(ids)

        return _retrying(once)

    def release(self, run_id: str, worker: str) -> int:
        """Give every item the worker still holds back to the queue unfinished (a worker told to stop, once its
        last results are committed): the attempt is not counted."""
        def once() -> int:
            with self.engine.begin() as conn:
                mine = _held(conn, run_id, worker)
                if mine:
                    conn.execute(update(WorkItem).where(WorkItem.id.in_(mine))
                                 .values(state="queued", lease_owner=None, lease_expires=None,
                                         attempts=WorkItem.attempts - 1))
                return len(mine)

        return _retrying(once)

    def reap(self, run_id: str, max_attempts: int) -> tuple[int, int]:
        """Return expired leases to the queue; an item whose lease expired on its last attempt is failed instead,
        stored as an errored sample saying so. Rows another transaction holds are skipped (their owner is alive
        and writing). Returns (requeued, failed)."""
        def once() -> tuple[int, int]:
            now = utcnow()
            with self.engine.begin() as conn:
                expired = conn.execute(
                    select(WorkItem.id, WorkItem.run_task_id, WorkItem.sample_id, WorkItem.epoch, WorkItem.attempts,
                           WorkItem.lease_owner)
                    .where(WorkItem.run_id == run_id, WorkItem.state == "leased", WorkItem.lease_expires < now)
                    .order_by(WorkItem.id).with_for_update(skip_locked=True)).mappings().all()
                again = [r["id"] for r in expired if r["attempts"] < max_attempts]
                dead = [r for r in expired if r["attempts"] >= max_attempts]
                if again:
                    conn.execute(update(WorkItem).where(WorkItem.id.in_(again))
                                 .values(state="queued", lease_owner=None, lease_expires=None,
                                         error="the lease expired: its worker was killed, hung or lost"))
                for r in dead:
                    reason = (f"no result after {r['attempts']} attempts: the lease of every worker that took it "
                              f"expired (last: {r['lease_owner']}; killed, hung or out of memory)")
                    conn.execute(update(WorkItem).where(WorkItem.id == r["id"])
                                 .values(state="failed", lease_owner=None, lease_expires=None, finished_at=now,
                                         error=reason))
                    conn.execute(self._insert_ignore(SampleRow), [{
                        **dict.fromkeys(SAMPLE_COLUMNS), "run_task_id": r["run_task_id"], "sample_id": r["sample_id"],
                        "epoch": r["epoch"], "status": "error", "error": reason, "created_at": now}])
                return len(again), len(dead)

        return _retrying(once)

    def queue_drained(self, run_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(WorkItem).where(
                WorkItem.run_id == run_id, WorkItem.state.in_(("queued", "leased")))).scalar() == 0

    def take_finish(self, run_id: str, worker: str) -> bool:
        """True for exactly one worker, once no item of the run is queued or leased: that worker computes the
        metrics and finishes the run (holding the run's lease meanwhile, so a finisher that dies leaves the run
        shown as interrupted, to be resumed)."""
        open_items = select(WorkItem.id).where(WorkItem.run_id == run_id, WorkItem.state.in_(("queued", "leased")))
        with self.engine.begin() as conn:
            row = conn.execute(select(Run.status, Run.lease_owner, Run.heartbeat_at).where(Run.id == run_id)).first()
            if row is None or row.status == "finished":
                return False
            if row.lease_owner is not None and not lease_is_stale(row.lease_owner, row.heartbeat_at):
                return False  # another worker is finishing it
            # a finisher that died holding the run (stale lease) is replaced; the update only succeeds if nobody
            # took the run since it was read
            held = Run.lease_owner.is_(None) if row.lease_owner is None else Run.lease_owner == row.lease_owner
            return conn.execute(update(Run).where(Run.id == run_id, Run.status != "finished", held, ~open_items.exists())
                                .values(lease_owner=worker, heartbeat_at=utcnow(), status="running",
                                        finished_at=None)).rowcount == 1

    def queue_status(self, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Per run executed by workers: item counts by state and its workers (working / stopped / failed, with
        what each stored). Runs without work items are absent."""
        run_ids = list(run_ids)
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for rid, state, n in conn.execute(select(WorkItem.run_id, WorkItem.state, func.count())
                                              .where(WorkItem.run_id.in_(run_ids))
                                              .group_by(WorkItem.run_id, WorkItem.state)).all():
                out.setdefault(rid, {"items": {}, "workers": {}})["items"][state] = n
            for w in conn.execute(select(Worker.__table__).where(Worker.run_id.in_(run_ids))
                                  .order_by(Worker.started_at)).mappings():
                entry = out.setdefault(w["run_id"], {"items": {}, "workers": {}})
                entry["workers"][w["name"]] = {"status": w["status"], "done": w["done"],
                                               "heartbeat_at": w["heartbeat_at"], "stopped_at": w["stopped_at"]}
        return out

    def _claimed_done(self, conn, results: list[SampleResult], worker: str, now: datetime) -> set[tuple]:
        """Within the writing transaction: lock the results' work items in id order, mark those still open done,
        and return their keys; items already done or failed are left alone (their result is stored)."""
        keys = {(r.run_task_id, storable(r.row["sample_id"])[0], r.row["epoch"]) for r in results}
        by_task: dict[int, list[str]] = {}
        for rt, sid, _ in keys:
            by_task.setdefault(rt, []).append(sid)
        cond = [(WorkItem.run_task_id == rt) & WorkItem.sample_id.in_(sids) for rt, sids in by_task.items()]
        from sqlalchemy import or_

        items = conn.execute(select(WorkItem.id, WorkItem.run_task_id, WorkItem.sample_id, WorkItem.epoch,
                                    WorkItem.state).where(or_(*cond)).order_by(WorkItem.id)
                             .with_for_update()).all()
        won = {(i.run_task_id, i.sample_id, i.epoch): i.id for i in items
               if (i.run_task_id, i.sample_id, i.epoch) in keys and i.state in ("queued", "leased")}
        if won:
            conn.execute(update(WorkItem).where(WorkItem.id.in_(sorted(won.values())))
                         .values(state="done", lease_owner=worker, lease_expires=None, finished_at=now))
            conn.execute(update(Worker).where(Worker.run_id == select(WorkItem.run_id).where(
                WorkItem.id == min(won.values())).scalar_subquery(), Worker.name == worker)
                .values(done=Worker.done + len(won), heartbeat_at=now))
        return set(won)

    def close(self) -> None:
        self.engine.dispose()


SQLITE_NO_QUEUE = ("--executor slurm needs a PostgreSQL store that every node reaches (--db postgresql+psycopg://...); "
                   "SQLite is one machine's file: use --executor local")
# every column of a sample row but the generated id, for rows the store writes itself (a failed work item)
SAMPLE_COLUMNS = tuple(c.name for c in SampleRow.__table__.columns if c.name != "id")
# PostgreSQL's deadlock_detected and serialization_failure: the transaction is safe to run again
TRANSIENT_SQLSTATES = {"40P01", "40001"}


def _transient(e: BaseException) -> bool:
    return isinstance(e, OperationalError) and getattr(e.orig, "sqlstate", None) in TRANSIENT_SQLSTATES


def _retrying(fn):
    """Run a short queue transaction again, after a random (jittered) exponential pause, when PostgreSQL
    aborted it as a deadlock victim or a serialization failure; other errors pass through at once."""
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

    for attempt in Retrying(retry=retry_if_exception(_transient), wait=wait_random_exponential(multiplier=0.05, max=2),
                            stop=stop_after_attempt(10), reraise=True):
        with attempt:
            return fn()
    raise AssertionError("unreachable: tenacity either returns or raises")


# what a value can make a write raise (StatementError covers the driver's errors and the JSON serializer's)
UNWRITABLE = (StatementError, ValueError, TypeError, UnicodeError)


def _unless_database_failed(e: Exception) -> None:
    """A lost connection or a locked database is no row's fault: re-raise it rather than blame each row."""
    if isinstance(e, (OperationalError, InterfaceError)):
        raise e


class _LeaseHeld(UsageError):
    def __init__(self, run_id: str, owner: str | None, beat: datetime | None):
        age = f", last heartbeat {max(0, int((utcnow() - beat).total_seconds()))} s ago" if beat else ""
        super().__init__(f"run {run_id} is being worked on by {owner}{age}; wait for it to finish, or stop that "
                         f"process (a lease not renewed for {int(LEASE_STALE_S)} s, or whose process is gone, can "
                         f"be resumed)")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")  # first: switching a new file to WAL waits for other processes too
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a kill -9 of the process
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
