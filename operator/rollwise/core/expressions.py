"""The expressions a spec writes for a metric: CEL conditions over ``result`` (threshold
metrics) and JSONPath selectors (web providers), compiled once per process and bounded in
what evaluating them may cost. Pure: the compiled programs only ever see one number or one
parsed answer.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rollwise.core.spec import MAX_CONDITION_LENGTH, MAX_JSON_PATH_LENGTH

# --------------------------------------------------------------------------------------------
# CEL conditions


class ConditionError(ValueError):
    """A success/failure condition does not compile or does not yield a bool."""


@lru_cache(maxsize=1)
def _cel() -> Any:
    """The CEL environment, built on first use: building its parser takes a tenth of a second
    or more, which a process that never evaluates a condition (the plugin showing a Rollout)
    need not pay."""
    import celpy  # noqa: PLC0415 - deferred: see the docstring

    return celpy.Environment()


#: Most syntax-tree nodes a condition may have (``result < 0.05`` has 20, a range check with
#: ``&&`` about 34). Together with :data:`FORBIDDEN_CEL_CALLS` it bounds what evaluating a
#: condition can cost: every node is evaluated at most once.
MAX_CONDITION_NODES = 200

#: CEL calls a condition may not make: comprehensions (``all``, ``exists``, ... nest into
#: loops whose cost multiplies) and regular expressions (``matches``: backtracking). A
#: condition judges one number and needs none of them.
FORBIDDEN_CEL_CALLS = frozenset({"all", "exists", "exists_one", "map", "filter", "matches"})


def _bounded(tree: Any) -> str | None:
    """Why a compiled condition could cost too much to evaluate (None when it cannot)."""
    nodes = 0
    for subtree in tree.iter_subtrees():
        nodes += 1
        if subtree.data in ("member_dot_arg", "ident_arg"):
            for child in subtree.children:
                if getattr(child, "type", None) == "IDENT" and str(child) in FORBIDDEN_CEL_CALLS:
                    return f"{child}() is not allowed in a condition (it may cost too much)"
    if nodes > MAX_CONDITION_NODES:
        return f"too complex: {nodes} syntax nodes, at most {MAX_CONDITION_NODES}"
    return None


@lru_cache(maxsize=512)
def _program(expression: str) -> Any:
    """The compiled CEL program for ``expression``, compiled once per process; refused when it
    is too long or could cost too much to evaluate (see :func:`_bounded`)."""
    if len(expression) > MAX_CONDITION_LENGTH:
        raise ConditionError(
            f"too long: {len(expression)} characters, at most {MAX_CONDITION_LENGTH}"
        )
    try:
        tree = _cel().compile(expression)
    except Exception as exc:  # celpy raises its own parse error types
        raise ConditionError(f"does not compile: {_first_line(exc)}") from exc
    problem = _bounded(tree)
    if problem is not None:
        raise ConditionError(problem)
    try:
        return _cel().program(tree)
    except Exception as exc:
        raise ConditionError(f"does not compile: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def evaluate_condition(expression: str, result: float) -> bool:
    """``expression`` evaluated with ``result`` bound to a CEL double."""
    program = _program(expression)
    from celpy import celtypes  # noqa: PLC0415 - loaded by _program already

    try:
        value = program.evaluate({"result": celtypes.DoubleType(result)})
    except Exception as exc:  # CELEvalError and friends: reported as a verdict, not raised
        raise ConditionError(f"evaluation failed: {_first_line(exc)}") from exc
    if not isinstance(value, celtypes.BoolType):
        raise ConditionError(f"yields {type(value).__name__}, not a bool")
    return bool(value)


def check_condition(expression: str) -> str | None:
    """Why ``expression`` is unusable as a condition (compiled and tried on ``result = 1.0``),
    or None when it is fine."""
    try:
        evaluate_condition(expression, 1.0)
    except ConditionError as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------------------------
# JSONPath (web providers)


@lru_cache(maxsize=512)
def compile_json_path(expression: str) -> Any:
    """The parsed JSONPath ``expression`` (``jsonpath_ng``'s extended dialect: filters and
    arithmetic), parsed once per process; raises ``ValueError`` when it does not parse."""
    from jsonpath_ng.ext.parser import parse  # noqa: PLC0415 - deferred, like CEL's parser

    try:
        return parse(expression)
    except Exception as exc:  # the parser raises several error types of its own
        raise ValueError(_first_line(exc)) from exc


def check_json_path(expression: str) -> str | None:
    """Why ``expression`` is unusable as a web provider's jsonPath, or None."""
    if len(expression) > MAX_JSON_PATH_LENGTH:
        return f"too long: {len(expression)} characters, at most {MAX_JSON_PATH_LENGTH}"
    try:
        compile_json_path(expression)
    except ValueError as exc:
        return f"'{expression}' is not a JSONPath: {exc}"
    return None
