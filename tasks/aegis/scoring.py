"""AEGIS scoring: the predicted (agent, failure mode) set against the gold set, at three levels (pairs, agents,
modes), as upstream evaluation/evaluate.py defines them, with these corrections:

- agents compare after harness.normalize_agent (upstream compares case-sensitively although labels say "assistant1"
  where the trace says "Assistant1"); modes compare as their "FM-x.y" code ("fm-2.2", "FM2.2 ..." are FM-2.2);
- an unparseable answer (no JSON object with a "faulty_agents" list) counts as predicting nothing, so all its gold
  faults are misses; upstream skips such samples. Their figures without those samples are also reported, labelled
  `*_skip_unparseable`, for comparison with published numbers.

Micro P/R/F1 sum TP/FP/FN over samples; macro averages over every class seen in the gold or the prediction (so a
hallucinated class lowers it), as upstream's original evaluator. These are corpus statistics: each sample stores its
counts in Score.values ("pair.tp", ..., and per class "pair.tp:<agent>|<mode>"), and CorpusMetric computes the figures
and their bootstrap intervals from the totals. A sample's `unparsed.*` copies of its counts let the skip variants
subtract unparseable samples.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

from harness import FaultLabel, Score, Trajectory, normalize_agent
from harness.scoring import CorpusMetric
from harness.tasks.aegis.prompts import MODES

LEVELS = ("pair", "agent", "mode")
_CODE = re.compile(r"FM\s*-?\s*(\d)\s*\.\s*(\d+)", re.IGNORECASE)


def normalize_mode(mode: str) -> str:
    found = _CODE.search(mode)
    return f"FM-{found.group(1)}.{found.group(2)}" if found else mode.strip()


def parse(text: str) -> list[tuple[str, str]] | None:
    """The entries of the last JSON object holding a "faulty_agents" list, as (agent, mode) pairs as written;
    None when there is none. Entries without a string agent_name and error_type are dropped."""
    decoder = json.JSONDecoder()
    found, i = None, text.find("{")
    while i != -1:
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("{", i + 1)
            continue
        if isinstance(value, dict) and isinstance(value.get("faulty_agents"), list):
            found = value["faulty_agents"]
        i = text.find("{", end)
    if found is None:
        return None
    return [(e["agent_name"], e["error_type"]) for e in found
            if isinstance(e, dict) and isinstance(e.get("agent_name"), str) and isinstance(e.get("error_type"), str)]


def _sets(pairs: list[tuple[str, str]]) -> dict[str, set[str]]:
    keyed = {(normalize_agent(a), normalize_mode(m)) for a, m in pairs}
    return {"pair": {f"{a}|{m}" for a, m in keyed}, "agent": {a for a, _ in keyed}, "mode": {m for _, m in keyed}}


def score(response: str, gold: FaultLabel, trajectory: Trajectory) -> Score:
    written = parse(response)
    parsed = written is not None
    truth = _sets([(f.agent, f.mode or "") for f in gold.faults])
    pred = _sets(written or [])
    values: dict[str, float] = {"parsed": float(parsed), "exact": float(parsed and pred["pair"] == truth["pair"])}
    for level in LEVELS:
        t, p = truth[level], pred[level]
        for kind, classes in (("tp", t & p), ("fp", p - t), ("fn", t - p)):
            values[f"{level}.{kind}"] = float(len(classes))
            for c in classes:
                values[f"{level}.{kind}:{c}"] = 1.0
    if not parsed:
        values.update({f"unparsed.{k}": v for k, v in list(values.items()) if k != "parsed"})
    known = trajectory.agents() | truth["agent"]
    hallucinated_agents = sorted(pred["agent"] - known)
    hallucinated_modes = sorted(pred["mode"] - set(MODES))
    category = None
    if not parsed:
        category = "unparseable"
    elif hallucinated_agents:
        category = "hallucinated_agent"
    elif hallucinated_modes:
        category = "hallucinated_mode"
    elif pred["pair"] == truth["pair"]:
        category = None
    elif not pred["pair"]:
        category = "no_faults_predicted"
    elif pred["agent"] == truth["agent"]:
        category = "right_agents_wrong_modes"
    elif pred["pair"] < truth["pair"]:
        category = "missed_faults"
    elif pred["pair"] > truth["pair"]:
        category = "extra_faults"
    else:
        category = "wrong_pairs"
    metadata: dict[str, Any] = {"missed": sorted(truth["pair"] - pred["pair"]), "extra": sorted(pred["pair"] - truth["pair"]),
                                "hallucinated_agents": hallucinated_agents, "hallucinated_modes": hallucinated_modes}
    return Score(value=values["exact"], values=values,
                 answer=None if not parsed else json.dumps(sorted(pred["pair"])), error_category=category,
                 explanation=None if category is None else f"missed {metadata['missed']}, extra {metadata['extra']}",
                 metadata=metadata)


def _prf(tp, fp, fn, measure: str):
    import numpy as np

    precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
    recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
    if measure == "precision":
        return precision
    if measure == "recall":
        return recall
    return np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)


def set_metric(level: str, average: str, measure: str, *, skip_unparseable: bool = False) -> CorpusMetric:
    def total(totals: Mapping[str, Any], key: str):
        import numpy as np

        # a numpy value even for a key no sample has: 0 / 0 must be NaN under errstate, not ZeroDivisionError
        value = np.asarray(totals.get(key, 0.0), dtype=float)
        return value - totals.get(f"unparsed.{key}", 0.0) if skip_unparseable else value

    def statistic(totals: Mapping[str, Any], n: int):
        import numpy as np

        if average == "micro":
            return _prf(*(total(totals, f"{level}.{k}") for k in ("tp", "fp", "fn")), measure)
        classes = {k.split(":", 1)[1] for k in totals if k.startswith(f"{level}.") and ":" in k}
        if not classes:
            return 0.0
        scores, seen = [], []
        for c in sorted(classes):
            tp, fp, fn = (np.asarray(total(totals, f"{level}.{k}:{c}"), dtype=float) for k in ("tp", "fp", "fn"))
            scores.append(_prf(tp, fp, fn, measure))
            seen.append(tp + fp + fn > 0)
        # one broadcast for both: a precision with no predictions is a scalar while its `seen` is not
        both = np.broadcast_arrays(*scores, *seen)
        scores, seen = both[:len(classes)], both[len(classes):]
        count = np.sum(seen, axis=0)
        return np.where(count > 0, np.sum(np.where(seen, scores, 0.0), axis=0) / np.maximum(count, 1), 0.0)

    suffix = "_skip_unparseable" if skip_unparseable else ""
    return CorpusMetric(f"{level}_{average}_{measure}{suffix}", statistic=statistic)


def exact_match_ratio(*, skip_unparseable: bool = False) -> CorpusMetric:
    def statistic(totals: Mapping[str, Any], n: int):
        import numpy as np

        if not skip_unparseable:
            return np.asarray(totals.get("exact", 0.0)) / n
        parsed = np.asarray(totals.get("parsed", 0.0), dtype=float)
        return np.where(parsed > 0, totals.get("exact", 0.0) / np.maximum(parsed, 1), np.nan)

    return CorpusMetric("exact_match_ratio" + ("_skip_unparseable" if skip_unparseable else ""), statistic=statistic)


def metrics() -> list[CorpusMetric]:
    full = [set_metric(level, average, measure) for level in LEVELS for average in ("micro", "macro")
            for measure in ("precision", "recall", "f1")]
    skipped = [set_metric(level, average, "f1", skip_unparseable=True) for level in LEVELS for average in ("micro", "macro")]
    return [*full, exact_match_ratio(), *skipped, exact_match_ratio(skip_unparseable=True)]
