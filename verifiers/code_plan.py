"""The test plan: split assert-style test code into numbered tests the harness reports one by one.

Runs on the host (``ast.unparse``); the harness receives the instrumented source and never
parses test code itself, so the sandboxed tester imports nothing heavy.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

from rlvr.verifiers.code_harness import HOOK_BEGIN, HOOK_END, HOOK_EXC

TEST_NODES = (ast.Assert, ast.Raise)


def _contains_test_node(node: ast.AST) -> bool:
    """Does this statement hold an assert/raise outside nested function or class definitions?"""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, TEST_NODES):
            return True
        for child in ast.iter_child_nodes(n):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.append(child)
    return False


def plan_tests(source: str, entry_point: str | None = None) -> dict[str, Any]:
    """Number the tests in ``source``; returns what the harness runs.

    With a ``check`` function, each top-level statement of its body that contains an assert
    or raise is one test (a whole ``for`` loop of asserts is one); if none does, the whole
    ``check(candidate)`` call is one test. Without ``check`` (MBPP style), each top-level
    statement with an assert is a test, and the program's functions are called by name.
    Each test statement ``S`` becomes::

        if __rlvr_begin(k):
            try: S
            except BaseException as __rlvr_e: __rlvr_end(k, __rlvr_e)
            else: __rlvr_end(k, None)

    Returns ``{"code", "labels", "has_check", "free_names"}``; ValueError if unusable.
    """
    if not isinstance(source, str) or not source.strip():
        raise ValueError("'test' must be non-empty Python source")
    try:
        tree = ast.parse(source, "<tests>", "exec")
    except SyntaxError as e:
        raise ValueError("'test' is not valid Python: %s (line %s)" % (e.msg, e.lineno)) from None
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if checks:
        check = checks[-1]
        if not check.args.args and not check.args.vararg:
            raise ValueError("check() must take the candidate function as its argument")
        if entry_point is None:
            raise ValueError("'entry_point' (the name of the function under test) is required with check()")
        body = check.body
    else:
        body = tree.body
    picked = {i for i, stmt in enumerate(body) if _contains_test_node(stmt)}
    if not picked and not checks:
        raise ValueError("'test' defines no check(candidate) function and has no assert statements")
    free = _free_names(tree)
    labels = []
    if not picked:
        labels.append("check(%s)" % entry_point)
        body[:] = [_wrap(0, body)]
    else:
        new_body = []
        for i, stmt in enumerate(body):
            if i in picked:
                labels.append(_label(source, stmt))
                new_body.append(_wrap(len(labels) - 1, [stmt]))
            else:
                new_body.append(stmt)
        body[:] = new_body
    ast.fix_missing_locations(tree)
    code = ast.unparse(tree)
    compile(code, "<tests>", "exec", dont_inherit=True)  # what the tester will run must compile
    return {"code": code, "labels": labels, "has_check": bool(checks), "free_names": free}


def _label(source: str, stmt: ast.stmt) -> str:
    text = ast.get_source_segment(source, stmt) or type(stmt).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    label = lines[0] if lines else type(stmt).__name__
    if len(lines) > 1:
        label += " ..."
    return label if len(label) <= 160 else label[:157] + "..."


def _wrap(k: int, stmts: list[ast.stmt]) -> ast.If:
    def call(fn: str, *args: ast.expr) -> ast.Expr:
        return ast.Expr(ast.Call(ast.Name(fn, ast.Load()), list(args), []))

    handler = ast.ExceptHandler(ast.Name("BaseException", ast.Load()), HOOK_EXC, [call(HOOK_END, ast.Constant(k), ast.Name(HOOK_EXC, ast.Load()))])
    guarded = ast.Try(list(stmts), [handler], [call(HOOK_END, ast.Constant(k), ast.Constant(None))], [])
    return ast.If(ast.Call(ast.Name(HOOK_BEGIN, ast.Load()), [ast.Constant(k)], []), [guarded], [])


def _free_names(tree: ast.AST) -> list[str]:
    """Names the test code reads but never binds (a program's helpers it calls, e.g. ``poly``)."""
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return sorted(read - bound - set(dir(builtins)))


__all__ = ["plan_tests"]
