"""A single-turn verifiers environment (classic API) for rlvr's adapter tests."""

import verifiers as vf
from datasets import Dataset


def load_environment(**kwargs):
    rows = [{"question": f"Repeat the word {w}.", "answer": w} for w in ["apple", "river", "stone", "cloud"]]

    def exact_match(completion, answer):
        return 1.0 if completion[-1]["content"].strip().lower() == answer else 0.0

    def brevity(completion):
        return 1.0 if len(completion[-1]["content"]) <= 10 else 0.25

    rubric = vf.Rubric(funcs=[exact_match, brevity], weights=[1.0, 0.2])
    return vf.SingleTurnEnv(dataset=Dataset.from_list(rows), system_prompt="Answer with one word.", rubric=rubric, **kwargs)
