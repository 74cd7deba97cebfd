"""`rlvr envs list|show|check` through the real CLI app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rlvr.cli.main import app

runner = CliRunner()


def test_envs_list_json_has_every_builtin_with_kind_and_components():
    result = runner.invoke(app, ["envs", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.output)}
    assert {"rlvr/Math-v0", "rlvr/Arithmetic-v0", "rlvr/Countdown-v0", "rlvr/LinearEquation-v0", "rlvr/GuessNumber-v0"} <= set(rows)
    math = rows["rlvr/Math-v0"]
    assert math["kind"] == "single-turn" and math["description"]
    assert {c["name"]: c["weight"] for c in math["components"]} == {"correct": 1.0, "format": 0.1}
    assert rows["rlvr/GuessNumber-v0"]["kind"] == "multi-turn"
    assert all(not r["error"] for r in rows.values())


def test_envs_list_table_shows_ids_and_descriptions():
    result = runner.invoke(app, ["envs", "list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "rlvr/Countdown-v0" in result.output and "single-turn" in result.output


def test_envs_show_prints_components_and_a_sample_task():
    result = runner.invoke(app, ["envs", "show", "rlvr/Arithmetic-v0", "-E", "difficulty=3", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["sample"]["messages"][-1]["role"] == "user"
    assert "arithmetic/d3" in info["sample"]["task_id"]
    text = runner.invoke(app, ["envs", "show", "rlvr/GuessNumber-v0"], terminal_width=200).output
    assert "efficiency" in text and "multi-turn" in text


def test_envs_show_a_mistyped_id_exits_2_with_did_you_mean():
    from click.testing import Result

    result: Result = runner.invoke(app, ["envs", "show", "rlvr/Arithmetik-v0"])
    assert result.exit_code != 0
    assert "did you mean 'rlvr/Arithmetic-v0'" in str(result.exception)


def test_envs_check_reports_each_check():
    result = runner.invoke(app, ["envs", "check", "rlvr/LetterCounting-v0", "--seeds", "0,1"])
    assert result.exit_code == 0, result.output
    assert "ok    reference answer earns full reward" in result.output
    assert "FAIL" not in result.output
