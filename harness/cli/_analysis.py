"""Error analysis from the command line: `harness errors`, `query`, `compare`, `export`.

Grouping and counting happen in SQL (portable across SQLite and PostgreSQL through SQLAlchemy); only the
paired test of `compare` reads per-sample values into Python."""
from __future__ import annotations

import json
import math
import sys
from typing import Annotated, Any, Literal, Optional

import typer

from harness._registry import UsageError
from harness.cli._app import DbOpt, JsonOpt, app

FIXED_KEYS = ("error_category", "task", "variant", "model", "run", "status", "epoch", "error")


def _group_expr(by: str):
    from harness.leaderboards._data import failure_category
    from harness.store import Run, RunTask, SampleRow

    if by == "error_category":
        return failure_category()
    columns = {"task": RunTask.task, "variant": RunTask.variant, "model": Run.model, "run": Run.id,
               "status": SampleRow.status, "epoch": SampleRow.epoch, "error": SampleRow.error}
    if by in columns:
        return columns[by]
    key = by.removeprefix("metadata.")
    if not key:
        raise UsageError(f"--by {by!r}: name a metadata key, e.g. --by metadata.cipher")
    return SampleRow.sample_metadata[key].as_string()  # any metadata key a suite records (cipher, domain, ...)


def _resolve_run(store, run: str) -> str:
    found = store.get_run(run)
    if found is None:
        raise UsageError(f"no run {run!r} in {store.url}; `harness runs` lists them")
    return found["id"]


def error_groups(store, *, by: str = "error_category", run: str | None = None, task: str | None = None,
                 model: str | None = None, examples: int = 3) -> list[dict[str, Any]]:
    """Per group: samples, scored, failed, failure rate among scored, share of all failures, infrastructure
    errors, and the first few failing samples as examples."""
    from sqlalchemy import Integer, case, cast, func, select

    from harness.leaderboards._data import FAILED
    from harness.store import Run, RunTask, SampleRow

    failed = case((FAILED, 1), else_=0)
    base = (select(_group_expr(by).label("grp"), Run.id.label("run_id"), RunTask.task, RunTask.variant,
                   SampleRow.sample_id, SampleRow.epoch, SampleRow.status, failed.label("failed"))
            .select_from(SampleRow).join(RunTask, RunTask.id == SampleRow.run_task_id).join(Run, Run.id == RunTask.run_id))
    if run:
        base = base.where(Run.id == _resolve_run(store, run))
    if task:
        name, _, variant = task.partition("@")
        base = base.where(RunTask.task == name)
        if variant:
            base = base.where(RunTask.variant == variant)
    if model:
        base = base.where(Run.model == model)
    rows = base.subquery()
    agg = (select(rows.c.grp, func.count(), func.sum(cast(rows.c.status == "scored", Integer)),
                  func.sum(rows.c.failed), func.sum(cast(rows.c.status == "error", Integer)))
           .group_by(rows.c.grp))
    k = func.row_number().over(partition_by=rows.c.grp, order_by=(rows.c.run_id, rows.c.task, rows.c.sample_id,
                                                                   rows.c.epoch)).label("k")
    picked = select(rows, k).where(rows.c.failed == 1).subquery()
    with store.engine.connect() as conn:
        counts = conn.execute(agg).all()
        chosen = conn.execute(select(picked).where(picked.c.k <= examples)
                              .order_by(picked.c.grp, picked.c.k)).mappings().all()
    total_failed = sum(int(c[3] or 0) for c in counts)
    out = []
    for grp, n, scored, n_failed, errored in counts:
        scored, n_failed, errored = int(scored or 0), int(n_failed or 0), int(errored or 0)
        failed_scored = n_failed - errored
        out.append({"group": "(none)" if grp is None else str(grp), "samples": n, "scored": scored,
                    "failed": n_failed, "errored": errored,
                    "failure_rate": failed_scored / scored if scored else None,
                    "share_of_failures": n_failed / total_failed if total_failed else None,
                    "examples": [{"run_id": e["run_id"], "task": e["task"] if e["variant"] == "default"
                                  else f"{e['task']}@{e['variant']}", "sample_id": e["sample_id"], "epoch": e["epoch"]}
                                 for e in chosen if e["grp"] == grp]})
    return sorted(out, key=lambda g: (-g["failed"], -g["samples"], g["group"]))


