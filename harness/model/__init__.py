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
           "ReplayModel", "get_model", "model_arg_warnings", "read_replay_jsonl", "split_model_args"]

KNOWN = ["openai/<model>", "vllm/<model>", "vllm-server/<model>", "reference", "replay:<path>", "mock"]


# Sampling settings some known provider reads: the OpenAI chat API, vLLM's and SGLang's extra sampling
# parameters, llama.cpp's server, and the mock model's own. A -M key outside these (and the client options)
# is most likely a typo: it is still sent, with a warning; EXTRA_PREFIX sends a provider-specific key on purpose.
SAMPLING_KEYS = {
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop", "n", "presence_penalty",
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "response_format", "reasoning_effort",
    "reasoning", "verbosity", "user", "parallel_tool_calls", "service_tier", "store", "metadata", "modalities",
    "prediction", "audio", "web_search_options", "stream_options", "extra_body",
    "top_k", "min_p", "repetition_penalty", "length_penalty", "min_tokens", "ignore_eos", "skip_special_tokens",
    "spaces_between_special_tokens", "stop_token_ids", "include_stop_str_in_output", "best_of",
    "use_beam_search", "truncate_prompt_tokens", "prompt_logprobs", "bad_words", "allowed_token_ids",
    "guided_json", "guided_regex", "guided_choice", "guided_grammar", "guided_decoding_backend",
    "structured_outputs", "chat_template_kwargs", "add_generation_prompt", "continue_final_message", "echo",
    "typical_p", "mirostat", "mirostat_tau", "mirostat_eta", "repeat_penalty", "repeat_last_n", "tfs_z",
    "n_predict", "cache_prompt", "dynatemp_range", "dry_multiplier", "xtc_probability", "xtc_threshold",
    "grammar", "json_schema", "separate_reasoning", "no_stop_trim",
    "text", "latency",
}
EXTRA_PREFIX = "extra."


def split_model_args(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """-M key=value pairs are client options (connections, retries, timeout; a managed vLLM server's settings)
    or sampling settings sent with every request (`extra.KEY` is sent as KEY)."""
    from harness.model._vllm import SERVER_OPTIONS

    client = {k: v for k, v in args.items() if k in CLIENT_OPTIONS or k in SERVER_OPTIONS}
    sampling = {k.removeprefix(EXTRA_PREFIX): v for k, v in args.items() if k not in client}
    return client, sampling


def model_arg_warnings(args: dict[str, Any]) -> list[str]:
    """One line per -M key that no known provider reads, with the nearest known key when there is one."""
    import difflib

    from harness.model._vllm import SERVER_OPTIONS

    known = SAMPLING_KEYS | set(CLIENT_OPTIONS) | SERVER_OPTIONS
    out = []
    for key in args:
        if key in known or key.startswith(EXTRA_PREFIX):
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}? " if close else ""
        out.append(f"-M {key}: no known provider reads this key; {hint}it is sent as is. To send a "
                   f"provider-specific key on purpose, write -M {EXTRA_PREFIX}{key}=...")
    return out


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
