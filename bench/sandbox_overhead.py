"""Per-call overhead of the sandbox backends (medians; run on an otherwise idle machine).

    .venv/bin/python bench/sandbox_overhead.py [-n 30] [--resident-mb 300]

Rows: exec of `true` and of `python3 -c pass` in a warm sandbox, `true` again with the harness holding
--resident-mb of memory (a spawn that fork()s the harness, as a preexec_fn makes Python do, grows with
it: ~43 ms at 300 MB for bwrap before its limits moved to prlimit(1); vfork does not), a full pooled acquire+exec cycle
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


async def bench(kind: str, n: int, resident_mb: int) -> dict[str, float]:
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
            ballast = [bytearray(b"\1") * (1 << 20) for _ in range(resident_mb)]  # written: resident, as a run's data
            out[f"exec true, {resident_mb} MB held"] = await timed(lambda: ok(["true"]), n)
            del ballast

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
    ap.add_argument("--resident-mb", type=int, default=300, help="memory the harness holds for the second `true` row")
    args = ap.parse_args()
    rows = {}
    for kind in ("docker", "bwrap", "none-UNSAFE"):
        try:
            rows[kind] = await bench(kind, args.n, args.resident_mb)
        except SandboxError as e:
            print(f"{kind}: unavailable ({e})")
    cols = list(next(iter(rows.values())).keys()) if rows else []
    print(f"{'backend':<12}" + "".join(f"{c:>24}" for c in cols) + "   (ms, median)")
    for kind, r in rows.items():
        print(f"{kind:<12}" + "".join(f"{r[c]:>24.1f}" for c in cols))


if __name__ == "__main__":
    asyncio.run(main())
