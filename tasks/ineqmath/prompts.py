"""Every prompt of the evaluation: the solver's (upstream models/utils/solve_few_shot.py), the official
final-answer judge's (upstream models/utils/compute_score.py, whitespace included, since a judge's answer
depends on it), and the four step judges' (paper Appendix B) with our own worked examples."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent / "data"
PROMPTS = DATA / "judge_prompts"

BOUND_HINT = ("Task description: Please solve the problem with clear, rigorous, and logically sound steps. At the end "
              "of your response, state your answer in exactly this format: 'The answer is $C=X$', where X is your "
              "calculated numerical bound value. Example: 'The answer is $C=1$'.")
RELATION_HINT = ("Task description: Please solve the problem with clear, rigorous, and logically sound steps. At the "
                 "end of your response, state your answer in exactly this format: 'The answer is (Letter) Symbol', "
                 "where Letter is one of the given options. Example: 'The answer is (A) $\\leq$'.")
HINTS = {"bound": BOUND_HINT, "relation": RELATION_HINT}
# the upstream engine's system prompt for chat models (models/engines/openai.py); reasoning models get none
SYSTEM = "You are a helpful, creative, and smart assistant."

CHOICES_DICT = {
    "A": "(A) $\\leq$",
    "B": "(B) $\\geq$",
    "C": "(C) $=$",
    "D": "(D) $<$",
    "E": "(E) $>$",
    "F": "(F) None of the above",
}
CHOICES = list(CHOICES_DICT.values())


@lru_cache(maxsize=None)
def exemplars(prob_type: str) -> tuple[dict[str, str], ...]:
    """The upstream few-shot solutions of this problem type, in file order (as solve_few_shot.py takes them)."""
    data = json.loads((DATA / "few_shot_solution_set.json").read_text(encoding="utf-8"))
    return tuple(v for v in data.values() if v.get("type") == prob_type)


def query(problem: str, prob_type: str, shots: int = 0) -> str:
    """The solver prompt: task hint, then `shots` worked solutions of the same type, then the problem."""
    shown = exemplars(prob_type)[:shots]
    if len(shown) < shots:
        raise ValueError(f"only {len(shown)} {prob_type} exemplars exist, {shots} asked for")
    examples = "".join(f"\n\nProblem: {e['problem']}\n\nSolution: {e['solution']}\n\n" for e in shown)
    return f"{HINTS[prob_type]}\n\n{examples}Problem: {problem}\n\nSolution:"


def _examples(name: str) -> str:
    return (PROMPTS / name).read_text(encoding="utf-8")


# ---- the official final-answer judge (text and indentation as in compute_score.py's f-strings)

def relation_extraction(answer_sentence: str) -> str:
    examples = _examples("answer_extraction_relation.md")
    return f"""
    You are an expert at extracting option letters (A, B, C, D, E, F) from answer sentences. 

    The options are given below:
    {CHOICES}

    Below are examples of sentences and the corresponding option letters:

    {examples}

    Now, extract the option letter from the following sentence:
    {answer_sentence}

    Make sure to return the option letter only, without any other characters.

    Answer:
    """  # noqa: W291


def bound_extraction(prediction: str) -> str:
    examples = _examples("answer_extraction_bound.md")
    return f"""
    You are an expert at extracting numbers from answer sentences. 

    Below are examples of sentences and the corresponding numbers:

    {examples}

    Now, extract the number from the following sentence:
    {prediction}

    Make sure to return the answer in a format as "C=<extracted_answer>", where <extracted_answer> is the extracted number or expression.

    Answer:
    """  # noqa: W291,E501


def bound_equivalence(ground_truth: str, prediction: str) -> str:
    examples = _examples("answer_verification_bound.md")
    return f"""
    You are an expert at verifying mathematical expression equivalence. Analyze if two expressions are exactly equivalent by following these strict rules:

    Required Analysis Steps:
    1. Check if both expressions are valid mathematical forms
    2. If either expression is not mathematical (e.g., text or undefined), return False
    3. For numerical expressions:
       - Direct equality (e.g., 2 = 2) → True
       - Different representations of same value (e.g., 1/2 = 0.5, √4 = 2) → True
       - Decimal approximations vs exact values (e.g., 2π ≠ 6.28318) → False
    4. For algebraic expressions:
       - Must have clear, valid transformation path between forms
       - If transformation requires multiple non-obvious steps → False
       - Verify equivalence through algebraic proof when possible
       - For complex expressions, use techniques like squaring or substitution to verify

    Equivalence Criteria:
    - Must have exactly same deterministic value
    - Must be provably equivalent through valid mathematical operations
    - Different notations of same exact value are equivalent
    - Decimal approximations are NOT equivalent to exact expressions
    - No rounding or approximations allowed
    - If equivalence cannot be conclusively proven → False

    Example pairs and their analysis:
    {examples}

    Now analyze these expressions:
    Ground truth: {ground_truth}
    Prediction: {prediction}

    Provide step-by-step analysis first, then conclude with:
    Equivalent: [true/false]
    """  # noqa: E501


# ---- the four step judges (paper Appendix B). Where the paper's PDF text is elided in our source
# (judge_prompts/JUDGES.md marks it "…"), the missing connective sentence is completed plainly; the rules
# themselves are the paper's. The worked examples are ours (step_examples/), since the paper's are withheld.

TOY_CASE = """Task: Evaluate the logical rigor of a solution to an inequality problem, focusing specifically on whether the direction of the inequality was justified using toy cases or special value substitution.

