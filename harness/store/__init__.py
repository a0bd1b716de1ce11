"""The SQL store: tables (see _schema for what each field means), Alembic migrations, and the one writer.

Read-only views for analysis: `samples_v` (one row per sample with run, model, task, variant, scores,
answer, error category) and `calls_v` (one row per model or judge call)."""
from harness.store._schema import Base, CallRow, Run, RunTask, SampleRow, Trace
from harness.store._store import HEAD, SampleResult, Store, decode_trace, default_url

__all__ = ["Base", "CallRow", "HEAD", "Run", "RunTask", "SampleResult", "SampleRow", "Store", "Trace", "decode_trace",
           "default_url"]
