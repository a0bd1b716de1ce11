"""The anchor-bench workload as a harness task: `Repeat the code word: wNNNNN` -> `wNNNNN`, exact match.

Records are the anchor bench's {"id", "input", "target"} lines, given with --data PATH.
"""
from harness import Dataset, Sample, Score, Task, accuracy, generate, task


def _to_samples(record, config):
    yield Sample(id=record["id"], input=record["input"], target=record["target"])


async def exact_match(state, ctx) -> Score:
    answer = state.completion.strip()
    return Score(value=float(answer == state.sample.target), answer=answer)


@task("anchor_echo")
def anchor_echo() -> Task:
    return Task(name="anchor_echo", version="1", dataset=Dataset(to_samples=_to_samples), solver=generate(),
                scorers=[exact_match], metrics=[accuracy()], headline="accuracy")
