"""The prompts of EvalPlus's code generation (evalplus 0.3.1, codegen.py and provider/)."""
from __future__ import annotations

# codegen.run_codegen, for every chat model; provider/openai.py sends it with the task's prompt
INSTRUCTION = ("Please provide a self-contained Python script that solves the following problem "
               "in a markdown code block:")

# provider/utility.py: the stop strings of direct completion (base models)
EOS = ["<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint("]
EXTRA_EOS = {"humaneval": ["\ndef ", "\nclass ", "\nimport ", "\nfrom ", "\nassert "],
             "mbpp": ['\n"""', "\nassert"]}


# the agentic variant's system prompt (ours: EvalPlus evaluates single responses); the user turn is the
# chat prompt as upstream's, so the submitted program is read as a chat response is
AGENT_SYSTEM = ("You can run Python code with the `python` tool to test your solution before you answer. When it is "
                "ready, call `submit` with the complete solution in a ```python code block.")


def task_prompt(prompt: str) -> str:
    """What every model continues or is shown: codegen strips the prompt and ends it with a newline."""
    return prompt.strip() + "\n"


def chat_message(prompt: str) -> str:
    return INSTRUCTION + f"\n```python\n{prompt.strip()}\n```"


def stop_strings(dataset: str) -> list[str]:
    return EOS + EXTRA_EOS[dataset]


def truncate(completion: str, stops: list[str]) -> str:
    """Servers that ignore `stop` (or a chat endpoint) still yield the same program."""
    cut = min((i for s in stops if (i := completion.find(s)) != -1), default=len(completion))
    return completion[:cut]
