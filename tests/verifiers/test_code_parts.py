"""Code verifier parts that need no sandbox: program extraction, test specs, comparators, the harness codec and test plan."""

import json
import math

import pytest

from rlvr.errors import ConfigError
from rlvr.verifiers import CodeVerifier, get_verifier
from rlvr.verifiers import code_harness as H
from rlvr.verifiers.code import render_detail
from rlvr.verifiers.code_extract import extract_program
from rlvr.verifiers.code_tests import SpecError, TestResult, compare_exact, compare_floats, compare_tokens, parse_compare, parse_spec

# ----------------------------------------------------------------------------- extraction


def test_the_last_block_in_the_wanted_language_is_the_program():
    text = "Draft:\n```python\nprint(1)\n```\nBetter:\n```py\nprint(2)\n```\nA shell aside:\n```bash\necho 3\n```\n"
    got = extract_program(text, "python")
    assert got.program == "print(2)\n" and got.how == "fence:py"
    assert extract_program(text, "bash").program == "echo 3\n"


@pytest.mark.parametrize(
    "language,tag",
    [("cpp", "cpp"), ("cpp", "c++"), ("cpp", "C++"), ("c", "c"), ("javascript", "js"), ("javascript", "node"), ("bash", "sh"), ("python", "Python3"), ("python", "{.python}")],
)
def test_fence_tags_models_write_select_their_language(language, tag):
    text = f"Here you go:\n```{tag}\nbody\n```\n"
    assert extract_program(text, language).program == "body\n"


def test_an_untagged_block_is_used_when_no_block_names_the_language():
    text = "```\nx = 1\n```\nand\n```java\nclass A {}\n```"
    assert extract_program(text, "python").program == "x = 1\n"


def test_blocks_in_other_languages_only_are_no_program():
    got = extract_program("```java\nclass A {}\n```", "python")
    assert got.program is None and "```python" in got.how and "java" in got.how


def test_raw_text_is_the_program_only_without_any_fence_and_when_allowed():
    assert extract_program("print(input())\n", "python").program == "print(input())"
    assert extract_program("print(input())\n", "python", raw=False).program is None
    assert extract_program("   \n", "python").program is None


def test_an_unclosed_fence_runs_to_the_end_and_reasoning_before_think_end_is_ignored():
    assert extract_program("```python\ndef f():\n    return 1", "python").program == "def f():\n    return 1\n"
    text = "<think>maybe\n```python\nprint('draft')\n```\n</think>\nFinal:\n```python\nprint('final')\n```"
    assert extract_program(text, "python").program == "print('final')\n"


def test_longer_and_tilde_fences_and_indented_fences():
    assert extract_program("````python\nprint('```')\n````", "python").program == "print('```')\n"
    assert extract_program("~~~python\nprint(1)\n~~~", "python").program == "print(1)\n"
    assert extract_program("1. Step\n   ```python\n   x = 1\n   y = 2\n   ```", "python").program == "x = 1\ny = 2\n"


def test_an_empty_block_is_no_program():
    assert extract_program("```python\n\n```", "python").program is None


# ----------------------------------------------------------------------------- comparators


def test_exact_compares_lines_ignoring_only_trailing_whitespace():
    assert compare_exact("1 2\n3\n", "1 2   \n3")
    assert compare_exact("a\r\nb\r\n", "a\nb\n\n\n")
    assert not compare_exact("1 2\n", "1  2\n")
    assert not compare_exact("1\n2\n", "1 2\n")


def test_tokens_ignores_all_whitespace_layout():
    assert compare_tokens("1 2\n3\n", "1\n2    3")
    assert not compare_tokens("1 2 3", "1 2")
    assert not compare_tokens("Yes", "yes")


def test_float_tolerance_applies_to_numbers_only():
    assert compare_floats("0.333333", "0.3333334", 1e-6)
    assert compare_floats("1e9 x", "1000000000.5 x", 1e-6)  # relative
    assert not compare_floats("0.5", "0.51", 1e-6)
    assert not compare_floats("x 1.0", "y 1.0", 1e-6)
    assert not compare_floats("1.0", "1_000", 1e-6) and not compare_floats("1", "abc", 1e-6)
    assert compare_floats("nan", "NaN", 1e-6) and not compare_floats("nan", "0", 1e-6)
    assert parse_compare("float:1e-3")("1.0", "1.0009") and not parse_compare("float:1e-3")("1.0", "1.1")
    assert parse_compare("float").name == "float:1e-06"


