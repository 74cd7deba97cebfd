"""The train config: YAML in, every wrong name or value rejected at once with the field and the fix."""

from __future__ import annotations

import textwrap

import pytest

from rlvr.errors import ConfigError, InputError
from rlvr.trainer.run.config import TrainConfig, config_from_dict, load_config, parse_env_flag

ENV = [{"id": "rlvr/Arithmetic-v0"}]


def _cfg(**sections):
    return config_from_dict({"environments": ENV, **sections})


def test_yaml_config_loads_with_defaults_filled_in(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent("""
        output_dir: runs/x
        environments:
          - {id: rlvr/Arithmetic-v0, weight: 3, kwargs: {difficulty: 2}}
          - {id: rlvr/Countdown-v0}
        algorithm: {preset: dapo, overrides: {clip_eps_high: 0.3}}
        optim: {learning_rate: 1e-5, max_steps: 7}
    """))
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig)
    assert [e.id for e in cfg.environments] == ["rlvr/Arithmetic-v0", "rlvr/Countdown-v0"]
    assert cfg.environments[0].weight == 3.0 and cfg.environments[0].kwargs == {"difficulty": 2}
    assert cfg.optim.learning_rate == 1e-5  # YAML reads "1e-5" as a string; the loader makes it a number
    assert cfg.generation.num_generations == 8  # default


def test_unknown_field_names_the_field_and_suggests_the_right_one():
    with pytest.raises(ConfigError) as e:
        _cfg(optim={"learnig_rate": 1e-5})
    assert e.value.field == "optim.learnig_rate"
    assert "did you mean 'learning_rate'" in str(e.value)
    assert "max_steps" in str(e.value)  # the allowed names are listed


def test_unknown_section_is_rejected():
    with pytest.raises(ConfigError, match="did you mean 'generation'"):
        config_from_dict({"environments": ENV, "generaton": {}})


def test_a_value_outside_the_choices_lists_the_allowed_values():
    with pytest.raises(ConfigError) as e:
        _cfg(generation={"backend": "vlm"})
    assert e.value.field == "generation.backend"
    assert "auto" in str(e.value) and "engine" in str(e.value) and "hf" in str(e.value)


@pytest.mark.parametrize("section, value, field", [
    ({"optim": {"max_steps": "ten"}}, None, "optim.max_steps"),
    ({"optim": {"max_steps": 0}}, None, "optim.max_steps"),
    ({"generation": {"num_generations": 1}}, None, "generation.num_generations"),
    ({"generation": {"temperature": 0}}, None, "generation.temperature"),
    ({"eval": {"greedy": "yes"}}, None, "eval.greedy"),
    ({"generation": {"max_new_tokens": 600, "max_completion_length": 100}}, None, "generation.max_new_tokens"),
    ({"checkpoint": {"save_steps": 3}, "optim": {"num_iterations": 2}}, None, "checkpoint.save_steps"),
    ({"sft": {"stop_at_success": 1.5}}, None, "sft.stop_at_success"),
    ({"sft": {"check_every": 0}}, None, "sft.check_every"),
])
def test_bad_values_fail_naming_the_field(section, value, field):
    with pytest.raises(ConfigError) as e:
        _cfg(**section)
    assert e.value.field == field


def test_environment_entries_are_checked():
    with pytest.raises(ConfigError, match="environments"):
        config_from_dict({})
    with pytest.raises(ConfigError) as e:
        config_from_dict({"environments": [{"id": "rlvr/Arithmetic-v0", "weigth": 2}]})
    assert e.value.field == "environments[0].weigth"
    with pytest.raises(ConfigError) as e:
        config_from_dict({"environments": [{"id": "rlvr/Arithmetic-v0", "weight": -1}]})
    assert e.value.field == "environments[0].weight"


def test_env_flag_parses_ids_and_weights():
    assert parse_env_flag("rlvr/Math-v0") == [{"id": "rlvr/Math-v0", "weight": 1.0}]
    assert parse_env_flag("rlvr/Math-v0:3,rlvr/Code-v0:1") == [
        {"id": "rlvr/Math-v0", "weight": 3.0}, {"id": "rlvr/Code-v0", "weight": 1.0}]
    with pytest.raises(ConfigError, match="--env"):
        parse_env_flag("rlvr/Math-v0:lots")


def test_missing_or_broken_yaml_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("environments: [\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(bad)


def test_dotted_overrides_replace_config_values(tmp_path):
    cfg = config_from_dict({"environments": ENV}, {"optim.max_steps": 3, "algorithm.preset": "rloo", "seed": 5})
    assert (cfg.optim.max_steps, cfg.algorithm.preset, cfg.seed) == (3, "rloo", 5)


@pytest.mark.train
def test_unknown_preset_and_override_are_caught_before_any_model_loads():
    from rlvr.trainer.run.config import check_algorithm

    with pytest.raises(ConfigError) as e:
        check_algorithm(_cfg(algorithm={"preset": "grpoo"}))
    assert e.value.field == "algorithm.preset" and "did you mean 'grpo'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        check_algorithm(_cfg(algorithm={"preset": "dapo", "overrides": {"clip_eps_hgh": 0.3}}))
    assert "clip_eps_hgh" in e.value.field and "clip_eps_high" in str(e.value)


def test_unknown_environment_id_suggests_registered_ones():
    from rlvr.trainer.run.config import check_environments

    with pytest.raises(ConfigError) as e:
        check_environments(config_from_dict({"environments": [{"id": "rlvr/Arithmetc-v0"}]}))
    assert e.value.field == "environments[0].id"
    assert "rlvr/Arithmetic-v0" in str(e.value)


def test_cli_train_rejects_a_bad_config_before_training(tmp_path):
    from typer.testing import CliRunner

    from rlvr.cli.main import app

    path = tmp_path / "c.yaml"
    path.write_text("environments: [{id: rlvr/Arithmetic-v0}]\noptim: {max_step: 3}\n")
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError) and result.exception.field == "optim.max_step"


EXAMPLES = sorted((__import__("pathlib").Path(__file__).resolve().parents[2] / "examples").glob("train_*.yaml"))


@pytest.mark.train
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_config_is_valid(path):
    from rlvr.trainer.run.config import check_algorithm, check_environments

    cfg = load_config(path)
    check_algorithm(cfg)
    check_environments(cfg)


def test_examples_exist_for_the_user_stories():
    names = {p.stem for p in EXAMPLES}
    assert {"train_arithmetic_cpu", "train_guess_number", "train_mixture_dapo", "train_multi_gpu"} <= names
    accel = {p.name for p in (EXAMPLES[0].parent / "accelerate").glob("*.yaml")}
    assert {"deepspeed_zero2.yaml", "deepspeed_zero3.yaml", "fsdp.yaml", "multi_cpu.yaml"} <= accel


def test_the_cpu_arithmetic_example_is_the_demo_as_a_config():
    from rlvr.trainer.demo import demo_config

    example = load_config(EXAMPLES[0].parent / "train_arithmetic_cpu.yaml").to_dict()
    demo = demo_config(example["output_dir"], example["seed"], example["device"]).to_dict()
    assert example == demo
