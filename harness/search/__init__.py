"""A replayable web-search layer for browsing agents: backends (SerpAPI-compatible), a content-addressed
cache with live / fill / replay modes, page fetch and main-text extraction, cached question-conditioned
summaries, a blocklist of answer-leaking results and per-run manifests (`harness search-cache export|import`
ships a cache with a benchmark version)."""
from harness.search._backend import PAGE_TEXT_CHARS, SearchBackend, SearchError, SerpApiBackend, extract_text, fetch_page
from harness.search._cache import (CacheCorrupt, ReplayMiss, SearchCache, canonical_json, export_cache, image_png,
                                   import_cache, normalize_query, read_manifest, request_key, sha256, summary_key)
from harness.search._layer import MODES, Blocklist, SearchLayer, SummariserSpec, parse_results

__all__ = ["Blocklist", "CacheCorrupt", "MODES", "PAGE_TEXT_CHARS", "ReplayMiss", "SearchBackend", "SearchCache",
           "SearchError", "SearchLayer", "SerpApiBackend", "SummariserSpec", "canonical_json", "export_cache",
           "extract_text", "fetch_page", "image_png", "import_cache", "normalize_query", "parse_results",
           "read_manifest", "request_key", "sha256", "summary_key"]
