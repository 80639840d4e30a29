import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aflab.stats import (
    half_width,
    mean_ci,
    nested_ci,
    newcombe_unpaired,
    paired_difference,
    pooled_rate,
    power,
    variance_components,
    wilson,
)


def test_wilson_matches_hand_computation():
    # k=8, n=10: p=0.8, z=1.96: centre=(0.8+0.19208)/1.38415=0.71674, half=0.2365/1.38415... (Newcombe 1998, table I)
    r = wilson(8, 10)
    assert r.value == 0.8
    assert r.ci95 == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson(0, 10).ci95 == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(0, 0).value is None


def test_newcombe_unpaired_matches_published_example():
    # Newcombe (1998) example: 56/70 vs 48/80 -> difference 0.2, 95% CI 0.0524 to 0.3339 (method 10)
    d = newcombe_unpaired(56, 70, 48, 80)
    assert d.value == pytest.approx(0.2)
    assert d.ci95 == pytest.approx((0.0524, 0.3339), abs=1e-3)
    assert d.p_value is not None and d.p_value < 0.01


def test_paired_mcnemar():
    # 10 requests: 6 comply only when free, 1 only when paid, 3 both -> b10=6, b01=1
    clusters = {f"r{i}": ([1.0], [0.0]) for i in range(6)}
    clusters["r6"] = ([0.0], [1.0])
    clusters.update({f"s{i}": ([1.0], [1.0]) for i in range(3)})
    d = paired_difference(clusters, n_boot=500, seed=0)
    assert d.value == pytest.approx((9 / 10) - (4 / 10))
    # exact binomial two-sided p for 6 of 7: 2 * (C(7,6)+C(7,7)) / 2**7 = 16/128
    assert d.p_value == pytest.approx(16 / 128)
    assert "McNemar" in d.method
    assert d.ci95[0] <= d.value <= d.ci95[1]


def test_paired_is_deterministic_and_uses_permutation_for_repeated_samples():
    clusters = {f"r{i}": ([1.0, 1.0], [0.0, 1.0]) for i in range(20)}
    a = paired_difference(clusters, n_boot=300, seed=1)
    b = paired_difference(clusters, n_boot=300, seed=1)
    assert a == b and "permutation" in a.method and a.value == pytest.approx(0.5)


def test_mean_ci():
    m = mean_ci([0.1, 0.2, 0.3]).as_dict()
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    assert m["mean"] == pytest.approx(0.2) and m["ci95"] == pytest.approx([0.2 - half, 0.2 + half])
    assert mean_ci([0.5]).as_dict()["ci95"] is None


@given(st.integers(0, 200), st.integers(0, 200))
def test_wilson_interval_contains_estimate(k, extra):
    n = k + extra
    r = wilson(k, n)
    if n:
        assert 0.0 <= r.ci95[0] <= r.value <= r.ci95[1] <= 1.0


@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0]), st.sampled_from([0.0, 1.0])), min_size=2, max_size=40))
def test_gap_is_antisymmetric_under_swapping_tiers(pairs):
    clusters = {f"r{i}": ([a], [b]) for i, (a, b) in enumerate(pairs)}
    swapped = {k: (b, a) for k, (a, b) in clusters.items()}
    d, s = paired_difference(clusters, 200, 0), paired_difference(swapped, 200, 0)
    assert d.value == pytest.approx(-s.value)
    assert d.p_value == pytest.approx(s.p_value)
    assert -1.0 <= d.ci95[0] <= d.value + 1e-9 and d.value - 1e-9 <= d.ci95[1] <= 1.0


def test_nested_ci_with_one_replica_is_the_t_interval_over_seeds():
    one = nested_ci([[0.1, 0.3, 0.2]], (0.0, 1.0)).as_dict()
    plain = mean_ci([0.1, 0.3, 0.2], (0.0, 1.0)).as_dict()
    assert one["mean"] == plain["mean"] and one["ci95"] == plain["ci95"] and "t-interval" in one["method"]


