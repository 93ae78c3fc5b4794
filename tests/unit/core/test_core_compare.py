"""The statistical judge of compare metrics: verdicts, numbers, confidence, and its error
rates over seeded draws."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rollwise.core import compare
from rollwise.core.compare import CompareResult, CompareRule, Direction, judge_metric
from rollwise.core.confidence import Confidence
from rollwise.core.runs import Verdict

INC, DEC, EITHER = Direction.INCREASE, Direction.DECREASE, Direction.EITHER
NAN, INF = float("nan"), float("inf")

#: Twenty distinct values around 100 (spread 1), and the same moved up or down.
BASE = [100.0 + 0.05 * i for i in range(20)]
UP_30 = [v * 1.3 for v in BASE]
DOWN_30 = [v * 0.7 for v in BASE]
UP_2 = [v * 1.02 for v in BASE]


def rule(**kwargs: Any) -> CompareRule:
    return CompareRule.model_validate(kwargs)


def judge(canary: list[float], control: list[float], **kwargs: Any) -> CompareResult:
    return judge_metric(canary, control, rule(**kwargs), metric="latency")


# ------------------------------------------------------------------------------ verdicts


@pytest.mark.parametrize(
    ("canary", "control", "kwargs", "verdict", "fragment"),
    [
        pytest.param(
            BASE[:9], BASE, {}, Verdict.INCONCLUSIVE, "fewer than minSamples 10", id="few-canary"
        ),
        pytest.param(
            BASE, BASE[:5], {}, Verdict.INCONCLUSIVE, "20 canary / 5 control", id="few-control"
        ),
        pytest.param(
            [*BASE[:8], NAN, INF],
            BASE,
            {},
            Verdict.INCONCLUSIVE,
            "2 non-finite dropped, fewer than minSamples",
            id="dropped-below-min-samples",
        ),
        pytest.param([], [], {}, Verdict.INCONCLUSIVE, "0 canary / 0 control", id="no-samples"),
        pytest.param(
            [0.2] * 20,
            [0.2] * 20,
            {},
            Verdict.PASS,
            "canary and control are all 0.200",
            id="identical-constants-pass",
        ),
        pytest.param(
            [2.0] * 20, [1.0] * 20, {}, Verdict.FAIL, "(+100.0%", id="different-constants-fail"
        ),
        pytest.param(UP_30, BASE, {}, Verdict.FAIL, "canary is worse", id="increase-bad-up"),
        pytest.param(DOWN_30, BASE, {}, Verdict.PASS, "(-30.0%", id="increase-bad-down-passes"),
        pytest.param(
            DOWN_30, BASE, {"direction": "decrease"}, Verdict.FAIL, "", id="decrease-down"
        ),
        pytest.param(UP_30, BASE, {"direction": "decrease"}, Verdict.PASS, "", id="decrease-up"),
        pytest.param(
            UP_30, BASE, {"direction": "either"}, Verdict.FAIL, "two-sided", id="either-up"
        ),
        pytest.param(DOWN_30, BASE, {"direction": "either"}, Verdict.FAIL, "", id="either-down"),
        pytest.param(
            UP_2,
            BASE,
            {},
            Verdict.PASS,
            "significant but within tolerance: pass",
            id="significant-within-tolerance",
        ),
        pytest.param(
            UP_2, BASE, {"tolerance": 0}, Verdict.FAIL, "tolerance 0%", id="zero-tolerance-fails"
        ),
        pytest.param(
            [float(i) for i in range(3, 23)],
            [float(i) for i in range(1, 21)],
            {},
            Verdict.PASS,
            "beyond tolerance but not significant: pass",
            id="breach-not-significant",
        ),
        pytest.param(
            [1.0] * 20,
            [0.0] * 15 + [1.0] * 5,
            {},
            Verdict.FAIL,
            "shift 1.000 over a zero control median",
            id="zero-control-median",
        ),
        pytest.param(
            [0.0] * 12 + [1.0] * 8,
            [0.0] * 15 + [1.0] * 5,
            {},
            Verdict.PASS,
            "canary mean 0.400 vs control 0.250 (medians pinned at 0.000) (+60.0%, tolerance "
            "10%), p = 0.163",
            id="zero-medians-pinned-weak-lean-passes",
        ),
        pytest.param(
            [1e308, 1.7e308] * 10,
            [-1e308, -1.7e308] * 10,
            {},
            Verdict.INCONCLUSIVE,
            "too large to compare",
            id="overflowing-samples",
        ),
    ],
)
def test_verdicts(
    canary: list[float],
    control: list[float],
    kwargs: dict[str, Any],
    verdict: Verdict,
    fragment: str,
) -> None:
    result = judge(canary, control, **kwargs)
    assert result.verdict is verdict, result.message
    assert fragment in result.message
    assert result.message.startswith("metric latency")


def test_inconclusive_has_no_numbers_and_counts_what_was_dropped() -> None:
    result = judge([*BASE[:8], NAN, INF, -INF], [NAN, *BASE])
    assert (result.canary_samples, result.control_samples) == (8, 20)
    assert (result.canary_dropped, result.control_dropped, result.dropped) == (3, 1, 4)
    assert result.p_value is None
    assert result.effect_size is None
    assert result.method == ""


def test_dropped_samples_do_not_count_but_the_rest_is_judged() -> None:
    result = judge([*UP_30, NAN, NAN], [*BASE, INF])
    assert result.verdict is Verdict.FAIL
    assert (result.canary_samples, result.canary_dropped, result.control_dropped) == (20, 2, 1)
    assert "3 non-finite dropped" in result.message


def test_identical_constant_arrays_give_p_one_and_no_nan() -> None:
    result = judge([5.0] * 30, [5.0] * 30)
    assert result.p_value == 1.0
    assert result.effect_size == 0.0
    assert result.shift == 0.0
    assert result.method == "identical"
    assert not result.breach


# ------------------------------------------------------------------ the numbers, exactly


def test_effect_size_is_the_relative_difference_of_medians() -> None:
    canary = [1.0, 2.0, 3.3, 9.0, 100.0] * 4
    control = [1.0, 2.0, 3.0, 4.0, 5.0] * 4
    result = judge(canary, control, tolerance=0.05)
    assert result.canary_median == 3.3
    assert result.control_median == 3.0
    assert result.shift == pytest.approx(0.3)
    assert result.effect_size == pytest.approx(0.1)
    assert result.breach  # 10% > 5%


# ------------------------------------------------ means when the medians tie (few events)

#: Error ratios over one request per sample: 0 (served) or 1 (failed).
ZEROS = [0.0] * 20


def failed(k: int, n: int = 20) -> list[float]:
    """``n`` one-request error-ratio samples, ``k`` of them failed."""
    return [1.0] * k + [0.0] * (n - k)


@pytest.mark.parametrize(
    ("canary", "control", "kwargs", "expected", "fragment"),
    [
        pytest.param(
            failed(6),
            ZEROS,
            {},
            ("mean", Verdict.FAIL),
            "canary mean 0.300 vs control 0.000 (medians pinned at 0.000)",
            id="tied-zero-medians-significant-fails-on-means",
        ),
        pytest.param(
            failed(4),
            ZEROS,
            {},
            ("mean", Verdict.INCONCLUSIVE),
            "p = 0.0199 >= 0.01 one-sided, 20 canary / 20 control samples: beyond tolerance on "
            "the means, not significant yet (inconclusive)",
            id="leaning-bad-not-significant-holds",
        ),
        pytest.param(
            failed(2),
            ZEROS,
            {},
            ("mean", Verdict.INCONCLUSIVE),
            "p = 0.0812",
            id="leaning-bad-below-ten-times-the-level-holds",
        ),
        pytest.param(
            failed(1),
            ZEROS,
            {},
            ("mean", Verdict.PASS),
            "p = 0.171 >= 0.01 one-sided, 20 canary / 20 control samples: beyond tolerance but "
            "not significant: pass",
            id="one-odd-sample-passes",
        ),
        pytest.param(
            failed(4),
            ZEROS,
            {"significance": 0.001},
            ("mean", Verdict.PASS),
            "p = 0.0199 >= 0.001",
            id="leaning-level-follows-significance",
        ),
        pytest.param(
            ZEROS,
            failed(3),
            {},
            ("mean", Verdict.PASS),
            "(-100.0%, tolerance 10%)",
            id="canary-better-on-means-passes",
        ),
        pytest.param(
            failed(1),
            [*failed(0, 19), 1.0],
            {},
            ("median", Verdict.PASS),
            "canary median 0.000 vs control 0.000 (+0.0%",
            id="equal-means-keep-the-median-basis",
        ),
        pytest.param(
            [0.1, 0.2, 0.2, 0.3, 0.4] * 4,
            [0.1, 0.2, 0.2, 0.2, 0.3] * 4,
            {},
            ("median", Verdict.PASS),
            "canary median 0.200 vs control 0.200 (+0.0%",
            id="medians-equal-by-chance-are-not-pinned",
        ),
        pytest.param(
            [1.0] * 14 + [0.0] * 6,
            [1.0] * 20,
            {"direction": "decrease"},
            ("mean", Verdict.FAIL),
            "canary mean 0.700 vs control 1.000 (medians pinned at 1.000) (-30.0%",
            id="success-ratio-tied-at-one-fails-downwards",
        ),
    ],
)
def test_pinned_medians_are_judged_on_the_means(
    canary: list[float],
    control: list[float],
    kwargs: dict[str, Any],
    expected: tuple[str, Verdict],
    fragment: str,
) -> None:
    basis, verdict = expected
    result = judge(canary, control, **kwargs)
    assert result.basis == basis
    assert result.verdict is verdict, result.message
    assert fragment in result.message
    assert result.unconfirmed is (verdict is Verdict.INCONCLUSIVE)
    assert (result.pinned is not None) is (basis == "mean")
    assert result.canary_mean == pytest.approx(statistics.fmean(canary))
    assert result.control_mean == pytest.approx(statistics.fmean(control))


def test_effect_on_the_means_is_relative_to_the_control_mean() -> None:
    control = [0.0] * 18 + [0.5, 0.5]  # mean 0.05, median 0
    result = judge(failed(6), control)
    assert (result.canary_median, result.control_median) == (0.0, 0.0)
    assert result.basis == "mean"
    assert result.shift == pytest.approx(0.25)
    assert result.effect_size == pytest.approx(5.0)  # (0.30 - 0.05) / 0.05
    assert result.breach


def test_medians_that_differ_keep_the_median_basis_and_pass_an_unconfirmed_breach() -> None:
    # The medians move 12% (beyond the 10% tolerance) on too few samples to be significant:
    # a noisy difference of continuous values passes at low confidence, as before.
    control = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9]
    canary = [v + 0.174 for v in control]
    result = judge(canary, control)
    assert result.basis == "median"
    assert result.breach
    assert result.verdict is Verdict.PASS, result.message
    assert not result.unconfirmed
    assert result.confidence is Confidence.LOW


def test_overflowing_means_keep_the_median_basis() -> None:
    huge = [1e308] * 10 + [0.0] * 11
    result = judge(huge, [*huge[:-1], 1e308])
    assert result.canary_mean is None
    assert result.basis == "median"


@pytest.mark.parametrize(
    ("direction", "canary", "breach"),
    [
        pytest.param(INC, 1.11, True, id="increase-beyond"),
        pytest.param(INC, 1.09, False, id="increase-within"),
        pytest.param(INC, 0.5, False, id="increase-better"),
        pytest.param(DEC, 0.89, True, id="decrease-beyond"),
        pytest.param(DEC, 0.91, False, id="decrease-within"),
        pytest.param(DEC, 2.0, False, id="decrease-better"),
        pytest.param(EITHER, 1.11, True, id="either-up"),
        pytest.param(EITHER, 0.89, True, id="either-down"),
        pytest.param(EITHER, 1.05, False, id="either-within"),
    ],
)
def test_breach_follows_direction_and_tolerance(
    direction: Direction, canary: float, breach: bool
) -> None:
    result = judge([canary] * 20, [1.0] * 20, direction=direction.value, tolerance=0.1)
    assert result.breach is breach


def test_exact_p_value_of_a_complete_separation() -> None:
    """Five canary samples all above five control ones: the exact one-sided p is 1/C(10, 5)."""
    result = judge([6.0, 7.0, 8.0, 9.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0], min_samples=5)
    assert result.method == "exact"
    assert result.p_value == pytest.approx(1 / math.comb(10, 5))
    assert result.verdict is Verdict.FAIL


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def test_ties_use_the_tie_corrected_normal_approximation_with_continuity() -> None:
    """Computed by hand: U of the canary, the tie-corrected variance, and z moved half a unit
    towards the mean (the continuity correction)."""
    canary = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0]
    control = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 4.0, 1.0, 2.0]
    n1, n2 = len(canary), len(control)
    u = sum(1.0 if c > k else 0.5 if c == k else 0.0 for c in canary for k in control)
    pooled = canary + control
    ties = sum(t**3 - t for t in (pooled.count(v) for v in set(pooled)))
    n = n1 + n2
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    expected = _normal_sf((u - n1 * n2 / 2 - 0.5) / sd)

    result = judge(canary, control, min_samples=10)
    assert result.method == "asymptotic"
    assert result.p_value == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("canary", "control", "method"),
    [
        pytest.param(BASE, [v + 0.01 for v in BASE], "exact", id="small-no-ties"),
        pytest.param(BASE, BASE, "asymptotic", id="ties"),
        pytest.param(
            [float(i) for i in range(51)],
            [i + 0.5 for i in range(51)],
            "asymptotic",
            id="above-exact-size",
        ),
        pytest.param([1.0] * 20, [1.0] * 20, "identical", id="all-equal"),
    ],
)
def test_test_method(canary: list[float], control: list[float], method: str) -> None:
    assert judge(canary, control).method == method


def test_a_nan_p_value_never_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        pvalue = NAN

    def broken(*args: Any, **kwargs: Any) -> Broken:
        return Broken()

    monkeypatch.setattr(compare, "mannwhitneyu", broken)
    result = judge(UP_30, BASE)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.p_value is None
    assert "undefined" in result.message


def test_message_states_the_numbers() -> None:
    result = judge(UP_30, BASE)
    assert result.message.startswith(
        "metric latency: canary median 130.618 vs control 100.475 (+30.0%, tolerance 10%), p = "
    )
    assert "< 0.01 one-sided, 20 canary / 20 control samples: canary is worse" in result.message


# ------------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param({"minSamples": 4}, id="min-samples-under-5"),
        pytest.param({"tolerance": -0.1}, id="negative-tolerance"),
        pytest.param({"tolerance": INF}, id="infinite-tolerance"),
        pytest.param({"significance": 0}, id="zero-significance"),
        pytest.param({"significance": 0.6}, id="significance-over-half"),
        pytest.param({"weight": 0}, id="zero-weight"),
        pytest.param({"direction": "up"}, id="unknown-direction"),
        pytest.param({"threshold": 1}, id="unknown-field"),
    ],
)
def test_rule_refuses(wire: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CompareRule.model_validate(wire)


def test_rule_defaults_and_wire_names() -> None:
    default = CompareRule()
    assert (default.direction, default.tolerance, default.significance) == (INC, 0.1, 0.01)
    assert (default.min_samples, default.critical, default.weight) == (10, False, 1.0)
    wire = {"direction": "decrease", "minSamples": 30, "critical": True, "weight": 2}
    assert CompareRule.model_validate(wire).model_dump(by_alias=True)["minSamples"] == 30


# ----------------------------------------------------------------------------- confidence


def result_of(verdict: Verdict, *, p: float | None, n: int, breach: bool = False) -> CompareResult:
    return CompareResult(
        metric="m",
        rule=CompareRule(min_samples=20, significance=0.01),
        verdict=verdict,
        message="",
        canary_samples=n,
        control_samples=n + 5,
        p_value=p,
        breach=breach,
    )


@pytest.mark.parametrize(
    ("result", "confidence"),
    [
        pytest.param(
            result_of(Verdict.INCONCLUSIVE, p=None, n=3), Confidence.LOW, id="inconclusive"
        ),
        pytest.param(
            result_of(Verdict.FAIL, p=0.0009, n=40, breach=True), Confidence.HIGH, id="fail-strong"
        ),
        pytest.param(
            result_of(Verdict.FAIL, p=0.001, n=40, breach=True),
            Confidence.MEDIUM,
            id="fail-p-at-tenth",
        ),
        pytest.param(
            result_of(Verdict.FAIL, p=1e-9, n=39, breach=True),
            Confidence.MEDIUM,
            id="fail-few-samples",
        ),
        pytest.param(result_of(Verdict.PASS, p=0.5, n=40), Confidence.HIGH, id="pass-plenty"),
        pytest.param(
            result_of(Verdict.PASS, p=0.5, n=39), Confidence.MEDIUM, id="pass-few-samples"
        ),
        pytest.param(
            result_of(Verdict.PASS, p=0.2, n=400, breach=True),
            Confidence.LOW,
            id="pass-underpowered",
        ),
    ],
)
def test_confidence_rules(result: CompareResult, confidence: Confidence) -> None:
    assert result.confidence is confidence


# ----------------------------------------------------- error rates over seeded draws

Draw = Callable[[np.random.Generator, int, float], np.ndarray]

FAMILIES: dict[str, Draw] = {
    # Latency-like: right-skewed, continuous (exact p-values up to 50 samples).
    "lognormal": lambda rng, n, scale: rng.lognormal(math.log(0.2), 0.5, n) * scale,
    "normal": lambda rng, n, scale: rng.normal(100.0, 10.0, n) * scale,
    # Quantized to 0.1 like many Prometheus series: ties everywhere (normal approximation).
    "quantized": lambda rng, n, scale: np.round(rng.lognormal(math.log(0.2), 0.5, n) * scale, 1),
}
#: Seeds per case: deterministic, and enough to tell 95% from 99%.
DRAWS = 400


def _rate(family: str, direction: Direction, n: int, scale: float, verdict: Verdict) -> float:
    draw = FAMILIES[family]
    rule = CompareRule(direction=direction)
    hits = 0
    for seed in range(DRAWS):
        canary = draw(np.random.default_rng(seed), n, scale)
        control = draw(np.random.default_rng(1_000_000 + seed), n, 1.0)
        hits += judge_metric(list(canary), list(control), rule, metric="m").verdict is verdict
    return hits / DRAWS


CASES = [
    pytest.param(family, direction, id=f"{family}-{direction.value}")
    for family in FAMILIES
    for direction in Direction
]


@pytest.mark.parametrize(("family", "direction"), CASES)
def test_identical_distributions_pass_at_least_95_percent(
    family: str, direction: Direction
) -> None:
    """Canary and control drawn from one distribution, 40 samples a side, the default rule."""
    assert _rate(family, direction, 40, 1.0, Verdict.PASS) >= 0.95


@pytest.mark.parametrize(("family", "direction"), CASES)
def test_shifted_distributions_fail_at_least_95_percent(family: str, direction: Direction) -> None:
    """The canary 50% worse (well beyond the 10% tolerance), 100 samples a side."""
    scale = 1 / 1.5 if direction is DEC else 1.5
    assert _rate(family, direction, 100, scale, Verdict.FAIL) >= 0.95


# ------------------------------------------------------------------- Hypothesis properties

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
samples = st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=60)
rules = st.builds(
    CompareRule,
    direction=st.sampled_from(Direction),
    tolerance=st.sampled_from([0.0, 0.1, 0.5]),
    min_samples=st.sampled_from([5, 10, 20]),
)


@SETTINGS
@given(canary=samples, control=samples, rule=rules)
def test_never_raises_and_never_passes_without_samples(
    canary: list[float], control: list[float], rule: CompareRule
) -> None:
    result = judge_metric(canary, control, rule, metric="m")
    usable = min(sum(map(math.isfinite, canary)), sum(map(math.isfinite, control)))
    if usable < rule.min_samples:
        assert result.verdict is Verdict.INCONCLUSIVE
    assert result.message
    assert result.p_value is None or 0.0 <= result.p_value <= 1.0
    for number in (result.effect_size, result.shift, result.canary_median, result.control_median):
        assert number is None or math.isfinite(number)


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


@SETTINGS
@given(values=st.lists(finite, min_size=5, max_size=60), rule=rules)
def test_a_canary_identical_to_its_control_passes(values: list[float], rule: CompareRule) -> None:
    result = judge_metric(values, list(values), rule, metric="m")
    if len(values) >= rule.min_samples:
        assert result.verdict is Verdict.PASS
        assert result.shift == 0.0


@SETTINGS
@given(
    canary=st.lists(finite, min_size=5, max_size=40),
    control=st.lists(finite, min_size=5, max_size=40),
    rule=rules,
)
def test_sample_order_does_not_matter(
    canary: list[float], control: list[float], rule: CompareRule
) -> None:
    forward = judge_metric(canary, control, rule, metric="m")
    backward = judge_metric(canary[::-1], sorted(control), rule, metric="m")
    assert forward.verdict is backward.verdict
    assert forward.p_value == backward.p_value
    assert forward.canary_median == statistics.median(canary) or forward.canary_median is None
