"""score()/score_many() give the same results wherever they are called from, each case a real
subprocess: a script without a main guard, ``python -``, ``python -c``, a notebook-like kernel, a
thread and an asyncio loop.

The rows need the isolated sympy path (``\\pi/2`` vs ``1.5707963`` is decided by math-verify in a
worker), where multiprocessing's forkserver would otherwise re-run an unguarded ``__main__``.

Jupyter: ipykernel is not installed here, so the notebook case reproduces what matters about a
kernel: code is compiled from a string and executed in a fresh ``__main__`` module object that
has no ``__file__`` and no ``__spec__`` (what ipykernel installs), including a verifier subclass
defined in that cell, which workers can only get by fork.
"""

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

CODE = textwrap.dedent(
    r'''
    import json
    from rlvr.verifiers import MathVerifier

    ROWS = [
        {"completion": "so \\boxed{\\pi/2}", "answer": "1.5707963"},
        {"completion": "so \\boxed{\\sin^2 x + \\cos^2 x}", "answer": "1"},
        {"completion": "so \\boxed{\\log_2 8}", "answer": "4"},
        {"completion": "so \\boxed{7}", "answer": "7"},
    ]

    def run(verifier_class=MathVerifier):
        v = verifier_class(timeout=60)
        try:
            many = [s.status for s in v.score_many(ROWS, workers=2)]
            one = v.score(ROWS[0]["completion"], ROWS[0]["answer"]).status
        finally:
            v.close()
        return many + [one]
    '''
)
EXPECTED = ["ok", "ok", "wrong", "ok", "ok"]

DRIVERS = {
    "plain": "print('RESULT', json.dumps(run()))",
    "thread": textwrap.dedent(
        """
        import threading
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", run()))
        t.start(); t.join()
        print('RESULT', json.dumps(out["r"]))
        """
    ),
    "asyncio": textwrap.dedent(
        """
        import asyncio
        async def main():
            direct = run()
            in_thread = await asyncio.to_thread(run)
            assert direct == in_thread, (direct, in_thread)
            return direct
        print('RESULT', json.dumps(asyncio.run(main())))
        """
    ),
    "subclass": textwrap.dedent(
        """
        class MyMath(MathVerifier):
            '''Defined in __main__ itself: workers must get the class from this process.'''
        print('RESULT', json.dumps(run(MyMath)))
        """
    ),
}

NOTEBOOK_KERNEL = (
    "import sys, types; cell = open(sys.argv[1]).read(); main = types.ModuleType('__main__'); "
    "main.__dict__['__builtins__'] = __builtins__; sys.modules['__main__'] = main; "
    "exec(compile(cell, '<ipython-input-1>', 'exec'), main.__dict__)"
)


def _run(how: str, source: str, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "user_script.py"
    path.write_text(source)
    if how == "script":
        cmd, stdin = [sys.executable, str(path)], None
    elif how == "stdin":
        cmd, stdin = [sys.executable, "-"], source
    elif how == "dash_c":
        cmd, stdin = [sys.executable, "-c", source], None
    else:  # notebook
        cmd, stdin = [sys.executable, "-c", NOTEBOOK_KERNEL, str(path)], None
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def _result(r: subprocess.CompletedProcess) -> list:
    assert r.returncode == 0, r.stderr[-3000:]
    assert "bootstrapping phase" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, r.stdout  # the script body ran once: workers never re-ran it
    return json.loads(lines[0][len("RESULT ") :])


@pytest.mark.parametrize(
    "how,driver",
    [("script", "plain"), ("stdin", "plain"), ("dash_c", "plain"), ("notebook", "plain"), ("notebook", "subclass"),
     ("script", "subclass"), ("script", "thread"), ("script", "asyncio")],
)
def test_same_scores_from_anywhere(tmp_path, how, driver):
    assert _result(_run(how, CODE + DRIVERS[driver], tmp_path)) == EXPECTED


def test_a_guarded_script_defining_its_own_verifier_still_works(tmp_path):
    source = CODE + "class MyMath(MathVerifier):\n    pass\n\nif __name__ == '__main__':\n    print('RESULT', json.dumps(run(MyMath)))\n"
    assert _result(_run("script", source, tmp_path)) == EXPECTED