@pytest.mark.parametrize("bad", ["fuzzy", "float:abc", "float:-1", "tokens:3", 5])
def test_unknown_comparisons_are_spec_errors(bad):
    with pytest.raises(SpecError):
        parse_compare(bad)


# ----------------------------------------------------------------------------- specs


def test_specs_parse_from_objects_and_json_text():
    io = parse_spec({"kind": "io", "cases": [{"stdin": "1", "stdout": "2"}, {"stdout": "3"}], "compare": "exact", "time_limit_s": 2})
    assert io.kind == "io" and io.cases[1].stdin == "" and io.compare.name == "exact" and io.time_limit_s == 2.0
    spec = {"kind": "assert", "test": "def check(candidate):\n    assert candidate(1) == 2\n    x = 3\n    for i in range(3):\n        assert candidate(i) == i + 1\n", "entry_point": "inc"}
    a = parse_spec(json.dumps(spec))
    assert a.kind == "assert" and a.labels == ("assert candidate(1) == 2", "for i in range(3): ...")


@pytest.mark.parametrize(
    "spec,reason",
    [
        (None, "object"),
        ("not json", "JSON"),
        ({"kind": "unit"}, "unknown test kind"),
        ({"kind": "io"}, "cases"),
        ({"kind": "io", "cases": []}, "cases"),
        ({"kind": "io", "cases": ["1 2"]}, "case 1"),
        ({"kind": "io", "cases": [{"stdin": "1"}]}, "stdout"),
        ({"kind": "io", "cases": [{"stdin": 1, "stdout": "1"}]}, "stdin"),
        ({"kind": "io", "cases": [{"input": "1", "stdout": "1"}]}, "unknown field"),
        ({"kind": "io", "cases": [{"stdout": "1"}], "compare": "approx"}, "compare"),
        ({"kind": "io", "cases": [{"stdout": "1"}], "compare": ["tokens"]}, "compare"),
        ({"kind": ["io"], "cases": [{"stdout": "1"}]}, "unknown test kind"),
        ({"kind": "io", "cases": [{"stdout": "1"}], "time_limit_s": -1}, "time_limit_s"),
        ({"kind": "io", "cases": [{"stdout": "1"}], "timeout": 3}, "unknown field"),
        ({"kind": "assert", "entry_point": "f"}, "test"),
        ({"kind": "assert", "test": "def check(candidate):\n    assert candidate(1) ==\n", "entry_point": "f"}, "not valid Python"),
        ({"kind": "assert", "test": "def check(candidate):\n    assert candidate(1) == 1\n"}, "entry_point"),
        ({"kind": "assert", "test": "x = 1\n", "entry_point": "f"}, "no check"),
        ({"kind": "assert", "test": "def check():\n    assert True\n", "entry_point": "f"}, "argument"),
        ({"kind": "assert", "test": "assert f(1) == 1", "entry_point": "not a name"}, "entry_point"),
    ],
)
def test_malformed_specs_say_what_is_wrong(spec, reason):
    with pytest.raises(SpecError, match=reason):
        parse_spec(spec)


def test_mbpp_style_top_level_asserts_are_the_tests():
    a = parse_spec({"kind": "assert", "test": "import math\nassert f(1) == 2\nassert math.isclose(f(2), 3)\n", "entry_point": "f"})
    assert a.labels == ("assert f(1) == 2", "assert math.isclose(f(2), 3)")
    assert a.plan["free_names"] == ["f"] and a.plan["has_check"] is False


def test_a_check_without_any_assert_is_one_test():
    a = parse_spec({"kind": "assert", "test": "def check(candidate):\n    helper(candidate)\n\ndef helper(c):\n    assert c() == 1\n", "entry_point": "f"})
    assert a.labels == ("check(f)",)


# ----------------------------------------------------------------------------- harness codec


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -5, 10**400, 1.5, -0.0, float("inf"), "héllo\n\"'\\", "\udcff", b"\x00\xff", bytearray(b"ab"), 3 + 4j,
     [1, [2, (3, "x")]], (1,), {"a": 1, 2: [3], (4, 5): None}, {1, 2}, frozenset({"a"}), [], {}, ()],
)
def test_plain_data_crosses_unchanged_with_exact_types(value):
    back = H.decode(json.loads(H.encode(value)))
    assert back == value and type(back) is type(value)