@app.command("errors")
def errors(
    by: Annotated[str, typer.Option(metavar="KEY", help=f"Group by one of {', '.join(FIXED_KEYS)}, or any metadata key a suite records (cipher, domain, ... or metadata.KEY).")] = "error_category",
    run: Annotated[Optional[str], typer.Option(metavar="RUN", help="Only this run (a unique prefix is enough).")] = None,
    task: Annotated[Optional[str], typer.Option(metavar="TASK[@VARIANT]", help="Only this task (name or name@variant).")] = None,
    model: Annotated[Optional[str], typer.Option(metavar="MODEL", help="Only runs of this model.")] = None,
    examples: Annotated[int, typer.Option(min=0, metavar="N", help="Failing sample ids shown per group.")] = 3,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Failure counts and rates by error category, task, variant or a metadata key, with example samples.

    Failed = scored and not fully correct (or given an error category); infrastructure errors are counted
    apart and never in the failure rate. Example: harness errors --task cipherbank --by cipher
    """
    from harness.store import Store

    groups = error_groups(Store(db, create=False), by=by, run=run, task=task, model=model, examples=examples)
    if as_json:
        print(json.dumps(groups, indent=2))
        return
    from harness.cli._render import console as _console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"failures by {escape(by)}", title_justify="left")
    table.add_column("group", overflow="fold")
    for col in ("samples", "failed", "rate", "share", "infra"):
        table.add_column(col, justify="right")
    table.add_column("examples", overflow="fold")
    for g in groups:  # groups and sample ids come from data: shown as text, never as rich markup
        table.add_row(escape(g["group"]), str(g["samples"]), str(g["failed"]), _pct(g["failure_rate"]),
                      _pct(g["share_of_failures"]), str(g["errored"]),
                      escape(", ".join(e["sample_id"] for e in g["examples"])))
    _console().print(table)
    print("rate: failed / scored in the group; share: of all failures; infra: infrastructure errors "
          "(not counted as failures of the model)")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


# ---- query

def read_only_query(url: str, sql: str) -> tuple[list[str], list[tuple]]:
    """Run one SQL statement with the database itself refusing writes: SQLite opened read-only (and
    query_only), PostgreSQL in a read-only transaction that is rolled back, the statement sent as a
    prepared statement so it cannot smuggle in a second one (COMMIT; ...)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except ArgumentError as e:
        raise UsageError(f"not a database URL: {e}") from None
    if u.get_backend_name() == "sqlite":
        return _sqlite_query(u.database, sql)
    if u.get_backend_name() == "postgresql":
        return _postgres_query(u.set(drivername="postgresql").render_as_string(hide_password=False), sql)
    raise UsageError(f"harness query supports SQLite and PostgreSQL, not {u.get_backend_name()}")


def _sqlite_query(path: str | None, sql: str) -> tuple[list[str], list[tuple]]:
    import sqlite3
    from pathlib import Path
    from urllib.parse import quote

    if not path or path == ":memory:" or not Path(path).expanduser().is_file():
        raise UsageError(f"no SQLite database at {path!r}")
    conn = sqlite3.connect(f"file:{quote(str(Path(path).expanduser().resolve()))}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA query_only=ON")
        # ATTACH and VACUUM INTO would create files even on a read-only connection: SQLite's authorizer
        # allows reading only (and pragmas that report, such as table_info)
        conn.set_authorizer(_sqlite_authorizer)
        cur = conn.execute(sql)
        columns = [d[0] for d in cur.description or []]
        return columns, cur.fetchall()
    except (sqlite3.Error, sqlite3.Warning) as e:
        raise UsageError(f"query failed: {e}") from None
    finally:
        conn.rollback()
        conn.close()


_SQLITE_READ_ACTIONS = ("SQLITE_SELECT", "SQLITE_READ", "SQLITE_FUNCTION", "SQLITE_RECURSIVE")
_SQLITE_REPORTING_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
                             "foreign_key_list"}


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    import sqlite3

    if action in {getattr(sqlite3, name) for name in _SQLITE_READ_ACTIONS}:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg2 is None or (arg1 or "").lower() in _SQLITE_REPORTING_PRAGMAS):
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _postgres_query(conninfo: str, sql: str) -> tuple[list[str], list[tuple]]:
    import psycopg

    try:
        conn = psycopg.connect(conninfo, options="-c default_transaction_read_only=on")
    except psycopg.Error as e:
        raise UsageError(f"cannot connect: {str(e).splitlines()[0]}") from None
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            # after this first query the transaction can no longer be made read-write
            cur.execute("SELECT pg_has_role('pg_write_server_files', 'MEMBER') "
                        "OR pg_has_role('pg_execute_server_program', 'MEMBER')")
            if cur.fetchone()[0]:
                # a superuser (or a server-file writer) could still COPY TO a file or a program, which a
                # read-only transaction allows: read as the predefined role that may only read (PG >= 14)
                cur.execute("SET LOCAL ROLE pg_read_all_data")
            cur.execute(sql.encode(), prepare=True)  # bytes: no client-side %-placeholder parsing
            columns = [d.name for d in cur.description or []]
            return columns, cur.fetchall() if cur.description else []
    except psycopg.Error as e:
        raise UsageError(f"query failed: {str(e).strip()}") from None
    finally:
        conn.rollback()
        conn.close()


