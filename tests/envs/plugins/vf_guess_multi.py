"""A multi-turn verifiers environment: guess a number with higher/lower feedback."""

import verifiers as vf
from datasets import Dataset


class GuessEnv(vf.MultiTurnEnv):
    async def env_response(self, messages, state, **kwargs):
        text = str(messages[-1].content or "").strip()
        secret = int(state["answer"])
        if text == str(secret):
            state["final_env_response"] = [{"role": "user", "content": "Correct!"}]
            return state["final_env_response"]
        hint = "higher" if text.lstrip("-").isdigit() and int(text) < secret else "lower"
        return [{"role": "user", "content": f"Try {hint}."}]


def load_environment(max_turns: int = 4, **kwargs):
    rows = [{"question": "Guess my number from 1 to 10.", "answer": str(n)} for n in (3, 7, 9)]

    def solved(completion, answer):
        return 1.0 if any(str(m.get("content", "") if isinstance(m, dict) else m.content).strip() == answer
                          for m in completion if (m.get("role") if isinstance(m, dict) else m.role) == "assistant") else 0.0

    def fewer_turns(state):
        return 1.0 / max(1, len(state["trajectory"]))

    rubric = vf.Rubric(funcs=[solved, fewer_turns], weights=[1.0, 0.5])
    return GuessEnv(dataset=Dataset.from_list(rows), rubric=rubric, max_turns=max_turns, **kwargs)
