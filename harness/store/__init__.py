"""The SQL store: tables (see _schema for what each field means), Alembic migrations, and the one writer.

Read-only views for analysis: `samples_v` (one row per sample with run, model, task, variant, scores,
answer, error category), `calls_v` (one row per model or judge call) and `events_v` (one row per step of a
trajectory: model call, tool call, limit, error, span, with its agent)."""
from harness.store._schema import Base, CallRow, EventRow, Run, RunTask, SampleRow, Trace
from harness.store._store import HEAD, SampleResult, Store, decode_trace, default_url

__all__ = ["Base", "CallRow", "EventRow", "HEAD", "Run", "RunTask", "SampleResult", "SampleRow", "Store", "Trace", "decode_trace",
           "default_url"]
