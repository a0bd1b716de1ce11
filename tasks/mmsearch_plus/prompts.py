"""The prompts of our rollout [proposal in SOURCE.md: the paper's appendix prompts could not be read].
Changing any of them changes PROMPT_VERSION (stored with every score through the judge and summariser hashes)."""
from __future__ import annotations

import hashlib

ANSWER_FORMAT = "Give your final answer, a short phrase, inside <answer></answer> tags."

QUESTION = "{question}\n\n" + ANSWER_FORMAT

NO_SEARCH = ("You answer questions about images from your own knowledge. Look at the image(s) carefully. "
             + ANSWER_FORMAT)

IMAGE_SEARCH = ("You answer questions about images. Below the question are the results of a reverse image search "
                "of each whole image, with a summary of each result page. Use them if they help. " + ANSWER_FORMAT)

_TOOLS = {
    "text_search": "`text_search(query)` searches the web and returns the top pages with summaries",
    "image_search": "`image_search(image)` runs a reverse image search on an image id (img_1, or a crop such as "
                    "crop_1) and returns the top visual matches with summaries",
    "crop": "`crop(image, box)` crops a region [x1, y1, x2, y2] in the image's pixels and returns it as a new "
            "image id you can search with",
    "zoom_in": "`zoom_in(image, mark)` crops the box of a numbered mark of an image and returns it as a new image id",
}


def rollout(tools: list[str], rounds: int) -> str:
    listed = "\n".join(f"- {_TOOLS[t]}" for t in tools)
    return ("You are a web-browsing research assistant answering a question about the given image(s). The answer "
            f"usually needs information found on the web. You may use these tools:\n{listed}\n"
            f"You have at most {rounds} rounds (assistant turns) of tool use. When you know the answer, call "
            "`submit` with it as <answer>your short answer</answer>.")


FINAL = ("You have used all your rounds of tool use. Answer now, without tools, from what you found: "
         + ANSWER_FORMAT)

# keyed by the page text's hash (not its URL), so the prompt is given the text alone
SUMMARISER = ("You summarise a web page for a researcher answering this question about an image:\n"
              "Question: {question}\n\n"
              "Page:\n{text}\n\n"
              "Write at most 150 words: the facts on the page that bear on the question (names, dates, numbers, "
              "titles), and say so plainly if the page is unrelated.")

STRICT_JUDGE = """You are grading an answer to a question about an image against the list of accepted answers.

Question: {question}
Accepted answers: {answers}
Answer given: {answer}

Rules: the answer is correct if and only if it is semantically equivalent to any accepted answer. Numbers,
scores, dates and names must match exactly (their format may differ). An answer that hedges between several
candidates is incorrect. A partial answer is incorrect.
Reply with JSON only: {{"correct": true or false, "reason": "one sentence"}}"""

CONTAINS_JUDGE = """You are grading a research report that answers a question about an image.

Question: {question}
Accepted answers: {answers}
Report: {answer}

The report is correct if it states one of the accepted answers (or an exact equivalent) as its answer anywhere.
Reply with JSON only: {{"correct": true or false, "reason": "one sentence"}}"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


JUDGES = {"strict": ("1.0", STRICT_JUDGE), "contains": ("1.0", CONTAINS_JUDGE)}
