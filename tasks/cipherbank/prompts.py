"""The official prompt of upstream prompt.py (markdown format), reproduced verbatim: the system prompt,
the fixed k-shot examples from shot_case.jsonl, and for the hint variant the 'Algorithm Flow' paragraph."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SYSTEM = """- Role: Cryptography Analysis Expert.
    - Goals: Utilize the provided ciphertext and plaintext examples to analyze encryption patterns, decrypt new ciphertext.
    - Workflow:
    1. Analyze the provided ciphertext and plaintext examples to identify possible encryption patterns and rules.
    2. Apply the decryption algorithm to the new ciphertext, attempt to decrypt, and verify the results."""

# the agent variant's addition to the system prompt (ours: the paper evaluates single responses)
AGENT = """
    - Tools: you may run Python code with the `python` tool to test a decryption. When you are done, call `submit`
      with your answer in the format the task asks for (<result>...</result>)."""

# Upstream's own descriptions. The WordShift one describes a Caesar shift although the cipher rotates each
# word's letters left by 3; it is kept as published so hint-variant numbers stay comparable to the paper.
HINTS = {
    "Rot13": "Uses the Caesar cipher with a fixed shift of 13 positions. For each letter in the **Plaintext**, shift it forward by 13 positions in the alphabet to produce the **Ciphertext**.",
    "Atbash": "Uses the Atbash cipher. Each letter in the **Plaintext** is replaced with its reverse counterpart in the alphabet.",
    "Vigenere": "Uses the Vigenère cipher. Each letter in the **Plaintext** is shifted by the corresponding letter in the **Key** to produce the **Ciphertext**.",
    "Polybius": "Uses the Polybius cipher. Each letter in the **Plaintext** is mapped to a pair of coordinates in the Polybius square, forming the **Ciphertext**.",
    "Reverse": "Reverses the **Plaintext** to create the **Ciphertext**.",
    "SwapPairs": "For each pair of letters in the **Plaintext**, their positions are swapped to produce the **Ciphertext**. If the number of letters is odd, the last letter remains in its original position.",
    "DualAvgCode": "This encryption method converts each letter of the **Plaintext** into two letters in the **Ciphertext**, such that the average of their ASCII values equals the ASCII value of the original letter.",
    "ParityShift": """For each letter in the **Plaintext**: 
        - If the ASCII value is even, add 1 to it to get the corresponding character in the **Ciphertext**.
        - If the ASCII value is odd, subtract 1 to get the new character in the **Ciphertext**.""",
    "WordShift": "The algorithm splits the **Plaintext** into words based on spaces. Each word is then individually encrypted using the Caesar cipher, resulting in the **Ciphertext**.",
}


@cache
def shots() -> list[dict[str, str]]:
    path = Path(__file__).parent / "data" / "shot_case.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def user_prompt(cipher: str, ciphertext: str, *, few_shot: int = 3, hint: bool = False) -> str:
    if hint:
        text = f"""## Background:
    Decrypt the provided **Ciphertext** and return the corresponding **Plaintext** following the given algorithm flow and examples.
    Think step by step.
    Provide the **Plaintext** result in the format <result>text</result>, where text is the decrypted text.
## Algorithm Flow:
    {HINTS[cipher]}
## Examples:"""
    else:
        text = """## Background:
    Decrypt the provided **Ciphertext** and return the corresponding **Plaintext** following the given examples.
    Think step by step.
    Provide the **Plaintext** result in the format <result>text</result>, where text is the decrypted text.
## Examples:"""
    for i, shot in enumerate(shots()[:few_shot]):
        text += f"""
    * Example {i + 1}:
        - **Ciphertext**:
            {shot[cipher]}
        - **Plaintext**:
            {shot["plaintext"]}"""
    return text + f"""
## Input:
    - **Ciphertext**:
        {ciphertext}
    - **Plaintext**:
"""
