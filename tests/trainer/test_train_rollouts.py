"""Environment rollouts: one token sequence per episode, environment tokens masked, budgets, failures."""

from __future__ import annotations

from collections import Counter

import gymnasium
import pytest

pytest.importorskip("transformers")
pytestmark = pytest.mark.train

import rlvr.envs  # noqa: E402,F401  (registers the built-in environments)
from rlvr.trainer.engine import Completion, SamplingParams  # noqa: E402
from rlvr.trainer.rollout.chat import ChatFormatter  # noqa: E402
from rlvr.trainer.rollout.runner import EnvRunner  # noqa: E402
from rlvr.trainer.run.config import EnvConfig  # noqa: E402
from rlvr.trainer.rollout.tasks import TaskKey, draw_keys, heldout_keys, train_keys  # noqa: E402
from rlvr.trainer.tiny import tiny_tokenizer  # noqa: E402


class ScriptedBackend:
    """A generation backend that answers from a script: ``reply(prompt_text, call) -> text``."""

    name = "scripted"

    def __init__(self, tokenizer, reply, stop: bool = True) -> None:
        self.tokenizer = tokenizer
        self.reply = reply
        self.stop = stop
        self.calls = 0

    def generate(self, prompts, params: SamplingParams) -> list[Completion]:
        self.calls += 1
        out = []
        for i, p in enumerate(prompts):
            text = self.reply(self.tokenizer.decode(p), self.calls)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][: params.max_new_tokens]
            reason = "length"
            if self.stop and len(ids) < params.max_new_tokens:
                ids = ids + [self.tokenizer.eos_token_id]
                reason = "stop"
            out.append(Completion(text, token_ids=ids, logprobs=[-0.25] * len(ids), finish_reason=reason, index=i,
                                  prompt_ids=list(p)))
        return out


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


GUESS = EnvConfig("rlvr/GuessNumber-v0", kwargs={"difficulty": 1})


def _runs(mask):
    runs = []
    for m in mask:
        if runs and runs[-1][0] == m:
            runs[-1][1] += 1
        else:
            runs.append([m, 1])
    return runs


def test_multi_turn_episode_is_the_chat_transcript_with_environment_tokens_masked(tok):
    runner = EnvRunner([GUESS], ChatFormatter(tok), ScriptedBackend(tok, lambda prompt, call: str(call)),
                       max_new_tokens=8, max_completion_length=400, max_turns=10)
    [ep] = runner.run([TaskKey(0, GUESS.id, 7)], SamplingParams(max_new_tokens=8))
    runner.close()
    assert ep.turns >= 2 and ep.done
    # The token sequence IS the chat template's rendering of the conversation up to the last model
    # turn (what the environment says after the final step is never seen by the model).
    last = max(i for i, m in enumerate(ep.messages) if m["role"] == "assistant")
    rendered = tok.apply_chat_template(ep.messages[: last + 1], tokenize=True, return_dict=False)
    seq = ep.prompt_ids + ep.completion_ids
    assert rendered[: len(seq)] == seq
    assert tok.decode(rendered[len(seq):]) == "\n"  # only the template's newline after the last turn end
    # Model tokens are exactly the assistant messages (+ their end-of-turn token); the rest is masked.
    assistant = [m["content"] for m in ep.messages if m["role"] == "assistant"]
    model_runs, env_runs, pos = [], [], 0
    for value, n in _runs(ep.env_mask):
        (model_runs if value else env_runs).append(ep.completion_ids[pos : pos + n])
        pos += n
    assert [tok.decode(r, skip_special_tokens=True) for r in model_runs] == assistant
    assert all(r[-1] == tok.eos_token_id for r in model_runs)
    env_text = "".join(tok.decode(r) for r in env_runs)
    feedback = [m["content"] for m in ep.messages[2:last] if m["role"] != "assistant"]
    assert feedback and all(f in env_text for f in feedback)
    # Log-probs line up with the completion: the sampler's on model tokens, 0 on environment tokens.
    assert len(ep.logprobs) == len(ep.completion_ids) == len(ep.env_mask)
    assert {lp for lp, m in zip(ep.logprobs, ep.env_mask) if m} == {-0.25}
    assert {lp for lp, m in zip(ep.logprobs, ep.env_mask) if not m} == {0.0}


