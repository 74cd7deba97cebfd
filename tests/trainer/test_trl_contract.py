"""The TRL internals rlvr.trainer.trl relies on, checked against the installed TRL.

Every private method we override or call, every private attribute we read, and every module
internal we import is listed in ``rlvr.trainer.trl``'s docstring; this file pins each one, so a
TRL upgrade that moves any of them fails here, by name, instead of deep inside a training run.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

pytest.importorskip("trl")
pytestmark = pytest.mark.train

from trl import GRPOTrainer  # noqa: E402

import rlvr.trainer.trl as glue  # noqa: E402
from rlvr.trainer.trl.trainer import RLVRTrainer  # noqa: E402

# name -> the parameters (after self) TRL 1.16 declares; our overrides are called with exactly these.
OVERRIDDEN = {
    "_generate_single_turn": ["prompt_ids", "images", "multimodal_fields", "num_generations", "has_tool_images"],
    "_get_per_token_logps_and_entropies": ["model", "input_ids", "attention_mask", "logits_to_keep", "batch_size",
                                           "compute_entropy", "compute_aux_loss"],
    "_generate_and_score_completions": ["inputs"],
    "_calculate_rewards": ["inputs", "prompts", "completions", "completion_ids_list"],
    "_prepare_inputs": ["generation_batch"],
    "_compute_loss": ["model", "inputs"],
    "_save_checkpoint": ["model", "trial"],
    "_load_optimizer_and_scheduler": ["checkpoint"],
}
CALLED = {"_remove_unused_columns": ["dataset", "description"], "_get_output_dir": ["trial"]}
ATTRIBUTES = ["_step", "_buffered_inputs", "_metrics", "_logs", "_tokenizer", "_dist"]
MODULE_INTERNALS = [
    ("trl.trainer.grpo_trainer", "create_model_from_path"),
    ("trl.trainer.utils", "shuffle_sequence_dict"),
    ("trl.trainer.utils", "split_tensor_dict"),
    ("trl.trainer.utils", "split_pixel_values_by_grid"),
    ("trl.trainer.utils", "unsplit_pixel_values_by_grid"),
    ("trl.kernels", "ChunkedLogProbFunction"),
    ("trl.models", "unwrap_model_for_generation"),
    ("trl.generation.vllm_client", "VLLMClient"),
    ("trl.import_utils", "is_vllm_available"),
]


def _params(fn) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]


@pytest.mark.parametrize("name", sorted(OVERRIDDEN))
def test_every_overridden_grpo_method_keeps_its_signature(name):
    assert name in GRPOTrainer.__dict__, f"GRPOTrainer no longer defines {name}: our override is never called"
    theirs = _params(GRPOTrainer.__dict__[name])
    assert theirs[: len(OVERRIDDEN[name])] == OVERRIDDEN[name], f"{name}{inspect.signature(GRPOTrainer.__dict__[name])}"
    # our override is actually the one RLVRTrainer resolves to
    assert getattr(RLVRTrainer, name) is not getattr(GRPOTrainer, name)


@pytest.mark.parametrize("name", sorted(CALLED))
def test_every_private_trainer_method_we_call_exists_with_our_arguments(name):
    assert _params(getattr(GRPOTrainer, name))[: len(CALLED[name])] == CALLED[name]


@pytest.mark.parametrize("name", ATTRIBUTES)
def test_every_private_attribute_we_read_is_still_set_by_grpo_trainer(name):
    assert f"self.{name} =" in inspect.getsource(GRPOTrainer), f"GRPOTrainer no longer sets self.{name}"


@pytest.mark.parametrize(("module", "attr"), MODULE_INTERNALS)
def test_every_trl_internal_we_import_is_there(module, attr):
    assert hasattr(importlib.import_module(module), attr), f"{module}.{attr} is gone"


def test_the_package_docstring_lists_everything_checked_here():
    doc = glue.__doc__
    for name in [*OVERRIDDEN, *CALLED, *ATTRIBUTES, *(a for _, a in MODULE_INTERNALS)]:
        assert name in doc, f"{name} is checked here but not listed in rlvr.trainer.trl's docstring"


def test_installed_trl_is_the_pinned_version():
    import trl

    assert trl.__version__ == "1.16.0", "the list above was made against TRL 1.16.0; re-check it and update the pin"
