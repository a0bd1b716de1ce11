"""Per-call overhead of the sandbox backends (medians; run on an otherwise idle machine).

    .venv/bin/python bench/sandbox_overhead.py [-n 30]

Rows: exec of `true` and of `python3 -c pass` in a warm sandbox, a full pooled acquire+exec cycle
(the wipe between uses runs in the background, so it only shows up under contention), and a fresh
sandbox (docker: container create+start+first exec+remove). The host-process row is the floor.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from harness.sandboxes import SandboxError, get_backend


async def timed(fn, n: int) -> float:
    xs = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        xs.append(time.perf_counter() - t0)
    return statistics.median(xs) * 1000


async def bench(kind: str, n: int) -> dict[str, float]:
    b = get_backend(kind, pool_size=1, allow_unsafe=True)
    out = {}
    try:
        async with b.acquire() as sb:
            await sb.exec(["true"])  # warm up (docker: creates the container)

            async def ok(cmd):
                r = await sb.exec(cmd)
                assert r.returncode == 0, r

            out["exec true"] = await timed(lambda: ok(["true"]), n)
            out["exec python3 -c pass"] = await timed(lambda: ok(["python3", "-c", "pass"]), n)

        async def cycle():
            async with b.acquire() as s:
                await s.exec(["true"])
        out["pooled acquire+exec"] = await timed(cycle, n)

        async def fresh():
            async with b.acquire(fresh=True) as s:
                await s.exec(["true"])
        out["fresh sandbox+exec"] = await timed(fresh, max(5, n // 3))
    finally:
        await b.aclose()
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    args = ap.parse_args()
    rows = {}
    for kind in ("docker", "bwrap", "none-UNSAFE"):
        try:
            rows[kind] = await bench(kind, args.n)
        except SandboxError as e:
            print(f"{kind}: unavailable ({e})")
    cols = list(next(iter(rows.values())).keys()) if rows else []
    print(f"{'backend':<12}" + "".join(f"{c:>24}" for c in cols) + "   (ms, median)")
    for kind, r in rows.items():
        print(f"{kind:<12}" + "".join(f"{r[c]:>24.1f}" for c in cols))


if __name__ == "__main__":
    asyncio.run(main())
