"""Model clients, picked by a provider registry (`@modelapi`, entry points in group `harness.models`): built in
are `openai/<model>` (any OpenAI-compatible server via --base-url), `vllm/<model>` and `vllm-server/<model>`,
`llamacpp/<path.gguf>`, `reference`, `replay:<path>`, `replay-run:<run>` and `mock`. A judge is a model client
like any other."""
from __future__ import annotations

from typing import Any

from harness._registry import UsageError
from harness.model._builtin import MockModel, ReferenceModel, ReplayModel, read_replay_jsonl
from harness.model._client import ModelClient
from harness.model._limiter import AdaptiveLimiter
from harness.model._openai import CLIENT_OPTIONS, OpenAICompatible
from harness.model._registry import ModelAPI, get_model, model_forms, modelapi

__all__ = ["AdaptiveLimiter", "CLIENT_OPTIONS", "MockModel", "ModelAPI", "ModelClient", "OpenAICompatible",
           "ReferenceModel", "ReplayModel", "get_model", "model_arg_warnings", "model_forms", "modelapi",
           "read_replay_jsonl", "split_model_args"]


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


def _server_options() -> set[str]:
    """-M keys that configure a server the harness starts (vLLM's, llama.cpp's) rather than a request."""
    from harness.model._llamacpp import SERVER_OPTIONS as LLAMACPP
    from harness.model._vllm import SERVER_OPTIONS as VLLM

    return VLLM | LLAMACPP


def split_model_args(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """-M key=value pairs are client options (connections, retries, timeout; a managed vLLM server's settings)
    or sampling settings sent with every request (`extra.KEY` is sent as KEY)."""
    server = _server_options()
    client = {k: v for k, v in args.items() if k in CLIENT_OPTIONS or k in server}
    sampling = {k.removeprefix(EXTRA_PREFIX): v for k, v in args.items() if k not in client}
    return client, sampling


def model_arg_warnings(args: dict[str, Any]) -> list[str]:
    """One line per -M key that no known provider reads, with the nearest known key when there is one."""
    import difflib

    known = SAMPLING_KEYS | set(CLIENT_OPTIONS) | _server_options()
    out = []
    for key in args:
        if key in known or key.startswith(EXTRA_PREFIX):
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}? " if close else ""
        out.append(f"-M {key}: no known provider reads this key; {hint}it is sent as is. To send a "
                   f"provider-specific key on purpose, write -M {EXTRA_PREFIX}{key}=...")
    return out


# The built-in providers, in the order `--model`'s error lists them. Each factory imports what it runs
# lazily: naming `mock` never loads vLLM's or llama.cpp's launchers. (Their names are not those of the
# submodules: importing harness.model._vllm would rebind `_vllm` in this package.)
@modelapi("openai")
def _openai_provider(name: str, *, base_url: str | None, args: dict[str, Any], db_url: str | None) -> ModelClient:
    return OpenAICompatible(name, base_url=base_url, options=split_model_args(args)[0])


@modelapi("vllm")
def _vllm_provider(name: str, *, base_url: str | None, args: dict[str, Any], db_url: str | None) -> ModelClient:
    from harness.model._vllm import ManagedVLLM

    return ManagedVLLM(name, options=args)


@modelapi("vllm-server")
def _vllm_server_provider(name: str, *, base_url: str | None, args: dict[str, Any], db_url: str | None) -> ModelClient:
    # a vLLM (or SGLang) server the user started: OpenAI-compatible, usually keyless
    if not base_url:
        raise UsageError("vllm-server/<model> needs --base-url, e.g. http://localhost:8000/v1")
    return OpenAICompatible(name, base_url=base_url, options=split_model_args(args)[0], name=f"vllm-server/{name}")


@modelapi("llamacpp", usage="llamacpp/<path.gguf>")
def _llamacpp_provider(name: str, *, base_url: str | None, args: dict[str, Any], db_url: str | None) -> ModelClient:
    from harness.model._llamacpp import ManagedLlamaCpp

    return ManagedLlamaCpp(name, options=args)


@modelapi("reference", usage="reference")
def _reference_provider(name: str, *, base_url: str | None, args: dict[str, Any], db_url: str | None) -> ModelClient:
    return ReferenceModel()


@modelapi("replay", usage="replay:<path>")
def _replay_provider(name: str, *, base_url: str | None, args: dict[str, Any], db_url: str | None) -> ModelClient:
    return ReplayModel(name)


@modelapi("replay-run", usage="replay-run:<run>")
def _replay_run_provider(name: str, *, base_url: str | None, args: dict[str, Any], db_url: str | None) -> ModelClient:
    from harness.model._replay_run import ReplayRunModel

    return ReplayRunModel(name, db_url=db_url)


@modelapi("mock", usage="mock")
def _mock_provider(name: str, *, base_url: str | None, args: dict[str, Any], db_url: str | None) -> ModelClient:
    return MockModel(str(args.get("text", "")), latency=float(args.get("latency", 0.0)))
