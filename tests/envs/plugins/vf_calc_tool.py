"""A tool verifiers environment: the model may call add(a, b) before answering."""

import verifiers as vf
from datasets import Dataset


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


def load_environment(**kwargs):
    rows = [{"question": f"What is {a} + {b}? Use the add tool, then answer with the number.", "answer": str(a + b)} for a, b in [(12, 30), (7, 8)]]

    def correct(completion, answer):
        last = completion[-1]
        content = last.get("content") if isinstance(last, dict) else last.content
        return 1.0 if str(content or "").strip() == answer else 0.0

    return vf.ToolEnv(dataset=Dataset.from_list(rows), tools=[add], rubric=vf.Rubric(funcs=[correct]), max_turns=4, **kwargs)