def test_nan_crosses_as_nan():
    assert math.isnan(H.decode(json.loads(H.encode(float("nan")))))


@pytest.mark.parametrize(
    "value",
    [object(), type("MyInt", (int,), {})(3), type("MyStr", (str,), {})("x"), type("MyList", (list,), {})(), [print], {"k": lambda: 1}],
)
def test_anything_but_exact_builtin_data_is_refused(value):
    with pytest.raises(H.Unsupported):
        H.encode(value)


def test_too_deep_nesting_is_refused():
    v: list = []
    for _ in range(H.MAX_DEPTH + 5):
        v = [v]
    with pytest.raises(H.Unsupported):
        H.encode(v)


@pytest.mark.parametrize("obj", ["plain", {"a": 1}, ["?", 1], ["u", 5], ["d", 1], ["c", "x", 1], [], ["b", "zz"]])
def test_the_tester_refuses_malformed_answers(obj):
    with pytest.raises(ValueError):
        H.decode(obj)


def test_records_carry_a_mac_only_the_key_holder_can_make():
    key = b"k" * 32
    line = H.record_line(key, {"t": 0, "v": "pass"}).strip()
    mac, body = line[len(H.RECORD_PREFIX):].split(" ", 1)
    assert mac == H.mac(key, body.encode()) and mac != H.mac(b"x" * 32, body.encode())


# ----------------------------------------------------------------------------- options and detail


def test_code_is_registered_and_bad_options_are_config_errors():
    v = get_verifier("code", reward_mode="fraction", language="c++")
    assert isinstance(v, CodeVerifier) and v.language == "cpp" and v.reference_key == "tests"
    for kwargs, field in [
        ({"language": "cobol"}, "language"),
        ({"reward_mode": "half"}, "reward_mode"),
        ({"compare": "approx"}, "compare"),
        ({"backend": "vm"}, "backend"),
        ({"workers": 0}, "workers"),
        ({"timeout": 0}, "timeout"),
        ({"time_limit_s": -1}, "time_limit_s"),
        ({"limits": {"memory": 5}}, "memory"),
        ({"stop_at_first_failure": "yes"}, "stop_at_first_failure"),
    ]:
        with pytest.raises(ConfigError, match=field):
            CodeVerifier(**kwargs)


def test_detail_lists_failures_first_groups_repeats_and_ranges_passes():
    results = [TestResult(0, "pass"), TestResult(1, "wrong", "stdin '1', expected '2', got '3'"), TestResult(2, "pass"), TestResult(3, "pass"),
               TestResult(4, "timeout", "time limit 1s exceeded"), TestResult(5, "not_run", "stopped"), TestResult(6, "not_run", "stopped")]
    text = render_detail(results, "io", "tokens")
    assert text.splitlines() == [
        "passed 3/7 cases (compare: tokens)",
        "case 2: wrong answer: stdin '1', expected '2', got '3'",
        "case 5: timeout: time limit 1s exceeded",
        "cases 6-7: not run: stopped",
        "passed: cases 1, 3-4",
    ]


@pytest.mark.parametrize("text,language", [
    ("I don't know how to solve this.", "python"),
    ("Hello", "python"),
    ("42", "python"),
    ("The answer is: use a loop over the list.", "python"),
    ("Use two nested loops and print the sum.", "c"),
    ("Read the numbers and print the largest one.", "cpp"),
    ("Sort the array, then take the middle element.", "javascript"),
])
def test_prose_without_a_code_block_is_no_program(text, language):
    got = extract_program(text, language)
    assert got.program is None and f"not a {language} program" in got.how


@pytest.mark.parametrize("text,language", [
    ("x = int(input())\nprint(x * 2)", "python"),
    ("def f(a):\n    return a", "python"),
    ("#include <stdio.h>\nint main(void) { puts(\"hi\"); }", "c"),
    ("int main() { return 0; }", "cpp"),
    ("console.log(1)", "javascript"),
])
def test_a_fenceless_program_is_still_the_program(text, language):
    assert extract_program(text, language).program == text


def test_a_code_completion_without_a_program_scores_no_answer_not_wrong():
    v = CodeVerifier()
    s = v.score("Sorry, I can't write this program.", {"kind": "io", "cases": [{"stdin": "", "stdout": "1\n"}]})
    assert s.status == "no_answer" and s.reward == 0.0 and "not a python program" in s.detail
