"""Model clients: `openai/<model>` (any OpenAI-compatible server via --base-url), `reference`,
`replay:PATH` and `mock`. A judge is a model client like any other."""
from __future__ import annotations

from typing import Any

from harness._registry import UsageError
from harness.model._builtin import MockModel, ReferenceModel, ReplayModel, read_replay_jsonl
from harness.model._client import ModelClient
from harness.model._limiter import AdaptiveLimiter
from harness.model._openai import CLIENT_OPTIONS, OpenAICompatible

__all__ = ["AdaptiveLimiter", "CLIENT_OPTIONS", "MockModel", "ModelClient", "OpenAICompatible", "ReferenceModel",
           "ReplayModel", "get_model", "read_replay_jsonl", "split_model_args"]

KNOWN = ["openai/<model>", "vllm/<model>", "vllm-server/<model>", "reference", "replay:<path>", "mock"]


def split_model_args(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """-M key=value pairs are client options (connections, retries, timeout; a managed vLLM server's settings)
    or sampling settings sent with every request."""
    from harness.model._vllm import SERVER_OPTIONS

    client = {k: v for k, v in args.items() if k in CLIENT_OPTIONS or k in SERVER_OPTIONS}
    sampling = {k: v for k, v in args.items() if k not in client}
    return client, sampling


def get_model(spec: str, *, base_url: str | None = None, args: dict[str, Any] | None = None) -> ModelClient:
    args = args or {}
    client_opts, _ = split_model_args(args)
    if spec == "reference":
        return ReferenceModel()
    if spec.startswith("replay:"):
        return ReplayModel(spec.removeprefix("replay:"))
    if spec == "mock":
        return MockModel(str(args.get("text", "")), latency=float(args.get("latency", 0.0)))
    provider, _, model = spec.partition("/")
    if provider == "openai" and model:
        return OpenAICompatible(model, base_url=base_url, options=client_opts)
    if provider == "vllm" and model:
        from harness.model._vllm import ManagedVLLM

        return ManagedVLLM(model, options=args)
    if provider == "vllm-server" and model:
        # a vLLM (or SGLang) server the user started: OpenAI-compatible, usually keyless
        if not base_url:
            raise UsageError("vllm-server/<model> needs --base-url, e.g. http://localhost:8000/v1")
        return OpenAICompatible(model, base_url=base_url, options=client_opts, name=spec)
    import difflib

    close = difflib.get_close_matches(spec, ["reference", "mock", "openai/", "replay:", "vllm-server/"], n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(f"unknown model {spec!r}{hint}; use one of: {', '.join(KNOWN)}")