def test_solved_episode_reports_success_and_reward_components(tok):
    env = gymnasium.make(GUESS.id, **GUESS.kwargs)
    _, info = env.reset(seed=3)
    secret = info["task"]["reference"]
    runner = EnvRunner([GUESS], ChatFormatter(tok), ScriptedBackend(tok, lambda prompt, call: secret),
                       max_new_tokens=8, max_completion_length=200)
    [ep] = runner.run([TaskKey(0, GUESS.id, 3)], SamplingParams(max_new_tokens=8))
    runner.close()
    assert ep.success and ep.status == "ok" and ep.turns == 1
    assert set(ep.components) == {"solved", "efficiency"}
    assert ep.reward == pytest.approx(sum(0.5 * v for v in ep.components.values()))


def test_token_budget_ends_the_episode_without_a_stop_token(tok):
    runner = EnvRunner([GUESS], ChatFormatter(tok), ScriptedBackend(tok, lambda prompt, call: "0"),
                       max_new_tokens=8, max_completion_length=30)
    [ep] = runner.run([TaskKey(0, GUESS.id, 11)], SamplingParams(max_new_tokens=8))
    runner.close()
    assert ep.overlong and ep.truncated and not ep.success
    assert len(ep.completion_ids) == 30
    assert ep.completion_ids[-1] != tok.eos_token_id  # how the trainer recognises an overlong episode


def test_turn_cut_by_length_still_reaches_the_environment(tok):
    # A 4-token turn limit cuts "123456"; the environment still judges the cut text (an invalid guess).
    runner = EnvRunner([GUESS], ChatFormatter(tok), ScriptedBackend(tok, lambda prompt, call: "123456", stop=False),
                       max_new_tokens=4, max_completion_length=200, max_turns=2)
    [ep] = runner.run([TaskKey(0, GUESS.id, 5)], SamplingParams(max_new_tokens=4))
    runner.close()
    assert [m["content"] for m in ep.messages if m["role"] == "assistant"] == ["1234", "1234"]
    assert ep.turns == 2 and ep.truncated


class _Exploding(gymnasium.Env):
    """A third-party style environment (no async twins) that fails on one particular message."""

    observation_space = gymnasium.spaces.Text(100)
    action_space = gymnasium.spaces.Text(100)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return [{"role": "user", "content": "say something"}], {"task_id": f"t{seed}"}

    def step(self, action):
        if "boom" in action:
            raise RuntimeError("environment bug")
        return [], 1.0, True, False, {"success": True}


def test_an_environment_failing_on_model_output_scores_zero_and_the_batch_goes_on(tok):
    gymnasium.register("testpkg/Exploding-v0", entry_point=_Exploding, disable_env_checker=True)
    entry = EnvConfig("testpkg/Exploding-v0")
    replies = iter(["boom", "fine"])
    runner = EnvRunner([entry], ChatFormatter(tok), ScriptedBackend(tok, lambda prompt, call: next(replies)),
                       max_new_tokens=8, max_completion_length=50)
    eps = runner.run([TaskKey(0, entry.id, 1), TaskKey(0, entry.id, 2)], SamplingParams(max_new_tokens=8))
    runner.close()
    assert eps[0].status == "error" and eps[0].reward == 0.0 and not eps[0].success
    assert eps[1].success and eps[1].reward == 1.0


def test_task_keys_round_trip_and_follow_the_mixture_weights():
    entries = [EnvConfig("rlvr/Arithmetic-v0", weight=3.0), EnvConfig("rlvr/Countdown-v0", weight=1.0)]
    keys = draw_keys(entries, 4000, seed=0, base=0)
    assert all(TaskKey.parse(str(k)) == k for k in keys[:50])
    share = Counter(k.env for k in keys)[0] / len(keys)
    assert 0.72 < share < 0.78
    assert len({k.seed for k in keys}) == len(keys)
    # Same seed -> same keys; held-out keys never share a seed with training keys.
    assert draw_keys(entries, 100, seed=0, base=0) == keys[:100]
    held = heldout_keys(entries, 100, seed=0)
    assert not {k.seed for k in held} & {k.seed for k in train_keys(entries, 4000, seed=0)}


def test_training_keys_skip_tasks_that_are_in_the_held_out_set():
    entries = [EnvConfig("rlvr/Arithmetic-v0", kwargs={"difficulty": 1, "system_prompt": ""})]
    env = gymnasium.make(entries[0].id, **entries[0].kwargs)

    def fingerprint(key):
        obs, _ = env.reset(seed=key.seed)
        return obs[-1]["content"]

    held = {fingerprint(k) for k in heldout_keys(entries, 40, seed=0)}
    keys = train_keys(entries, 300, seed=0, exclude=held, fingerprint=fingerprint)
    assert len(keys) == 300
    assert not {fingerprint(k) for k in keys} & held


