"""Registry: built-ins via gymnasium.make, entry-point plugins (good and broken), "did you mean"."""

from __future__ import annotations

import sys
import textwrap

import gymnasium
import pytest

import rlvr.envs as E
from rlvr.envs.registry import PluginError, broken_plugins, discover_plugins, env_record
from rlvr.errors import ConfigError

PLUGIN_MODULE = '''
import gymnasium
from rlvr.envs import Component, ListSource, SingleTurnEnv

TASKS = [{"prompt": "Say yes.", "answer": "yes"}, {"prompt": "Say no.", "answer": "no"}]


class GoodEnv(SingleTurnEnv):
    """A fake plugin env for the registry tests."""

    description = "fake good plugin"

    def __init__(self, render_mode=None, **kw):
        super().__init__(ListSource(TASKS, name="fake"), [Component("correct", 1.0, "string")], render_mode=render_mode, **kw)


def make_env(**kw):
    return GoodEnv(**kw)


def not_an_env(**kw):
    return "surprise"
'''

ENTRY_POINTS = """
[rlvr.envs]
fake/Good-v0 = fake_plugin_mod:GoodEnv
fake/Factory-v0 = fake_plugin_mod:make_env
fake/Missing-v0 = fake_missing_module_xyz:Env
fake/NotEnv-v0 = fake_plugin_mod:not_an_env
not an id = fake_plugin_mod:GoodEnv
rlvr/Math-v0 = fake_plugin_mod:GoodEnv
"""


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    (tmp_path / "fake_plugin_mod.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    dist = tmp_path / "fake_plugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    discover_plugins(refresh=True)
    yield
    monkeypatch.undo()
    sys.modules.pop("fake_plugin_mod", None)
    discover_plugins(refresh=True)


def test_every_builtin_is_made_by_gymnasium_make():
    for env_id in [i for i in E.env_ids() if env_record(i).origin in ("builtin", "plugin")]:
        env = gymnasium.make(env_id)
        obs, info = env.reset(seed=0)
        assert obs in env.observation_space and info["env_id"] == env_id


def test_gymnasium_make_passes_keyword_arguments_through():
    env = gymnasium.make("rlvr/Arithmetic-v0", difficulty=7, seed=11)
    _, info = env.reset(seed=0)
    assert info["task"]["metadata"]["difficulty"] == 7 and info["task"]["metadata"]["seed"] == 11


def test_a_mistyped_id_gets_did_you_mean():
    with pytest.raises(ConfigError, match="did you mean 'rlvr/Countdown-v0'"):
        E.make("rlvr/Countdwn-v0")
    with pytest.raises(ConfigError, match="did you mean 'rlvr/Math-v0'"):
        E.resolve_env_id("rlvr/math-v0")
    with pytest.raises(gymnasium.error.NameNotFound, match="Did you mean"):
        gymnasium.make("rlvr/Arithmetc-v0")


def test_a_plugin_entry_point_is_made_without_importing_it_by_hand(fake_plugins):
    assert "fake_plugin_mod" not in sys.modules  # registered lazily
    env = gymnasium.make("fake/Good-v0")
    assert E.check(env).ok
    assert isinstance(gymnasium.make("fake/Factory-v0").unwrapped, E.TextEnv)
    info = E.describe("fake/Good-v0")
    assert (info.origin, info.package, info.description, info.kind) == ("plugin", "fake-plugins 0.1", "fake good plugin", "single-turn")


def test_a_plugin_that_fails_to_import_is_reported_and_breaks_nothing_else(fake_plugins):
    info = E.describe("fake/Missing-v0")
    assert "failed to import" in info.error and "fake_missing_module_xyz" in info.error
    with pytest.raises(PluginError, match="fake-plugins 0.1"):
        gymnasium.make("fake/Missing-v0")
    with pytest.raises(PluginError, match="not a gymnasium.Env"):
        gymnasium.make("fake/NotEnv-v0")
    assert gymnasium.make("fake/Good-v0").reset(seed=0)[1]["env_id"] == "fake/Good-v0"
    assert gymnasium.make("rlvr/Arithmetic-v0").reset(seed=0)[1]["env_id"] == "rlvr/Arithmetic-v0"


def test_malformed_and_clashing_entry_points_are_listed_with_the_reason(fake_plugins):
    broken = broken_plugins()
    assert "is not an environment id" in broken["not an id"]
    assert "already registered" in broken["rlvr/Math-v0 [fake-plugins 0.1]"]
    assert env_record("rlvr/Math-v0").origin == "builtin"  # a plugin cannot hijack a built-in id
    assert "not an id" in E.env_ids(include_broken=True) and "not an id" not in E.env_ids()


def test_refresh_forgets_uninstalled_plugins(fake_plugins, monkeypatch):
    assert "fake/Good-v0" in E.env_ids()
    monkeypatch.undo()
    discover_plugins(refresh=True)
    assert "fake/Good-v0" not in E.env_ids() and "fake/Good-v0" not in gymnasium.registry


def test_envs_list_cli_shows_plugins_and_broken_ones_with_the_reason(fake_plugins):
    import json

    from typer.testing import CliRunner

    from rlvr.cli.main import app

    result = CliRunner().invoke(app, ["envs", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.output)}
    assert rows["fake/Good-v0"]["error"] == "" and rows["fake/Good-v0"]["origin"] == "plugin"
    assert "failed to import" in rows["fake/Missing-v0"]["error"]
    assert "not an environment id" in rows["not an id"]["error"]
    assert rows["rlvr/Math-v0"]["error"] == "" and rows["rlvr/Math-v0"]["origin"] == "builtin"
    assert "already registered" in rows["rlvr/Math-v0 [fake-plugins 0.1]"]["error"]
    table = CliRunner().invoke(app, ["envs", "list"], terminal_width=250)
    assert "broken" in table.output and "fake/Missing-v0" in table.output