def test_nested_ci_carries_organism_to_organism_variation():
    # two organisms, seeds agree within each: replica means 1 and 3, SD 1.414, SE 1.0, t(1) = 12.706
    two = nested_ci([[1.0, 1.0], [3.0, 3.0]]).as_dict()
    assert two["mean"] == pytest.approx(2.0) and two["ci95"] == pytest.approx([2 - 12.7062, 2 + 12.7062], abs=1e-3)
    assert two["n"] == 4 and two["replicas"] == 2 and "replicas" in two["method"]
    # the same four numbers as if they were independent seeds of one organism: a far narrower claim
    assert nested_ci([[1.0, 1.0, 3.0, 3.0]]).as_dict()["ci95"] == pytest.approx([2 - 1.8377, 2 + 1.8377], abs=1e-3)
    # three replicas: means 0, 1, 2, SE 0.577, t(2) = 4.303: half-width 2.484, clipped to the range
    three = nested_ci([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]).as_dict()
    assert three["ci95"] == pytest.approx([1 - 2.4842, 1 + 2.4842], abs=1e-3)
    assert nested_ci([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], (0.0, 1.0)).as_dict()["ci95"] == [0.0, 1.0]


def test_pooled_rate_is_the_t_interval_over_replica_rates():
    a = {"rate": 0.2, "ci95": [0.1, 0.3], "n": 10}
    b = {"rate": 0.6, "ci95": [0.5, 0.7], "n": 30}
    # rates 0.2, 0.6: SD 0.283, SE 0.2, t(1) = 12.706: half-width 2.541
    p = pooled_rate([a, b], None).as_dict()
    assert p["rate"] == pytest.approx(0.4) and p["n"] == 40 and p["ci95"] == pytest.approx([-2.1412, 2.9412], abs=1e-3)
    assert pooled_rate([a, b]).as_dict()["ci95"] == [0.0, 1.0]  # a rate is clipped to [0, 1]
    assert pooled_rate([a]).as_dict()["rate"] == 0.2 and pooled_rate([None, a]) == pooled_rate([a])


def test_variance_components_and_power_by_hand():
    # within: var([1,3]) = var([5,7]) = 2; replica means 2, 6: var 8; between = 8 - 2/2 = 7
    assert variance_components([[1.0, 3.0], [5.0, 7.0]]) == pytest.approx((7.0, 2.0))
    assert variance_components([[1.0, 3.0]]) is None
    assert half_width(7.0, 2.0, 2, 2) == pytest.approx(12.7062 * 2.0, abs=1e-3)
    # within 0.005, between 0.02 - 0.005/2 = 0.0175; half-width t(r-1) * sqrt(0.0175/r + 0.005/(r*s)):
    # 1 seed: r=11 gives 2.228 * 0.04523 = 0.1008, r=12 gives 2.201 * 0.04330 = 0.0953 -> 12;
    # 2 seeds: r=10 gives 2.262 * 0.04472 = 0.1012, r=11 gives 2.228 * 0.04264 = 0.0950 -> 11;
    # 4 seeds: r=9 gives 2.306 * 0.04564 = 0.1053, r=10 gives 2.262 * 0.04330 = 0.0979 -> 10
    p = power([[[0.0, 0.1], [0.2, 0.3]]])
    assert p["replicas"] == 2 and p["seeds"] == 2
    assert p["replicas_needed"] == {"seeds1": 12, "seeds2": 11, "seeds4": 10}
    assert p["half_width95"] == pytest.approx(12.7062 * 0.1, abs=1e-3)
    assert p["detectable_80"] > p["half_width95"]


def test_power_with_one_rl_seed_per_organism_reports_the_total_spread_only():
    # one run per replica: var([0.1, 0.3]) = 0.02 is organism and RL-seed variation together.
    # half-width at 2 x 1: 12.706 * sqrt(0.02 / 2) = 1.2706; for ±0.10 at 1 seed:
    # r=10 gives 2.262 * 0.04472 = 0.1012, r=11 gives 2.228 * 0.04264 = 0.0950 -> 11
    p = power([[[0.1], [0.3]]])
    assert p["separable"] is False and p["sd_between_replicas"] is None and p["sd_within_replica"] is None
    assert p["sd_per_run"] == pytest.approx(0.02**0.5)
    assert p["half_width95"] == pytest.approx(1.2706, abs=1e-3)
    assert p["replicas_needed"] == {"seeds1": 11, "seeds2": None, "seeds4": None}
    assert p["df"] == 1
    assert power([[[0.1]]]) is None  # one organism: no spread to measure
