"""The search layer tools call: a backend behind the cache, in one of three modes.

    live    call the backend for every request and write (overwrite) the cache entry
    fill    answer from the cache; call the backend only on a miss, and write what it answered
    replay  the cache only; a miss is a ReplayMiss error (the sample errors, naming the request)

Results are parsed from the verbatim response when read, and the blocklist is applied then too (so a cache
filled before a site was listed still drops it). Every key used is recorded in `keys` (the sample's
manifest) and in `used` (the run's), so a run can be replayed from its manifest and the cache alone.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from harness.search._backend import SearchBackend, SearchError
from harness.search._cache import KINDS, ReplayMiss, SearchCache, normalize_query, request_key, sha256, summary_key

MODES = ("live", "fill", "replay")


@dataclass(frozen=True)
class Blocklist:
    """Results that could leak the answer: a listed host (and its subdomains), a listed URL prefix (host and
    path), a URL containing a listed fragment (an arXiv id on any mirror), or a page, title or snippet
    containing a listed phrase (the benchmark's canary)."""

    hosts: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    fragments: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()

    def reason(self, url: str, *texts: str) -> str | None:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        host = (parts.hostname or "").lower().removeprefix("www.")
        where = f"{host}{parts.path}".lower()
        for h in self.hosts:
            if host == h or host.endswith("." + h):
                return f"site {h}"
        for p in self.prefixes:
            if where.startswith(p.lower()):
                return f"page {p}"
        for f in self.fragments:
            if f.lower() in url.lower():
                return f"url contains {f}"
        for phrase in self.phrases:
            if any(phrase.lower() in (t or "").lower() for t in texts):
                return f"contains {phrase!r}"
        return None


Summariser = Callable[[str, str], Awaitable[str]]  # (page text, question) -> summary


@dataclass
class SummariserSpec:
    """Who summarises pages: the model's name, the prompt's hash and temperature (the cache key's parts),
    and the function that asks it."""

    model: str
    prompt_sha256: str
    temperature: float
    ask: Summariser


@dataclass
class SearchLayer:
    cache: SearchCache
    mode: str = "replay"
    backend: SearchBackend | None = None
    backend_name: str = "serpapi"
    backend_version: str = "1"
    text_top: int = 5
    image_top: int = 10
    params: dict[str, Any] = field(default_factory=lambda: {"hl": "en", "gl": "us"})
    blocklist: Blocklist = Blocklist()
    used: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"search mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.mode != "replay" and self.backend is None:
            raise ValueError(f"search mode {self.mode} needs a backend; use replay to search the cache only")
        if self.backend is not None:
            self.backend_name, self.backend_version = self.backend.name, self.backend.version
        self._locks: dict[str, asyncio.Lock] = {}

    def _note(self, keys: dict[str, list[str]], kind: str, key: str) -> None:
        self.used[kind].add(key)
        if key not in keys.setdefault(kind, []):
            keys[kind].append(key)

    async def _entry(self, tool: str, normalized: str, what: str, keys: dict[str, list[str]],
                     call: Callable[[], Awaitable[tuple[dict[str, Any], dict[str, Any]]]],
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
        params = {**self.params, "num": self.text_top if tool == "text_search" else self.image_top}
        key = request_key(self.backend_name, self.backend_version, tool, normalized, params)
        self._note(keys, "entries", key)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # two samples asking the same thing at once call the backend once
            entry = None if self.mode == "live" else await asyncio.to_thread(self.cache.get, key)
            if entry is None:
                if self.mode == "replay":
                    raise ReplayMiss(f"search replay: the cache {self.cache.root} has no {tool} result for {what} "
                                     f"(key {key[:16]}); fill it with -T search=fill or import the run's cache")
                request, response = await call()
                entry = {"request": request, "at": time.time(), "backend": self.backend_name,
                         "backend_version": self.backend_version, "tool": tool, "normalized_input": normalized,
                         "params": params, "response": response, **(extra or {})}
                results = parse_results(tool, response, self.text_top if tool == "text_search" else self.image_top)
                # a listed site's page is never fetched; the canary is looked for in what the others say
                entry["fetches"] = await self._fetch_all([r["url"] for r in results if not self.blocklist.reason(r["url"])])
                await asyncio.to_thread(self.cache.put, key, entry)
        for f in (entry.get("fetches") or {}).values():
            if f.get("text_sha256"):
                self._note(keys, "blobs", f["text_sha256"])
        return entry

    async def _fetch_all(self, urls: list[str]) -> dict[str, Any]:
        assert self.backend is not None
        records = await asyncio.gather(*(self.backend.fetch(u) for u in dict.fromkeys(urls)))
        out = {}
        for rec in records:
            text = rec.pop("text", "") or ""
            rec["text_sha256"] = await asyncio.to_thread(self.cache.put_text, text) if text else None
            out[rec["url"]] = rec
        return out

    async def text_search(self, query: str, keys: dict[str, list[str]]) -> list[dict[str, Any]]:
        if not query.strip():
            raise ValueError("the query is empty")
        backend = self.backend

        async def call():
            assert backend is not None
            params = {**self.params, "num": self.text_top}
            return {"engine": "google", "q": query, **params}, await backend.text(query, params)

        entry = await self._entry("text_search", normalize_query(query), repr(query), keys, call)
        return await self._results("text_search", entry, self.text_top)

    async def image_search(self, png: bytes, keys: dict[str, list[str]], provenance: dict[str, Any],
                           label: str) -> list[dict[str, Any]]:
        digest = sha256(png)
        backend = self.backend

        async def call():
            assert backend is not None
            params = {**self.params}
            return await backend.image(png, digest, params)

        entry = await self._entry("image_search", digest, f"image {label} (sha256 {digest[:16]})", keys, call,
                                  extra={"provenance": provenance})
        return await self._results("image_search", entry, self.image_top)

    async def _results(self, tool: str, entry: dict[str, Any], top: int) -> list[dict[str, Any]]:
        out = []
        fetches = entry.get("fetches") or {}
        for r in parse_results(tool, entry["response"], top):
            fetch = fetches.get(r["url"]) or {}
            text = await asyncio.to_thread(self.cache.get_text, fetch["text_sha256"]) if fetch.get("text_sha256") else ""
            if fetch.get("text_sha256") and text is None:
                if self.mode == "replay":
                    raise ReplayMiss(f"search replay: the cache {self.cache.root} lacks the page text "
                                     f"{fetch['text_sha256'][:16]} of {r['url']}; import the run's whole cache")
                text = ""
            blocked = self.blocklist.reason(r["url"], r.get("title", ""), r.get("snippet", ""), text or "")
            if blocked:
                continue
            out.append({**r, "text_sha256": fetch.get("text_sha256"), "text": text or ""})
        return out

    async def summary(self, text: str, text_sha256: str, question: str, spec: SummariserSpec,
                      keys: dict[str, list[str]]) -> str:
        """A page's summary conditioned on the question, cached apart from the search (see the module)."""
        key = summary_key(text_sha256, sha256(question), spec.model, spec.prompt_sha256, spec.temperature)
        self._note(keys, "summaries", key)
        hit = await asyncio.to_thread(self.cache.get_summary, key)
        if hit is not None:
            return str(hit["summary"])
        if self.mode == "replay":
            raise ReplayMiss(f"search replay: the cache {self.cache.root} has no summary by {spec.model} of page "
                             f"{text_sha256[:16]} for this question (key {key[:16]}); fill it with -T search=fill")
        summary = await spec.ask(text, question)
        await asyncio.to_thread(self.cache.put_summary, key, {
            "summary": summary, "text_sha256": text_sha256, "summariser_model": spec.model,
            "summariser_prompt_sha256": spec.prompt_sha256, "temperature": spec.temperature, "at": time.time()})
        return summary


def parse_results(tool: str, response: dict[str, Any], top: int) -> list[dict[str, Any]]:
    """SerpAPI's `organic_results` (text) or `visual_matches` (Google Lens) as our result records."""
    if not isinstance(response, dict):
        raise SearchError("the search response is not a JSON object")
    rows = response.get("organic_results" if tool == "text_search" else "visual_matches") or []
    out = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("link"), str):
            continue
        item = {"rank": len(out) + 1, "title": str(row.get("title") or ""), "url": row["link"]}
        if tool == "text_search":
            item["snippet"] = str(row.get("snippet") or "")
        else:
            item.update(source=str(row.get("source") or ""), thumbnail=str(row.get("thumbnail") or ""))
        out.append(item)
        if len(out) == top:
            break
    return out
