"""The SQL store: SQLite (WAL, one writer) by default, PostgreSQL through the same code."""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, ProgrammingError

from harness._registry import UsageError
from harness.store._schema import CallRow, Run, RunTask, SampleRow, Trace

HEAD = "0001"  # the newest migration; tests check it matches migrations/versions


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


def encode_trace(trace: dict[str, Any]) -> tuple[str, bytes]:
    raw = json.dumps(trace, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest(), zlib.compress(raw, 6)


def decode_trace(data: bytes) -> dict[str, Any]:
    return json.loads(zlib.decompress(data))


class Store:
    def __init__(self, url: str | None = None, *, upgrade: bool = True):
        self.url = url or default_url()
        try:
            if self.url.startswith("sqlite:///") and self.url != "sqlite:///:memory:":
                Path(self.url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
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
        with self.engine.begin() as conn:
            conn.execute(insert(Run).values(created_at=utcnow(), status="running", **fields))

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(Run.__table__).where(Run.id == run_id)).mappings().first()
            if row is None:
                matches = conn.execute(select(Run.id).where(Run.id.like(f"{run_id}%"))).scalars().all()
                if len(matches) == 1:
                    row = conn.execute(select(Run.__table__).where(Run.id == matches[0])).mappings().first()
            return dict(row) if row else None

    def set_run_status(self, run_id: str, status: str, **fields: Any) -> None:
        values = {"status": status, **fields}
        if status != "running":
            values["finished_at"] = utcnow()
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
        for r in runs:
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
                conn.execute(delete(CallRow).where(CallRow.run_task_id == run_task_id, CallRow.sample_id == sid,
                                                   CallRow.epoch == epoch))
            conn.execute(delete(SampleRow).where(SampleRow.run_task_id == run_task_id, SampleRow.status == "error"))
            return {(s, e) for s, e in conn.execute(
                select(SampleRow.sample_id, SampleRow.epoch).where(SampleRow.run_task_id == run_task_id)).all()}

    def write(self, results: Iterable[SampleResult]) -> None:
        """One transaction per batch: each result is either fully stored (row, calls, trace) or not at all."""
        results = list(results)
        if not results:
            return
        now = utcnow()
        traces, samples, calls = {}, [], []
        for r in results:
            trace_hash, blob = encode_trace(r.trace)
            traces[trace_hash] = blob
            samples.append({**r.row, "run_task_id": r.run_task_id, "trace_hash": trace_hash, "created_at": now})
            calls.extend({**c, "run_task_id": r.run_task_id} for c in r.calls)
        with self.engine.begin() as conn:
            conn.execute(self._insert_ignore(Trace), [{"hash": h, "data": b} for h, b in traces.items()])
            conn.execute(insert(SampleRow.__table__), samples)
            if calls:
                conn.execute(insert(CallRow.__table__), calls)

    def _insert_ignore(self, table):
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        return dialect_insert(table).on_conflict_do_nothing()

    def sample_values(self, run_task_id: int) -> list[dict[str, Any]]:
        """Per-row values the metrics are computed from (scored rows only)."""
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

    def close(self) -> None:
        self.engine.dispose()


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