@app.command("query")
def query(
    sql: Annotated[str, typer.Argument(metavar="SQL", help="One SQL statement, e.g. \"select model, avg(score) from samples_v group by 1\".")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
) -> None:
    """Read-only SQL over the store; the database refuses any write.

    Views: samples_v (one row per sample: run_id, model, run_created_at, task, variant, task_version,
    sample_id, epoch, status, score, scores, answer, target, response, error_category, error, metadata,
    input_tokens, output_tokens, latency_s, trace_hash, created_at) and calls_v (one row per model or judge
    call: run_id, run_model, task, variant, sample_id, epoch, idx, kind, model, input_tokens,
    output_tokens, latency_s, attempts, error, started_at) and events_v (one row per step of a trajectory:
    run_id, model, task, variant, sample_id, epoch, seq, span, agent, kind, name, input, output, error,
    started_at, latency_s, input_tokens, output_tokens). The tables runs, run_tasks, samples, calls, events
    and traces can be read too.
    """
    from harness.store import default_url

    columns, rows = read_only_query(db or default_url(), sql)
    if as_json:
        print(json.dumps([dict(zip(columns, r)) for r in rows], indent=2, default=_jsonable))
    elif as_csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([[_jsonable(v) if isinstance(v, (bytes, dict, list)) else v for v in r] for r in rows])
    else:
        from harness.cli._render import console as _console
        from rich.markup import escape
        from rich.table import Table

        table = Table(*[escape(c) for c in columns], caption=f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
        for r in rows:
            table.add_row(*[escape("NULL" if v is None else str(v)) for v in r])
        _console().print(table)


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


# ---- compare

def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar test: b and c are the discordant pairs, Binomial(b + c, 1/2) under H0."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_bootstrap(diffs: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """95% CI of the mean paired difference and a two-sided p-value for 'no difference'."""
    import random

    n = len(diffs)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    below = sum(m <= 0 for m in means) / resamples
    above = sum(m >= 0 for m in means) / resamples
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1], min(1.0, 2 * min(below, above))


def compare_runs(store, run_a: str, run_b: str) -> dict[str, Any]:
    """Per task both runs have: the headline metric of each, the difference, a paired test over the samples
    both scored (exact McNemar for 0/1 scores, else a paired bootstrap), and the samples that flipped."""
    from sqlalchemy import func, select

    from harness.store import SampleRow

    a_id, b_id = _resolve_run(store, run_a), _resolve_run(store, run_b)
    tasks_a = {(t["task"], t["variant"]): t for t in store.run_tasks(a_id)}
    tasks_b = {(t["task"], t["variant"]): t for t in store.run_tasks(b_id)}

    def per_sample(conn, rt_id: int) -> dict[str, float]:
        q = (select(SampleRow.sample_id, func.avg(SampleRow.score))
             .where(SampleRow.run_task_id == rt_id, SampleRow.status == "scored", SampleRow.score.is_not(None))
             .group_by(SampleRow.sample_id))
        return {sid: float(v) for sid, v in conn.execute(q).all()}

    out = []
    with store.engine.connect() as conn:
        for key in [k for k in tasks_a if k in tasks_b]:
            ta, tb = tasks_a[key], tasks_b[key]
            sa, sb = per_sample(conn, ta["id"]), per_sample(conn, tb["id"])
            common = sorted(set(sa) & set(sb))
            headline = (ta["metrics"] or {}).get("headline") or (tb["metrics"] or {}).get("headline")
            ma = ((ta["metrics"] or {}).get("overall") or {}).get(headline)
            mb = ((tb["metrics"] or {}).get("overall") or {}).get(headline)
            regressed = [s for s in common if sb[s] < sa[s]]
            improved = [s for s in common if sb[s] > sa[s]]
            binary = all(v in (0.0, 1.0) for s in common for v in (sa[s], sb[s]))
            entry: dict[str, Any] = {
                "task": key[0] if key[1] == "default" else f"{key[0]}@{key[1]}", "metric": headline,
                "a": ma, "b": mb, "difference": mb["value"] - ma["value"] if ma and mb else None,
                "paired_samples": len(common), "only_in_a": len(set(sa) - set(sb)), "only_in_b": len(set(sb) - set(sa)),
                "regressed": regressed, "improved": improved,
            }
            if not common:
                entry["test"] = None
            elif binary:
                entry["test"] = {"name": "McNemar (exact)", "p_value": mcnemar_p(len(regressed), len(improved))}
            else:
                lo, hi, p = paired_bootstrap([sb[s] - sa[s] for s in common])
                entry["test"] = {"name": "paired bootstrap", "p_value": p, "mean_diff_ci": [lo, hi]}
            out.append(entry)
    return {"a": a_id, "b": b_id, "tasks": out,
            "only_in_a": sorted(_label(k) for k in set(tasks_a) - set(tasks_b)),
            "only_in_b": sorted(_label(k) for k in set(tasks_b) - set(tasks_a))}


def _label(key: tuple[str, str]) -> str:
    return key[0] if key[1] == "default" else f"{key[0]}@{key[1]}"


@app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(metavar="RUN_A", help="The baseline run (a unique prefix is enough).")],
    run_b: Annotated[str, typer.Argument(metavar="RUN_B", help="The run compared with it.")],
    show: Annotated[int, typer.Option(metavar="N", help="Flipped sample ids listed per direction (all of them with --json).")] = 10,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per task: B minus A on the headline metric, a paired test, and the samples that flipped each way.

    Example: harness compare 20260101-0101-abc 20260102-0101-def
    """
    from harness.store import Store

    result = compare_runs(Store(db, create=False), run_a, run_b)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    from harness.cli._render import console as _console
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    table = Table(title=f"B = {result['b']}  vs  A = {result['a']}", title_justify="left")
    for col in ("task", "metric", "A", "B", "B − A", "n", "p", "regressed", "improved"):
        table.add_column(col, justify="left" if col in ("task", "metric") else "right", overflow="fold")
    for t in result["tasks"]:
        diff = "–" if t["difference"] is None else f"{t['difference']:+.2f}"
        p = (t["test"] or {}).get("p_value")
        table.add_row(escape(t["task"]), escape(t["metric"] or "–"), _metric(t["a"]), _metric(t["b"]), diff,
                      str(t["paired_samples"]), "–" if p is None else f"{p:.3g}", str(len(t["regressed"])),
                      str(len(t["improved"])))
    console.print(table)
    tests = sorted({t["test"]["name"] for t in result["tasks"] if t["test"]})
    console.print(f"n: samples scored in both runs; p: {' / '.join(tests) or 'paired test'} on them; regressed: "
                  "score lower in B, improved: higher", highlight=False)
    for t in result["tasks"]:
        for name, ids in (("regressed", t["regressed"]), ("improved", t["improved"])):
            if ids:
                more = f" … and {len(ids) - show} more" if len(ids) > show else ""
                console.print(f"{escape(t['task'])} {name}: {escape(', '.join(ids[:show]))}{more}", highlight=False)
    for side in ("only_in_a", "only_in_b"):
        if result[side]:
            console.print(f"tasks {side.replace('_', ' ')}: {escape(', '.join(result[side]))}", highlight=False)


def _metric(m: dict[str, Any] | None) -> str:
    return "–" if not m else f"{m['value']:.2f}"


# ---- export

ExportFormat = Literal["parquet", "jsonl", "inspect", "eee", "who_and_when"]
EXPORT_COLUMNS = ("run_id", "model", "task", "variant", "sample_id", "epoch", "status", "score", "scores", "answer",
                  "target", "prompt", "response", "error_category", "error", "explanation", "metadata",
                  "input_tokens", "output_tokens", "latency_s", "trace_hash", "created_at")


def export_run(store, run: str, fmt: str, out: str | None = None, *, traces: bool = False,
               batch: int = 2000) -> tuple[str, int]:
    """Every sample row of a run, streamed in batches to Parquet (JSON fields as JSON text) or JSON Lines."""
    from sqlalchemy import select

    from harness.store import Run, RunTask, SampleRow, Trace, decode_trace

    if fmt not in ("parquet", "jsonl"):
        raise UsageError(f"--format must be inspect, eee, parquet or jsonl, not {fmt!r}")
    run_id = _resolve_run(store, run)
    out = out or f"{run_id}.{fmt}"
    cols = [Run.id.label("run_id"), Run.model, RunTask.task, RunTask.variant, SampleRow.sample_id, SampleRow.epoch,
            SampleRow.status, SampleRow.score, SampleRow.scores, SampleRow.answer, SampleRow.target, SampleRow.prompt,
            SampleRow.response, SampleRow.error_category, SampleRow.error, SampleRow.explanation,
            SampleRow.sample_metadata.label("metadata"), SampleRow.input_tokens, SampleRow.output_tokens,
            SampleRow.latency_s, SampleRow.trace_hash, SampleRow.created_at]
    q = (select(*cols, *([Trace.data.label("trace")] if traces else []))
         .select_from(SampleRow).join(RunTask, RunTask.id == SampleRow.run_task_id).join(Run, Run.id == RunTask.run_id)
         .where(Run.id == run_id).order_by(RunTask.id, SampleRow.sample_id, SampleRow.epoch))
    if traces:
        q = q.outerjoin(Trace, Trace.hash == SampleRow.trace_hash)
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(q).mappings()

        def batches():
            while chunk := result.fetchmany(batch):
                rows = [dict(r) for r in chunk]
                if traces:
                    for r in rows:
                        r["trace"] = decode_trace(r["trace"]) if r["trace"] is not None else None
                yield rows

        n = _write_jsonl(out, batches()) if fmt == "jsonl" else _write_parquet(out, batches(), traces)
    return out, n


def _write_jsonl(out: str, batches) -> int:
    n = 0
    fh = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")
    try:
        for rows in batches:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
            n += len(rows)
    finally:
        if fh is not sys.stdout:
            fh.close()
    return n


def _write_parquet(out: str, batches, traces: bool) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text_json = {"scores", "metadata", "trace"}
    types = {"epoch": pa.int64(), "score": pa.float64(), "input_tokens": pa.int64(), "output_tokens": pa.int64(),
             "latency_s": pa.float64(), "created_at": pa.timestamp("us")}
    names = [*EXPORT_COLUMNS, *(["trace"] if traces else [])]
    schema = pa.schema([(c, types.get(c, pa.string())) for c in names])
    n = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for rows in batches:
            columns = {c: [json.dumps(r[c], ensure_ascii=False) if c in text_json and r[c] is not None else r[c]
                           for r in rows] for c in names}
            writer.write_table(pa.table(columns, schema=schema))
            n += len(rows)
    return n


@app.command("export")
def export(
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run id (a unique prefix is enough).")],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="parquet or jsonl (one row per sample); inspect (an Inspect .eval log per task, for inspect view; needs harness[inspect]); eee (Every Eval Ever records); who_and_when (one failure-attribution case per scored sample, JSON Lines, for the who_and_when suite's --data; unlabelled).")] = "parquet",
    out: Annotated[Optional[str], typer.Option("--out", "-o", metavar="FILE|DIR", help="Output file (default RUN.parquet / RUN.jsonl / RUN-who_and_when.jsonl; '-' for JSON Lines on stdout); a folder for inspect and eee (default RUN-inspect/, RUN-eee/).")] = None,
    traces: Annotated[bool, typer.Option("--traces", help="Add each sample's full trace (messages, calls, scorer details).")] = False,
    db: DbOpt = None,
) -> None:
    """Export a run's samples (one row per sample and epoch) for pandas, DuckDB or a notebook, or the whole run
    as Inspect logs or Every Eval Ever records (see harness.interop), or its scored samples as Who&When
    failure-attribution cases for `--task who_and_when --data FILE.jsonl` (see harness/cli/_export.py)."""
    from harness.store import Store

    if fmt == "who_and_when":
        from harness.cli._export import export_who_and_when

        path, n = export_who_and_when(Store(db, create=False), run, out)
        if path != "-":
            print(f"{path}: {n} cases", file=sys.stderr)
        return
    if fmt in ("inspect", "eee"):
        from harness import interop

        store = Store(db, create=False)
        run_id = _resolve_run(store, run)
        write = interop.export_inspect if fmt == "inspect" else interop.export_eee
        for path in write(store, run_id, out or f"{run_id}-{fmt}"):
            print(path, file=sys.stderr)
        return
    if out == "-" and fmt != "jsonl":
        raise UsageError("only --format jsonl can go to stdout")
    path, n = export_run(Store(db, create=False), run, fmt, out, traces=traces)
    if path != "-":
        print(f"{path}: {n} rows", file=sys.stderr)


@app.command("import-inspect")
def import_inspect(
    logs: Annotated[list[str], typer.Argument(metavar="LOG...", help="Inspect log files (.eval or .json).")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store Inspect logs as runs (logs of one Inspect run become one run), for the analysis commands and the
    leaderboard. Needs harness[inspect]. Example: harness import-inspect logs/*.eval"""
    from harness.interop import import_inspect as import_logs
    from harness.store import Store

    made = import_logs(Store(db), logs)
    if as_json:
        print(json.dumps(made, indent=2))
        return
    for run in made:
        for t in run["tasks"]:
            print(f"run {run['run_id']}: {t['task']} from {t['log']}: {t['samples']} samples "
                  f"({t['scored']} scored, {t['errored']} errored)")
            for problem in t["problems"]:
                print(f"warning: {problem}", file=sys.stderr)
