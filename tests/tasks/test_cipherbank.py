"""CipherBank: extraction and scoring against hand-checked cases, the official prompt, and end-to-end numbers."""
from __future__ import annotations

import json

import pytest

import harness
from harness import get_task
from harness.model import MockModel
from harness.store import Store
from harness.tasks.cipherbank import CIPHERS, prompts, scoring


@pytest.mark.parametrize("response, expected", [
    ("<result>abc</result>", "abc"),
    ("think <result>first</result> then <result> second </result>", "second"),  # the last tag wins
    ("<result>line1\nline2</result>", "line1\nline2"),  # DOTALL: answers may span lines
    ("no tags at all", "no tags at all"),  # no tag: the whole response, unstripped, as upstream
    ("<result>unclosed", "<result>unclosed"),
    ("<result></result>", ""),
    ("<RESULT>x</RESULT>", "<RESULT>x</RESULT>"),  # the tag is case-sensitive upstream
])
def test_extract(response, expected):
    assert scoring.extract(response) == expected


@pytest.mark.parametrize("pred, ref, correct", [
    ("Hello World", "hello world", True),  # case-insensitive
    ("HelloWorld", "Hello World", True),  # ASCII spaces are deleted before comparing
    ("Hello\u00a0World", "Hello World", False),  # only ASCII spaces: a no-break space stays
    ("Hello\tWorld", "Hello World", False),
    ("Hello World.", "Hello World", False),
    ("", "", True),
])
def test_is_correct(pred, ref, correct):
    assert scoring.is_correct(pred, ref) is correct


def test_levenshtein_similarity_hand_checked():
    # kitten -> sitting: 3 edits over 7 characters; case is ignored, spaces count
    assert scoring.similarity("kitten", "SITTING") == pytest.approx(1 - 3 / 7)
    assert scoring.similarity("a b", "ab") == pytest.approx(1 - 1 / 3)


def test_score_categories():
    assert scoring.score("<result>Hello</result>", "hello").error_category is None
    assert scoring.score("Hello", "hello").value == 1.0  # the whole response is the answer
    assert scoring.score("I give up", "hello").error_category == "no_result_tag"
    assert scoring.score("<result>Helo</result>", "hello").error_category == "length_mismatch"
    assert scoring.score("<result>Hellp</result>", "hello").error_category == "wrong_characters"


def test_prompt_matches_the_official_rendering():
    text = prompts.user_prompt("Rot13", "Yrqvn, na Nzrevpna, erfvqrf va Ybf Natryrf.")
    assert text.startswith("## Background:\n    Decrypt the provided **Ciphertext** and return the corresponding "
                           "**Plaintext** following the given examples.\n    Think step by step.")
    assert "    * Example 1:\n        - **Ciphertext**:\n            Anzr: Rzvyl Wbuafba; Qngr bs Ovegu: Whyl 15, 1990; " \
           "Cnffcbeg Ahzore: L987654321\n        - **Plaintext**:\n            Name: Emily Johnson;" in text
    assert text.count("* Example") == 3
    assert text.endswith("## Input:\n    - **Ciphertext**:\n        Yrqvn, na Nzrevpna, erfvqrf va Ybf Natryrf.\n"
                         "    - **Plaintext**:\n")
    hinted = prompts.user_prompt("Vigenere", "x", hint=True)
    assert "## Algorithm Flow:\n    Uses the Vigenère cipher." in hinted
    assert hinted.index("## Algorithm Flow:") < hinted.index("## Examples:")
    assert "ACL" not in hinted  # the key is never revealed


def test_bundled_sample_has_every_cipher_and_domain():
    task = get_task("cipherbank").build()
    provenance, stream = task.dataset.open("bundled")
    samples = list(stream)
    assert len(samples) == 20 * 9
    assert len({s.id for s in samples}) == len(samples)
    assert {s.metadata["cipher"] for s in samples} == set(CIPHERS)
    assert len({s.metadata["domain"] for s in samples}) == 5
    assert provenance.kind == "bundled" and len(provenance.sha256) == 64
    # the no_system variant drops the system prompt, as the paper ran o1 and R1
    assert get_task("cipherbank").build("no_system").solver.system is None


def _run(tmp_path, model, **plan_kw) -> tuple[Store, str]:
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    run_id = harness.eval("cipherbank", model, db=store, data="bundled", **plan_kw).run_id
    return store, run_id


def test_mock_with_known_wrong_answers_gives_the_expected_per_cipher_numbers(tmp_path):
    answered: dict[str, int] = {}

    def respond(sample, messages):
        cipher = sample.metadata["cipher"]
        answered[cipher] = answered.get(cipher, 0) + 1
        if cipher in ("Rot13", "Atbash"):
            return f"<result>{sample.target.upper()}</result>"  # case does not matter
        if cipher == "Polybius" and sample.metadata["domain"] == "Internet Records":  # 4 of 20 records
            return f"<result>{sample.target.replace(' ', '')}</result>"  # nor do ASCII spaces
        return "<result>wrong</result>"

    store, run_id = _run(tmp_path, MockModel(respond))
    metrics = store.run_tasks(run_id)[0]["metrics"]
    by_cipher = {c: m["accuracy"]["value"] for c, m in metrics["by"]["cipher"].items()}
    assert by_cipher == {"Rot13": 100.0, "Atbash": 100.0, "Polybius": 20.0, **{c: 0.0 for c in CIPHERS[3:]}}
    assert metrics["overall"]["accuracy"]["value"] == pytest.approx(100 * 44 / 180)
    assert metrics["by"]["category"]["substitution"]["accuracy"]["value"] == pytest.approx(100 * 44 / 80)
    assert metrics["by"]["category"]["custom"]["accuracy"]["value"] == 0.0
    assert metrics["counts"] == {"scored": 180, "error": 0, "planned": 180} and metrics["complete"] is True
    low, high = metrics["overall"]["accuracy"]["ci_low"], metrics["overall"]["accuracy"]["ci_high"]
    assert low < 100 * 44 / 180 < high
    assert answered == {c: 20 for c in CIPHERS}


def test_reference_model_scores_100_through_the_cli(tmp_path):
    from typer.testing import CliRunner

    from harness.cli._app import app

    db = f"sqlite:///{tmp_path / 'h.db'}"
    result = CliRunner().invoke(app, ["eval", "--model", "reference", "--task", "cipherbank", "--data", "bundled",
                                      "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    task = summary["tasks"][0]
    assert task["metrics"]["overall"]["accuracy"]["value"] == 100.0
    assert all(m["accuracy"]["value"] == 100.0 for m in task["metrics"]["by"]["cipher"].values())
    assert task["counts"] == {"scored": 180}
    assert {r["group"] for r in task["reference"]} >= {None, "cipher=Vigenere"}
