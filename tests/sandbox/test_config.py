"""Configuration objects: Limits, Program, languages and backends fail early with clear errors."""

import pytest

from rlvr.errors import ConfigError
from rlvr.sandbox import Limits, Program, default_backend, get_language, language_names, probe_backends
from rlvr.sandbox.backends import backend_class, backend_names


def test_limits_defaults_are_valid_and_every_field_has_help():
    lim = Limits()
    assert lim.time_limit_s > 0 and lim.memory_mb >= 16
    assert all(text for text in Limits.describe().values())


@pytest.mark.parametrize(
    "field,value",
    [("time_limit_s", 0), ("time_limit_s", -1), ("time_limit_s", float("nan")), ("memory_mb", 8),
     ("memory_mb", 1.5), ("max_processes", 0), ("max_output_bytes", True), ("cpus", 0), ("stack_mb", 4096)],
)
def test_bad_limit_names_the_field(field, value):
    with pytest.raises(ConfigError) as e:
        Limits(**{field: value})
    assert e.value.field == f"limits.{field}"


def test_limits_replace_rejects_unknown_names():
    with pytest.raises(ConfigError, match="time_limit"):
        Limits().replace(time_limt_s=3)
    assert Limits().replace(time_limit_s=3).time_limit_s == 3


def test_cpu_seconds_round_up_and_default_to_wall_time():
    assert Limits(time_limit_s=2.2).cpu_seconds == 3
    assert Limits(time_limit_s=5, cpu_time_s=0.5).cpu_seconds == 1


def test_program_resolves_aliases_and_encodes_stdin():
    p = Program("py", "print(1)", stdin="é")
    assert p.language == "python" and p.stdin == "é".encode()


def test_unknown_language_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'python'"):
        Program("pyton", "print(1)")


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", "", "main.py"])
def test_program_files_must_stay_inside_the_work_dir(path):
    with pytest.raises(ConfigError):
        Program("python", "print(1)", files={path: "x"})


def test_every_language_names_its_commands():
    for name in language_names():
        lang = get_language(name)
        assert lang.run and lang.source_file
        assert bool(lang.compile) == bool(lang.artifact)


def test_unknown_backend_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'bwrap'"):
        backend_class("bwarp")


def test_probe_backends_reports_every_backend_with_a_detail():
    rows = probe_backends()
    assert [r[0] for r in rows] == backend_names()
    for name, ok, detail in rows:
        assert isinstance(ok, bool) and isinstance(detail, str) and detail


def test_default_backend_is_the_strongest_available():
    available = [name for name, ok, _ in probe_backends() if ok]
    assert default_backend() == available[0]
