"""Search backends behind one interface, and the page fetcher.

`SerpApiBackend` speaks SerpAPI's protocol (GET /search.json): text search with `engine=google` (`q`, `num`,
`hl`, `gl`, `safe`) and reverse image search with `engine=google_lens` (`url`). Google Lens takes an image
URL, not an upload, so an image is first written to `publish_dir` and searched as `publish_url/<sha>.png`:
the user serves that folder at that address (a signed object-storage link, say). The API key comes from the
environment (SERPAPI_API_KEY), never from the command line, so it is not stored with the run.

429, 5xx and dropped connections are retried with exponential back-off (tenacity); when the retries are
spent the search raises SearchError, an infrastructure error: the sample errors with the reason and a
resume retries it.
"""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness._types import InfraError

PAGE_BYTES = 2 << 20  # at most this much of a result page is read
PAGE_TEXT_CHARS = 20_000  # the extracted main text kept per page (documented in the cache entry)
SERPAPI_URL = "https://serpapi.com/search.json"


class SearchError(InfraError):
    """The search backend could not answer (down, rate-limited past the retries, a bad response)."""


class SearchBackend(Protocol):
    name: str
    version: str

    async def text(self, query: str, params: dict[str, Any]) -> dict[str, Any]: ...

    async def image(self, png: bytes, digest: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """-> (request as sent, response verbatim)."""
        ...

    async def fetch(self, url: str) -> dict[str, Any]: ...


class _Retry(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class SerpApiBackend:
    base_url: str = SERPAPI_URL
    api_key_env: str = "SERPAPI_API_KEY"
    publish_dir: str | None = None
    publish_url: str | None = None
    attempts: int = 4
    backoff_s: float = 1.0
    timeout_s: float = 60.0
    fetch_private: bool = False  # fetch result pages on loopback / private addresses (a local test backend only)
    name: str = "serpapi"
    version: str = "1"

    def _key(self) -> str:
        key = os.environ.get(self.api_key_env)
        if not key:
            raise SearchError(f"live search needs a SerpAPI key in ${self.api_key_env}; or replay a cache "
                              f"(-T search=replay -T search_cache=DIR)")
        return key

    def _client(self):
        """A session per request: searches are few and slow, and no session outlives the event loop it was made on."""
        import aiohttp

        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))

    async def _get_json(self, params: dict[str, Any]) -> dict[str, Any]:
        import aiohttp
        from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt, wait_exponential

        sent = {**params, "api_key": self._key()}

        async def once() -> dict[str, Any]:
            try:
                async with self._client() as session, session.get(self.base_url, params=sent,
                                                                  allow_redirects=False) as r:
                    if r.status == 429 or r.status >= 500:
                        raise _Retry(f"HTTP {r.status}" + (" (rate limited)" if r.status == 429 else ""))
                    body = await r.read()
                    if r.status != 200:
                        raise SearchError(f"search backend {self.base_url} answered HTTP {r.status}: "
                                          f"{body[:200].decode('utf-8', 'replace')}")
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                raise _Retry(f"{type(e).__name__}: {e}") from None
            try:
                import json

                data = json.loads(body)
            except ValueError:
                raise SearchError(f"search backend {self.base_url} answered something that is not JSON") from None
            if not isinstance(data, dict) or data.get("error"):
                raise SearchError(f"search backend {self.base_url} reported an error: "
                                  f"{(data.get('error') if isinstance(data, dict) else data)!r:.200}")
            return data

        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(self.attempts), reraise=False,
                                               wait=wait_exponential(multiplier=self.backoff_s, max=30),
                                               retry=retry_if_exception_type(_Retry)):
                with attempt:
                    return await once()
        except RetryError as e:
            last = e.last_attempt.exception()
            raise SearchError(f"search backend {self.base_url} failed after {self.attempts} attempts: "
                              f"{getattr(last, 'reason', last)}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def text(self, query: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self._get_json({"engine": "google", "q": query, **params})

    async def image(self, png: bytes, digest: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        if not (self.publish_dir and self.publish_url):
            raise SearchError("live image search needs the images published at a URL Google Lens can reach: set "
                              "-T image_publish_dir=DIR and -T image_publish_url=URL (DIR served at URL)")
        path = Path(self.publish_dir).expanduser() / f"{digest}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
        request = {"engine": "google_lens", "url": f"{self.publish_url.rstrip('/')}/{digest}.png", **params}
        return request, await self._get_json(request)

    async def fetch(self, url: str) -> dict[str, Any]:
        async with self._client() as session:
            return await fetch_page(session, url, self.timeout_s, allow_private=self.fetch_private)


def _private(url: str) -> bool:
    """Whether a result URL names this machine or a private network (an IP literal or localhost)."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified


async def fetch_page(session: Any, url: str, timeout_s: float = 30.0, *, allow_private: bool = False) -> dict[str, Any]:
    """A result page's fetch record: {final_url, status, fetched_at, content_type, text, error}. A page that
    cannot be fetched is recorded as such (its text empty), never an error of the search: results without
    their page are still results. Result URLs come from the web, so loopback and private addresses are not
    fetched unless `allow_private` (a local test backend)."""
    import aiohttp

    record: dict[str, Any] = {"url": url, "final_url": url, "status": None, "fetched_at": time.time(),
                              "content_type": None, "text": "", "error": None}
    if not url.startswith(("http://", "https://")):
        record["error"] = "not an http(s) URL"
        return record
    if not allow_private and _private(url):
        record["error"] = "a loopback or private address: not fetched"
        return record
    try:
        # redirects are not followed: a public page could otherwise send the fetcher to a private address
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s), allow_redirects=False) as r:
            record.update(final_url=str(r.url), status=r.status, content_type=r.headers.get("Content-Type"))
            body = await r.content.read(PAGE_BYTES)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
        record["error"] = f"{type(e).__name__}: {e}"[:300]
        return record
    if record["status"] == 200:
        record["text"] = extract_text(body, record["content_type"] or "")
    return record


def extract_text(body: bytes, content_type: str) -> str:
    """The page's main text (trafilatura for HTML), cut to PAGE_TEXT_CHARS."""
    if "html" in content_type or body.lstrip()[:1] == b"<":
        import trafilatura

        text = trafilatura.extract(body.decode("utf-8", "replace"), include_comments=False) or ""
    elif content_type.startswith("text/"):
        text = body.decode("utf-8", "replace")
    else:
        text = ""
    return text[:PAGE_TEXT_CHARS]