def test_continuous_refill_plays_the_same_greedy_episodes_as_batched_rounds(tok):
    from rlvr.trainer.rollout.backends import make_backend
    from rlvr.trainer.tiny import TinyModelConfig, tiny_model

    model = tiny_model(tok, TinyModelConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=1024, seed=3))
    engine = make_backend("engine", model, tok, max_batch=4, max_seq_len=1024)

    class RoundsOnly:  # the same engine without its session: the runner falls back to batched rounds
        name = "rounds"

        def generate(self, prompts, params):
            return engine.generate(prompts, params)

    keys = [TaskKey(0, GUESS.id, s) for s in (1, 2, 3, 4, 5)]
    greedy = SamplingParams(max_new_tokens=6, temperature=0.0)
    played = {}
    for name, backend in (("interleaved", engine), ("rounds", RoundsOnly())):
        runner = EnvRunner([GUESS], ChatFormatter(tok), backend, max_new_tokens=6, max_completion_length=200, max_turns=4)
        played[name] = runner.run(keys, greedy)
        runner.close()
    for a, b in zip(played["interleaved"], played["rounds"]):
        assert a.completion_ids == b.completion_ids and a.env_mask == b.env_mask
        assert a.messages == b.messages and a.reward == b.reward
    assert any(ep.turns > 1 for ep in played["interleaved"])


class _DerivedMultiTurnEnv(rlvr.envs.TextEnv):
    """A multi-turn environment that never sets ``multi_turn``: only its ``max_turns`` says so."""

    def __init__(self, max_turns: int = 3) -> None:
        from rlvr.envs import Component, ListSource, Rubric

        super().__init__(ListSource([{"prompt": "say anything", "answer": "x"}]),
                         Rubric([Component("said", 1.0)]), max_turns=max_turns)

    def respond(self, action: str):
        from rlvr.envs import Turn

        return Turn(reply=[{"role": "user", "content": "again"}], rewards={"said": 1.0}, done=self._turns >= 2)


class _SessionUsed(Exception):
    pass


class _SessionRecorder(ScriptedBackend):
    """A scripted backend with an engine ``session``: records whether the runner opened it."""

    def __init__(self, tokenizer) -> None:
        super().__init__(tokenizer, lambda prompt, call: "hello")
        self.sessions = 0

    def session(self, longest):
        self.sessions += 1
        raise _SessionUsed


def test_a_multi_turn_env_known_only_from_its_max_turns_gets_the_interleaved_path(tok):
    from rlvr.envs import register_env
    from rlvr.trainer.rollout.runner import is_multi_turn

    for turns in (1, 3):
        env_id = f"test/DerivedMultiTurn{turns}-v0"
        if env_id not in gymnasium.registry:
            register_env(env_id, _DerivedMultiTurnEnv, kwargs={"max_turns": turns})
    assert "multi_turn" not in _DerivedMultiTurnEnv.__dict__
    assert is_multi_turn(gymnasium.make("test/DerivedMultiTurn3-v0"))
    assert not is_multi_turn(gymnasium.make("test/DerivedMultiTurn1-v0"))

    multi = _SessionRecorder(tok)
    runner = EnvRunner([EnvConfig("test/DerivedMultiTurn3-v0")], ChatFormatter(tok), multi, max_new_tokens=4,
                       max_completion_length=100, max_turns=3)
    with pytest.raises(_SessionUsed):
        runner.run([TaskKey(0, "test/DerivedMultiTurn3-v0", 0)], SamplingParams(max_new_tokens=4))
    runner.close()
    assert multi.sessions == 1

    single = _SessionRecorder(tok)  # a single-turn env plays in batched rounds, no engine session
    runner = EnvRunner([EnvConfig("test/DerivedMultiTurn1-v0")], ChatFormatter(tok), single, max_new_tokens=4,
                       max_completion_length=100, max_turns=1)
    [episode] = runner.run([TaskKey(0, "test/DerivedMultiTurn1-v0", 0)], SamplingParams(max_new_tokens=4))
    runner.close()
    assert single.sessions == 0 and episode.turns == 1