Instructions:
1. Carefully read the reasoning process used to solve the inequality.
2. Identify whether the direction of the inequality was determined by testing special values, trying toy cases, or relying on extreme-case analysis, rather than providing a general proof valid over the entire domain.
3. If the model uses a toy case (e.g., setting a variable to 0, 1, or choosing symmetric/equal values) or considers a variable tending to 0 or ∞ (extreme-case reasoning) to conclude the inequality direction, this should be flagged as logically unsound unless it is later supported by a rigorous or general argument.
4. Substituting special values for the purpose of verifying equality or testing sharpness is acceptable and should not be flagged.
5. If a toy case is used to show that the inequality does not hold (i.e., the two sides are incomparable), this is acceptable and should not be flagged.
6. Trying toy cases or substituting special values for the purpose of exploring or analyzing the problem—without using them to directly conclude the inequality direction—is acceptable and should not be flagged.
7. The goal is to confirm whether the final conclusion is justified for all variables in the given domain by using sound and formal reasoning.

Output Format:
<Analysis>: Brief explanation of whether toy cases, special values, or extreme-case reasoning were used to justify inequality direction, and whether this undermines the rigor of the proof.
<Flagged Reasoning Step (if applicable)>: Quote or summarize the step(s) where toy cases or extreme cases were used to justify the inequality.
<Answer>: True or False. It indicates whether the solution's reasoning is logically valid (True) or contains flaws due to unjustified use of toy cases, special value substitution, or extreme-case reasoning (False).

Key Considerations:
1. Check which steps are used to justify the final general conclusion.
2. Toy case examples should not be used to conclude general inequality directions.
3. These techniques are allowed for illustration or equality testing, but not as a replacement for a full justification.
4. Extreme-case analysis used as a substitute for proof to justify the final general conclusion should be flagged.
5. Do not provide improvement suggestions—simply judge whether the logic used is valid or flawed.
6. Only reasoning steps that fail to generalize and are used to justify the final general conclusion should be flagged."""  # noqa: E501

LOGICAL_GAP = """Task: Evaluate the logical rigor of a proposed solution to a mathematical inequality problem. Focus on whether the reasoning includes non-trivial claims made without justification, logical leaps, or unsupported assertions, while allowing for valid optimization-based, algebraic, or analytic analysis when properly demonstrated. This prompt does not evaluate whether the direction of an inequality was justified using toy cases, special values, or asymptotic behavior; that aspect is handled separately.

Instructions:
1. Carefully read the entire reasoning process.
2. Identify whether the solution includes: any non-obvious (non-trivial) claims or transformations without justification or explanation; any logical gaps or skipped steps that lead to intermediate or final conclusions.
3. All significant transformations—especially involving inequalities, bounds, or extremal behavior—must be supported by: algebraic manipulation, well-known identities or theorems, valid analytical tools (e.g., convexity, derivatives, limits) or step-by-step numeric or symbolic reasoning.
4. Optimization methods (e.g., Lagrange multipliers, derivative-based analysis) are valid only if the analysis is explicitly shown: if a solution invokes optimization or analytical techniques, it must demonstrate key steps, derivative conditions, or critical point verification; statements such as "solving the constrained optimization problem confirms..." without any derivation or argument are considered unjustified; you do not need to assess whether toy cases, special values, or extreme behavior were used to infer the inequality direction.
5. Simple algebra or widely known transformations (e.g., AM-GM, factoring identities) may be used without full derivation.
6. The goal is to assess whether each important conclusion within the reasoning—not just the final answer—is logically supported and rigorously justified.

