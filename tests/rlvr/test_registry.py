"""The one Registry every extension point uses, and the shared validators."""

from __future__ import annotations

import math

import pytest

from rlvr.errors import ConfigError
from rlvr.registry import Registry, close_names, did_you_mean, load_attr
from rlvr.validate import int_in_range, non_negative_int, one_of, positive_int, positive_number, probability


def test_register_as_decorator_and_get():
    reg: Registry[type] = Registry("widget")

    @reg.register("round")
    class Round:
        pass

    assert reg.get("round") is Round and reg["round"] is Round
    assert "round" in reg and reg.names() == ["round"] and len(reg) == 1


def test_unknown_name_names_the_field_suggests_and_lists():
    reg: Registry[int] = Registry("widget", field="shape")
    reg.register("round", 1)
    reg.register("square", 2)
    with pytest.raises(ConfigError) as err:
        reg.get("sqaure")
    assert err.value.field == "shape"
    assert "did you mean 'square'?" in str(err.value) and "known widgets: round, square" in str(err.value)
    with pytest.raises(ConfigError, match="known widgets: round, square"):
        reg.get("zzz")


def test_case_and_dash_differences_are_suggested_exactly():
    assert did_you_mean("Math", ["math", "code"]) == "math"
    assert did_you_mean("dr-grpo", ["dr_grpo", "grpo"]) == "dr_grpo"
    assert close_names("gpro", ["grpo", "gspo", "dapo"]) == ["grpo"]  # a transposition beats near neighbours


def test_a_different_object_under_a_taken_name_is_refused():
    reg: Registry[object] = Registry("widget")
    first = object()
    reg.register("a", first)
    reg.register("a", first)  # the same object again (a module imported twice) is harmless
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a", object())
    other = object()
    reg.register("a", other, replace=True)
    assert reg.get("a") is other


def test_lazy_module_attr_entries_import_on_first_get():
    reg: Registry[object] = Registry("thing")
    reg.register("sqrt", "math:sqrt")
    assert reg.get("sqrt") is math.sqrt
    reg.register("missing", "rlvr_no_such_module_xyz:thing")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        reg.get("missing")


def test_load_attr_rejects_malformed_targets():
    with pytest.raises(ConfigError, match="module:attr"):
        load_attr("no_colon")
    assert load_attr("os.path:join") is __import__("os").path.join


def test_package_scan_finds_a_registered_module_without_an_import_line():
    # the sandbox backends and verifiers registries import their folder on first use
    from rlvr.sandbox.backends import BACKENDS
    from rlvr.verifiers.registry import VERIFIERS

    assert {"bwrap", "docker", "local"} <= set(BACKENDS.names())
    assert {"math", "code", "string", "format", "composite"} <= set(VERIFIERS.names())


def test_every_room_registry_shares_the_wording():
    from rlvr.envs.generators import get_generator
    from rlvr.sandbox.backends import backend_class
    from rlvr.sandbox.languages import get_language
    from rlvr.verifiers import get_verifier

    for call, bad in ((get_verifier, "mathh"), (backend_class, "bwarp"), (get_language, "pyhton"),
                      (get_generator, "arithmetc")):
        with pytest.raises(ConfigError, match="did you mean"):
            call(bad)


@pytest.mark.parametrize("fn,good,bad", [
    (positive_int, 3, [0, -1, 1.5, True, "3", None]),
    (non_negative_int, 0, [-1, 0.0, False]),
    (positive_number, 0.5, [0, -1, math.inf, math.nan, "1", True]),
    (probability, 1.0, [-0.1, 1.1, math.nan, None]),
])
def test_validators_accept_good_and_name_the_field_on_bad(fn, good, bad):
    assert fn("knob", good) == good
    for value in bad:
        with pytest.raises(ConfigError) as err:
            fn("knob", value)
        assert err.value.field == "knob" and repr(value) in str(err.value)


def test_range_and_choice_validators():
    assert int_in_range("n", 5, 1, 10) == 5
    with pytest.raises(ConfigError, match=r"\[1, 10\]"):
        int_in_range("n", 11, 1, 10)
    assert one_of("mode", "fast", ("fast", "slow")) == "fast"
    with pytest.raises(ConfigError, match="did you mean 'slow'"):
        one_of("mode", "slwo", ("fast", "slow"))
