"""CodeVerifier end to end on the default sandbox backend: io and assert tests, rewards, failures, batches."""

import pickle

import pytest

from rlvr.verifiers import CodeVerifier


def _sandbox_ready() -> bool:
    try:
        from rlvr.sandbox import default_backend

        default_backend()
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _sandbox_ready(), reason="no sandbox backend works here")

SUM_IO = {"kind": "io", "cases": [{"stdin": "1 2\n", "stdout": "3\n"}, {"stdin": "10 -4\n", "stdout": "6\n"}, {"stdin": "0 0\n", "stdout": "0\n"}]}
ADD = {"kind": "assert", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n    assert candidate(2, 2) == 4\n", "entry_point": "add"}


def py(src: str) -> str:
    return f"Here is my solution.\n```python\n{src}\n```\n"


@pytest.fixture(scope="module")
def verifier():
    v = CodeVerifier(time_limit_s=2)
    yield v
    v.close()


@pytest.fixture(scope="module")
def fraction():
    v = CodeVerifier(time_limit_s=2, reward_mode="fraction")
    yield v
    v.close()


def test_io_solution_passes_and_detail_counts_cases(verifier):
    s = verifier.score(py("a, b = map(int, input().split())\nprint(a + b)"), SUM_IO)
    assert (s.status, s.reward, s.correct) == ("ok", 1.0, True)
    assert s.detail.startswith("passed 3/3 cases") and "print(a + b)" in s.parsed


def test_io_compare_modes(verifier):
    spaced = py("a, b = map(int, input().split())\nprint(' ', a + b, ' ')")
    exact = dict(SUM_IO, compare="exact")
    assert verifier.score(spaced, SUM_IO).correct is True  # tokens (the default)
    s = verifier.score(spaced, exact)
    assert s.correct is False and "expected '3\\n', got '  3  \\n'" in s.detail
    floats = {"kind": "io", "cases": [{"stdin": "1 3\n", "stdout": "0.333333\n"}], "compare": "float:1e-5"}
    assert verifier.score(py("a, b = map(int, input().split())\nprint(a / b)"), floats).correct is True
    assert verifier.score(py("print(0.34)"), floats).correct is False


def test_all_or_nothing_versus_fraction_passed(verifier, fraction):
    half_right = py("a, b = map(int, input().split())\nprint(a + b if a < 5 else 0)")
    s = verifier.score(half_right, SUM_IO)
    assert (s.status, s.reward, s.correct) == ("wrong", 0.0, False)
    assert "case 2: wrong answer: stdin '10 -4\\n', expected '6\\n', got '0\\n'" in s.detail
    f = fraction.score(half_right, SUM_IO)
    assert f.status == "wrong" and f.reward == pytest.approx(2 / 3) and f.correct is False
    g = fraction.score(py("def add(a, b):\n    return a + b if a > 0 else 7"), ADD)
    assert g.reward == pytest.approx(2 / 3) and "test 2 `assert candidate(-1, 1) == 0`: failed: add(-1, 1) returned 7" in g.detail


def test_assert_style_solution_passes_and_failures_show_the_call(verifier):
    assert verifier.score(py("def add(a, b):\n    return a + b"), ADD).status == "ok"
    s = verifier.score(py("def add(a, b):\n    return a * b"), ADD)
    assert s.status == "wrong" and "passed 1/3 tests" in s.detail and "add(1, 2) returned 2" in s.detail


def test_candidate_exceptions_reach_the_tests_as_exceptions(verifier):
    spec = {"kind": "assert", "entry_point": "root",
            "test": "def check(candidate):\n    assert candidate(4) == 2\n    try:\n        candidate(-1)\n        assert False, 'no error'\n    except ValueError:\n        pass\n"}
    good = py("def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return int(x ** 0.5)")
    assert verifier.score(good, spec).status == "ok"
    s = verifier.score(py("def root(x):\n    return int(abs(x) ** 0.5)"), spec)
    assert s.status == "wrong" and "no error" in s.detail


def test_mbpp_style_asserts_and_helpers_the_tests_call_by_name(verifier):
    mbpp = {"kind": "assert", "test": "assert is_even(2)\nassert not is_even(3)\nassert is_even(0) is True\n", "entry_point": "is_even"}
    assert verifier.score(py("def is_even(n):\n    return n % 2 == 0"), mbpp).status == "ok"
    # HumanEval/32 style: the test also calls a helper the prompt (so the program) defines
    helper = {"kind": "assert", "entry_point": "find_zero",
              "test": "def check(candidate):\n    x = candidate([-2, 1])\n    assert abs(poly([-2, 1], x)) < 1e-6\n"}
    prog = py("def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\ndef find_zero(xs):\n    return -xs[0] / xs[1]")
    assert verifier.score(prog, helper).status == "ok"


def test_stop_at_first_failure_runs_no_more_tests():
    v = CodeVerifier(time_limit_s=2, stop_at_first_failure=True)
    try:
        s = v.score(py("print(3)"), SUM_IO)
        assert s.status == "wrong" and "cases 2-3: not run" not in s.detail
        assert "case 3: not run: stopped at the first failure" in s.detail and "case 2: wrong answer" in s.detail
        a = v.score(py("def add(a, b):\n    return 3"), ADD)
        assert "test 2 `assert candidate(-1, 1) == 0`: failed" in a.detail and "test 3" in a.detail and "not run" in a.detail
    finally:
        v.close()


def test_cpp_io_solution_compiles_once_and_passes():
    v = CodeVerifier(language="cpp", time_limit_s=2)
    try:
        src = "```cpp\n#include <cstdio>\nint main(){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);}\n```"
        s = v.score(src, SUM_IO)
        assert s.status == "ok", s.detail
        assert v.sandbox.compile_cache.misses == 1 and v.sandbox.compile_cache.hits >= 2
        broken = v.score("```cpp\nint main( {\n```", SUM_IO)
        assert broken.status == "wrong" and "cases 1-3: error: compile error" in broken.detail
    finally:
        v.close()


def test_a_row_language_overrides_the_verifier_language(verifier):
    s = verifier.score("```bash\nread a b\necho $((a + b))\n```", SUM_IO, language="bash")
    assert s.status == "ok", s.detail
    assert verifier.score(py("print(1)"), ADD, language="cpp").status == "error"
    assert verifier.score(py("print(1)"), SUM_IO, language="cobol").status == "error"


def test_syntax_errors_and_crashes_are_wrong_with_the_reason(verifier):
    s = verifier.score(py("def add(a, b)\n    return a + b"), ADD)
    assert (s.status, s.correct) == ("wrong", False) and "tests 1-3: error: the program failed to load: SyntaxError" in s.detail
    r = verifier.score(py("print(1 +)"), SUM_IO)
    assert r.status == "wrong" and "runtime error (exit code 1)" in r.detail and "SyntaxError" in r.detail
    m = verifier.score(py("def add(a, b):\n    return a + b"), dict(ADD, entry_point="plus"))
    assert m.status == "wrong" and "no function named 'plus'" in m.detail


def test_infinite_loops_time_out_per_test_and_the_batch_goes_on():
    v = CodeVerifier(time_limit_s=1)
    try:
        rows = [
            {"completion": py("def add(a, b):\n    while a < 0:\n        pass\n    return a + b"), "tests": ADD},
            {"completion": py("a, b = map(int, input().split())\nwhile b < 0:\n    pass\nprint(a + b)"), "tests": SUM_IO},
            {"completion": py("def add(a, b):\n    return a + b"), "tests": ADD},
            {"completion": py("while True:\n    pass"), "tests": ADD},
        ]
        looping_test, looping_case, fine, looping_load = v.score_many(rows)
        assert looping_test.status == "timeout" and looping_test.correct is False
        assert "test 2 `assert candidate(-1, 1) == 0`: timeout: add(-1, 1) did not return within 1s" in looping_test.detail
        assert "passed: tests 1, 3" in looping_test.detail  # the tests after the timeout still ran
        assert looping_case.status == "timeout" and "case 2: timeout" in looping_case.detail and "passed: cases 1, 3" in looping_case.detail
        assert fine.status == "ok"
        assert looping_load.status == "timeout" and "did not finish loading" in looping_load.detail
    finally:
        v.close()


def test_no_program_and_malformed_rows_never_raise(verifier):
    rows = [
        {"completion": "I don't know.\n```java\nclass A {}\n```", "tests": ADD},
        {"completion": py("print(1)"), "tests": {"kind": "io", "cases": []}},
        {"completion": py("print(1)"), "tests": "{not json"},
        {"completion": py("print(1)")},
        {"completion": 5, "tests": ADD},
        "not a row",
    ]
    scores = verifier.score_many(rows)
    assert [s.status for s in scores] == ["no_answer", "error", "error", "error", "error", "error"]
    assert "bad test spec" in scores[1].detail and "cases" in scores[1].detail


def test_reward_function_reads_the_tests_column(verifier):
    f = verifier.as_reward_func()
    assert f.__name__ == "code"
    completions = [[{"role": "assistant", "content": py("def add(a, b):\n    return a + b")}], [{"role": "assistant", "content": py("def add(a, b):\n    return 0")}], "no code", py("print(1)")]
    rewards = f(prompts=["p"] * 4, completions=completions, tests=[ADD, ADD, ADD, {"kind": "?"}])
    assert rewards == [1.0, 0.0, 0.0, None]


def test_fifty_items_are_scored_concurrently_in_order(verifier):
    rows, want = [], []
    for i in range(50):
        k = i % 5
        if k == 0:
            rows.append({"completion": py("def add(a, b):\n    return a + b"), "tests": ADD}); want.append("ok")
        elif k == 1:
            rows.append({"completion": py(f"def add(a, b):\n    return a + b + {i}"), "tests": ADD}); want.append("wrong")
        elif k == 2:
            rows.append({"completion": py("a, b = map(int, input().split())\nprint(a + b)"), "tests": SUM_IO}); want.append("ok")
        elif k == 3:
            rows.append({"completion": py(f"print({i})"), "tests": SUM_IO}); want.append("wrong")
        else:
            rows.append({"completion": "no program", "tests": {"kind": "io"}}); want.append("error")
    seen = []
    scores = verifier.score_many(rows, workers=4, on_result=lambda i, s: seen.append(i))
    assert [s.status for s in scores] == want
    assert sorted(seen) == list(range(50))
    assert all(str(i) in s.detail for i, s in enumerate(scores) if i % 5 == 1)  # each row got its own result


def test_judge_many_gives_json_ready_per_test_results(verifier):
    report = verifier.judge_many([{"completion": py("print(3)"), "tests": SUM_IO}])[0]
    d = report.to_dict()
    assert d["kind"] == "io" and [t["verdict"] for t in d["tests"]] == ["pass", "wrong", "wrong"]
    assert d["tests"][1]["label"] == "stdin '10 -4\\n'" and d["score"]["status"] == "wrong"


def test_a_forked_child_scores_with_its_own_sandbox(verifier):
    import os

    assert verifier.score(py("def add(a, b):\n    return a + b"), ADD).status == "ok"  # the parent's sandbox is up
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(w, verifier.score(py("def add(a, b):\n    return a + b"), ADD).status.encode())
            verifier.close()  # the child's own sandbox; the parent's is left alone
        finally:
            os._exit(0)
    os.close(w)
    status = os.read(r, 100).decode()
    os.waitpid(pid, 0)
    os.close(r)
    assert status == "ok"
    assert verifier.score(py("def add(a, b):\n    return a + b"), ADD).status == "ok"  # the parent's still works


def test_the_verifier_pickles_without_its_sandbox(verifier):
    verifier.sandbox  # started
    clone = pickle.loads(pickle.dumps(verifier))
    assert "_sandbox_obj" not in clone.__dict__ and clone.language == "python"
    assert clone.score(py("def add(a, b):\n    return a + b"), ADD).status == "ok"
    clone.close()
