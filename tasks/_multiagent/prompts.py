"""The three prompts of Who&When's Automated_FA/Lib/utils.py (ag2ai/Agents_Failure_Attribution), reproduced verbatim
with their system messages, so numbers stay comparable to the paper. Upstream quirks are kept on purpose: the
all-at-once and binary-search prompts show the conversation without step numbers (the model counts from 0 as the
prompt explains), and the step-by-step prompt contains a literal "(Step {idx})" (an f-string upstream forgot).

`answer` is the task's correct answer: None leaves the line out (the paper's "w/o ground truth" setting).
"""
from __future__ import annotations

from harness import Trajectory

ALL_AT_ONCE_SYSTEM = "You are a helpful assistant skilled in analyzing conversations."
STEP_BY_STEP_SYSTEM = "You are a precise step-by-step conversation evaluator."
BINARY_SEARCH_SYSTEM = "You are an AI assistant specializing in localizing errors in conversation segments."


def _answer_line(answer: str | None) -> str:
    return f"The Answer for the problem is: {answer}\n" if answer is not None else ""


def all_at_once(trajectory: Trajectory, answer: str | None) -> str:
    chat_content = "\n".join(f"{s.agent}: {s.content}" for s in trajectory.steps)
    return (
        "You are an AI assistant tasked with analyzing a multi-agent conversation history when solving a real world problem. "
        f"The problem is:  {trajectory.task}\n"
        f"{_answer_line(answer)}"
        "Identify which agent made an error, at which step, and explain the reason for the error. "
        "Here's the conversation:\n\n" + chat_content +
        "\n\nBased on this conversation, please predict the following:\n"
        "1. The name of the agent who made a mistake that should be directly responsible for the wrong solution to the real world problem. If there are no agents that make obvious mistakes, decide one single agent in your mind. Directly output the name of the Expert.\n"
        "2. In which step the mistake agent first made mistake. For example, in a conversation structured as follows: "
        """
            {
                "agent a": "xx",
                "agent b": "xxxx",
                "agent c": "xxxxx",
                "agent a": "xxxxxxx"
            },
            """
        "each entry represents a 'step' where an agent provides input. The 'x' symbolizes the speech of each agent. If the mistake is in agent c's speech, the step number is 2. If the second speech by 'agent a' contains the mistake, the step number is 3, and so on. Please determine the step number where the first mistake occurred.\n"
        "3. The reason for your prediction."
        "Please answer in the format: Agent Name: (Your prediction)\n Step Number: (Your prediction)\n Reason for Mistake: \n"
    )


def step_by_step(seen: Trajectory, answer: str | None) -> str:
    """`seen`: the steps up to and including the one judged."""
    history = "".join(f"Step {s.index} - {s.agent}: {s.content}\n" for s in seen.steps)
    last = seen.steps[-1]
    return (
        f"You are an AI assistant tasked with evaluating the correctness of each step in an ongoing multi-agent conversation aimed at solving a real-world problem. The problem being addressed is: {seen.task}. "
        f"{_answer_line(answer)}"
        f"Here is the conversation history up to the current step:\n{history}\n"
        f"The most recent step ({last.index}) was by '{last.agent}'.\n"
        "Your task is to determine whether this most recent agent's action (Step {idx}) contains an error that could hinder the problem-solving process or lead to an incorrect solution. "
        "Please respond with 'Yes' or 'No' and provide a clear explanation for your judgment. "
        "Note: Please avoid being overly critical in your evaluation. Focus on errors that clearly derail the process."
        "Respond ONLY in the format: 1. Yes/No.\n2. Reason: [Your explanation here]"
    )


def binary_search(segment: Trajectory, answer: str | None, start: int, mid: int, end: int) -> str:
    """`segment`: steps start..end (positions in the history)."""
    chat_content = "\n".join(f"{s.agent}: {s.content}" for s in segment.steps)
    return (
        "You are an AI assistant tasked with analyzing a segment of a multi-agent conversation. Multiple agents are collaborating to address a user query, with the goal of resolving the query through their collective dialogue.\n"
        "Your primary task is to identify the location of the most critical mistake within the provided segment. Determine which half of the segment contains the single step where this crucial error occurs, ultimately leading to the failure in resolving the user’s query.\n"
        f"The problem to address is as follows: {segment.task}\n"
        f"{_answer_line(answer)}"
        f"Review the following conversation segment from step {start} to step {end}:\n\n{chat_content}\n\n"
        f"Based on your analysis, predict whether the most critical error is more likely to be located in the upper half (from step {start} to step {mid}) or the lower half (from step {mid + 1} to step {end}) of this segment.\n"
        "Please provide your prediction by responding with ONLY 'upper half' or 'lower half'. Remember, your answer should be based on identifying the mistake that directly contributes to the failure in resolving the user's query. If no single clear error is evident, consider the step you believe is most responsible for the failure, allowing for subjective judgment, and base your answer on that."
    )
