"""Interop with the field's shared formats (optional extras; each says how to install it when missing).

- `export_inspect(store, run, out_dir)`: one Inspect `.eval` log per (task, variant) of a run, written through
  inspect_ai's own models, readable by `inspect view`, `inspect view bundle` and Inspect's dataframes
  (extra `harness[inspect]`).
- `import_inspect(store, paths)`: Inspect logs (any, also ones Inspect wrote) as runs in the store, so the
  analysis commands and the leaderboard read them; export then import keeps every score and message.
- `export_eee(store, run, out_dir)`: Every Eval Ever (schema 0.3.0) records: per (task, variant) an aggregate
  record (one result per metric with its 95% CI and n, generation settings, judges, the reproducibility record in
  additional_details) and its instance-level JSONL (checksum and row count in the aggregate), laid out as the
  EEE datastore's data/<benchmark>/<developer>/<model>/<uuid>.json. Needs no extra; the validator that checks it
  is the `every-eval-ever` package. `export_leaderboard_eee(store, spec, site)`: those of the results a
  leaderboard shows, beside its site (`harness leaderboard build --eee`).

The papers' reported numbers are never exported: they were not measured here.
"""
from harness.interop._eee import export_eee, export_leaderboard_eee
from harness.interop._inspect import export_inspect, import_inspect

__all__ = ["export_eee", "export_inspect", "export_leaderboard_eee", "import_inspect"]