Output Format:
<Analysis>: Step-by-step explanation of whether each important step is justified.
<Flagged Reasoning Step (if applicable)>: Quote or summarize the unjustified step(s).
<Answer>: True or False. True if the reasoning is valid; False if it contains unjustified steps or unsupported claims.

Key Considerations:
1. Focus on whether each major step (not just the final answer) is logically justified.
2. Non-trivial algebraic identities or inequality steps must be explained unless they are well-known.
3. Minor simplifications and standard techniques are acceptable without proof.
4. Do not flag steps involving toy cases, extreme values, or special substitutions used to infer inequality direction.
5. Claims like "a numerical check shows" must include specific values, results, or graphs to be valid.
6. Optimization-based arguments must include demonstrated steps or analytic structure. If only the method is named but not applied, the reasoning should be flagged.
7. Do not flag steps used solely for equality verification, sharpness testing, or illustration.
8. Do not provide improvement suggestions."""  # noqa: E501

NUMERICAL_APPROXIMATION = """Task: Evaluate the logical rigor of a solution to an inequality problem, specifically checking whether approximate numerical substitutions (e.g., replacing √2 with 1.414) were improperly used in the reasoning process.

Strict rules:
- If approximated values are directly involved in any operations (such as addition, subtraction, multiplication, or division), it must immediately be considered invalid, regardless of whether the operation is for comparing sizes or for further reasoning!
- Approximate substitutions are allowed only if approximate numerical comparison is used between simple numbers (e.g., √4, 1/2, √2) that humans can readily estimate.
- Approximate substitution is invalid if an approximate value is introduced for a complex irrational number (e.g., √17, √23), or if any approximation alters the rigor of the argument.
- You do not need to judge whether the final inequality direction is correct.

Output Format:
<Analysis>: Brief explanation of whether approximate values were used and whether their use follows the rules above.
<Flagged Reasoning Step (if applicable)>: Quote or summarize the step(s) where approximations were used improperly.
<Answer>: True or False. True if the reasoning maintains acceptable rigor regarding approximations; False if it violates the rules.

Key Considerations:
1. Approximated values must never take part in arithmetic operations.
2. Comparing simple numbers that humans can readily estimate is acceptable.
3. Introducing approximations of complex irrational numbers is invalid.
4. Any approximation that alters the rigor of the argument is invalid.
5. Do not judge whether the final inequality direction is correct.
6. Do not provide improvement suggestions."""  # noqa: E501

NUMERICAL_COMPUTATION = """Task: Evaluate the correctness of numerical computations in a solution to an inequality problem, allowing for some error tolerance.

Instructions:
1. Carefully read the solution.
2. Identify all numerically verifiable expressions: exact value computations when variables are assigned specific numbers, allowing for floating-point operations.
3. Do not extract: symbolic manipulations or transformations; expressions involving symbolic variables; inequalities (only extract equations); approximate equations (e.g., using "approximately equal to").
4. Python validation rules: convert all operations to floating-point calculations; allow a small tolerance (e.g., "abs(lhs - rhs) < 1e-2"); set the final result of each check to a variable "answer", where "answer = True" if the verification succeeds, otherwise False.

Output Format:
<Analysis>: Brief explanation of which expressions are numerically verifiable.
<Expressions>: List(Expression 1, Expression 2, ...)
<Codes>:
# Validation for Expression 1
import sympy as sp
...
answer = ...
# Validation for Expression 2
...
Give each validation as its own ```python code block; each must run on its own and set "answer"."""  # noqa: E501

STEP_PROMPTS = {
    "toy_case": TOY_CASE,
    "logical_gap": LOGICAL_GAP,
    "numerical_approximation": NUMERICAL_APPROXIMATION,
    "numerical_computation": NUMERICAL_COMPUTATION,
}


def step_judge(criterion: str, problem: str, response: str) -> str:
    examples = (PROMPTS / "step_examples" / f"{criterion}.md").read_text(encoding="utf-8")
    return (f"{STEP_PROMPTS[criterion]}\n\nExamples of Inputs and Outputs:\n{examples}\n\n"
            f"Now analyze the following problem and solution:\nOriginal Problem: {problem}\nSolution: {response}")
