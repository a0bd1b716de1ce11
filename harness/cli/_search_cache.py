"""`harness search-cache export|import`: ship a search cache (harness.search) with a benchmark version, so
others replay its runs offline (`-T search=replay -T search_cache=DIR`)."""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from harness._registry import UsageError
from harness.cli._app import JsonOpt, app

search_cache_app = typer.Typer(help="Export and import the search cache that browsing-agent suites replay.",
                               no_args_is_help=True)
app.add_typer(search_cache_app, name="search-cache")

CacheOpt = Annotated[str, typer.Option("--cache", metavar="DIR", help="The search cache folder (the suite's -T search_cache).")]


def _report(counts: dict[str, int], what: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(counts))
    else:
        print(f"{what}: {counts['entries']} searches, {counts['blobs']} page texts, {counts['summaries']} summaries")


@search_cache_app.command("export")
def export_(
    out: Annotated[str, typer.Option("--out", "-o", metavar="FILE", help="The archive to write (.tar.gz).")],
    cache: CacheOpt,
    manifest: Annotated[Optional[str], typer.Option(metavar="FILE", help="Only what this run manifest names (<cache>/manifests/<run>.json) and the page texts it needs. Default: the whole cache.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the cache, or one run's part of it, to a .tar.gz.

    Example: harness search-cache export --cache ~/.cache/harness/search --manifest RUN.json --out mmsearch.tar.gz
    """
    from pathlib import Path

    from harness.search import export_cache

    if not Path(cache).expanduser().is_dir():
        raise UsageError(f"--cache {cache}: no such folder")
    try:
        counts = export_cache(cache, out, manifest)
    except ValueError as e:
        raise UsageError(str(e)) from None
    _report(counts, f"wrote {out}", as_json)


@search_cache_app.command("import")
def import_(
    archive: Annotated[str, typer.Argument(metavar="FILE", help="An archive written by `harness search-cache export`.")],
    cache: CacheOpt,
    as_json: JsonOpt = False,
) -> None:
    """Add an exported archive to a cache; every file is checked against its key first (nothing is written if
    one fails).

    Example: harness search-cache import mmsearch.tar.gz --cache ~/.cache/harness/search
    """
    from harness.search import import_cache

    try:
        counts = import_cache(archive, cache)
    except ValueError as e:
        raise UsageError(str(e)) from None
    _report(counts, f"imported into {cache}", as_json)
