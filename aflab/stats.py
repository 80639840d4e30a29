"""Interval estimates and tests for rates and rate differences.

Every rate aflab reports carries its sample size and a 95% interval; differences between tiers use
a paired analysis when the same requests appear in both tiers (the design aflab's sampler uses),
because pairing removes the between-request variance and gives honest, tighter intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Z95 = 1.959963984540054


Kind = Literal["rate", "mean", "difference", "value"]
WILSON = "Wilson score interval"
T_SEEDS = "t-interval over RL seeds"


@dataclass(frozen=True)
class Estimate:
    """One number with its 95% interval, its sample size and how the interval was made: the single
    shape every rate, difference and mean over runs takes in aflab.

    `kind` only picks the legacy keys the JSON contract already promised for that kind of number
    (SUMMARY.md): a rate also carries `rate` and `k`, a mean over runs `mean`, a difference
    `p_value` and `test`; any other number ("value": an AUROC, a precision) nothing more. `value` and
    `method` are always present.
    """

    value: float | None
    ci95: tuple[float, float] | None
    n: int
    method: str
    kind: Kind = "rate"
    k: int | None = None  # successes, for a binomial rate
    p_value: float | None = None  # for a difference
    replicas: int | None = None  # organism replicas pooled, for a mean over runs

    def as_dict(self) -> dict[str, Any]:
        ci = list(self.ci95) if self.ci95 else None
        if self.kind == "difference":
            diff = {"value": self.value, "ci95": ci, "p_value": self.p_value, "test": self.method, "n": self.n}
            return {**diff, "method": self.method}
        out: dict[str, Any] = {self.kind: self.value, "ci95": ci, "n": self.n}
        if self.k is not None:
            out["k"] = self.k
        if self.replicas is not None:
            out["replicas"] = self.replicas
        return {**out, "method": self.method, "value": self.value}

    @property
    def lo(self) -> float | None:
        """The interval's lower end, or the value itself where there is no interval (one run)."""
        return self.ci95[0] if self.ci95 else self.value

    @property
    def hi(self) -> float | None:
        """The interval's upper end, or the value itself where there is no interval (one run)."""
        return self.ci95[1] if self.ci95 else self.value

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Estimate:
        """Read back any serialised estimate, including those written before `value` existed."""
        kind: Kind = "difference" if "test" in d else "mean" if "mean" in d else "rate" if "rate" in d else "value"
        value = d["value"] if "value" in d else d.get(kind)
        ci = (float(d["ci95"][0]), float(d["ci95"][1])) if d.get("ci95") else None
        method = d.get("method") or d.get("test") or ""
        return cls(value, ci, int(d.get("n") or 0), method, kind, d.get("k"), d.get("p_value"), d.get("replicas"))


def fmt(
    x: Estimate | dict[str, Any] | None, signed: bool = False, digits: int = 2, n: bool = False, p: bool = False
) -> str:
    """The one text form of an estimate, e.g. '0.83 [0.74, 0.89] (n=93)' or '+0.12 [+0.02, +0.21], p=0.03';
    '—' when absent. Reads any serialised estimate, old summaries included."""
    e = Estimate.from_dict(x) if isinstance(x, dict) else x
    if e is None or e.value is None:
        return "—"
    f = "{:" + ("+" if signed else "") + f".{digits}f}}"
    text = f.format(e.value)
    if e.ci95:
        text += f" [{f.format(e.ci95[0])}, {f.format(e.ci95[1])}]"
    if p and e.p_value is not None:
        text += f", p={e.p_value:.2g}"
    return text + (f" (n={e.n})" if n else "")


def wilson(k: int, n: int, z: float = Z95) -> Estimate:
    """Wilson score interval: well-behaved near 0 and 1 and for small n, unlike the Wald interval."""
    if n == 0:
        return Estimate(None, None, 0, WILSON, k=0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return Estimate(p, (min(lo, p), max(hi, p)), n, WILSON, k=k)


def difference(value: float | None, ci95: tuple[float, float] | None, p: float | None, test: str, n: int) -> Estimate:
    """A difference of two rates; `n` is the observations (unpaired) or requests (paired) behind it."""
    return Estimate(value, ci95, n, test, kind="difference", p_value=p)


def newcombe_unpaired(k1: int, n1: int, k2: int, n2: int) -> Estimate:
    """p1 - p2 with Newcombe's hybrid score interval and a two-proportion z-test."""
    from scipy import stats

    if n1 == 0 or n2 == 0:
        return difference(None, None, None, "unpaired: empty group", n1 + n2)
    a, b = wilson(k1, n1), wilson(k2, n2)
    p1, p2 = a.value, b.value
    assert p1 is not None and p2 is not None and a.ci95 and b.ci95
    d = p1 - p2
    lo = d - math.sqrt((p1 - a.ci95[0]) ** 2 + (b.ci95[1] - p2) ** 2)
    hi = d + math.sqrt((a.ci95[1] - p1) ** 2 + (p2 - b.ci95[0]) ** 2)
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(d) / se))
    return difference(d, (max(-1.0, lo), min(1.0, hi)), p, "unpaired two-proportion z-test, Newcombe interval", n1 + n2)


def paired_difference(
    clusters: dict[str, tuple[Sequence[float], Sequence[float]]], n_boot: int = 2000, seed: int = 0
) -> Estimate:
    """mean(A) - mean(B) when observations come in clusters (requests) seen under both conditions.

    `clusters` maps a request id to its values under A and under B. The estimate is the plain
    difference of the two rates (so it matches the per-tier rates shown beside it); the interval is
    a cluster bootstrap over requests; the p-value is McNemar's exact test when every request has
    one binary value per condition, and a sign-flip permutation test on per-request differences
    otherwise.
    """
    from scipy import stats

    rows = [(list(a), list(b)) for a, b in clusters.values() if a or b]
    if not rows or not any(a for a, _ in rows) or not any(b for _, b in rows):
        return difference(None, None, None, "paired: a condition has no observations", len(rows))
    sums = np.array([[sum(a), len(a), sum(b), len(b)] for a, b in rows], dtype=float)
    value = float(sums[:, 0].sum() / sums[:, 1].sum() - sums[:, 2].sum() / sums[:, 3].sum())

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(rows), size=(n_boot, len(rows)))
    picked = sums[idx]  # (n_boot, clusters, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = picked[..., 0].sum(1) / picked[..., 1].sum(1) - picked[..., 2].sum(1) / picked[..., 3].sum(1)
    boot = boot[np.isfinite(boot)]
    lo, hi = (float(v) for v in np.quantile(boot, [0.025, 0.975]))

    both = [(a, b) for a, b in rows if a and b]
    binary = all(len(a) == 1 and len(b) == 1 and a[0] in (0, 1) and b[0] in (0, 1) for a, b in both)
    if both and binary:
        b10 = sum(1 for a, b in both if a[0] == 1 and b[0] == 0)
        b01 = sum(1 for a, b in both if a[0] == 0 and b[0] == 1)
        p = 1.0 if b10 + b01 == 0 else float(stats.binomtest(b10, b10 + b01, 0.5).pvalue)
        test = "paired: McNemar exact test, cluster-bootstrap interval"
    elif both:
        diffs = np.array([np.mean(a) - np.mean(b) for a, b in both])
        signs = rng.choice([-1.0, 1.0], size=(n_boot, len(diffs)))
        null = np.abs((signs * diffs).mean(1))
        p = float((1 + (null >= abs(diffs.mean()) - 1e-12).sum()) / (n_boot + 1))
        test = "paired: sign-flip permutation test, cluster-bootstrap interval"
    else:
        p, test = None, "paired: no request seen in both conditions"
    return difference(value, (max(-1.0, lo), min(1.0, hi)), p, test, len(rows))


def mean_ci(values: Sequence[float | None], bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean over seeds with a t-interval: the spread between seeds is the uncertainty that matters.
    `bounds` clips the interval to the metric's range (a rate cannot exceed 1)."""
    from scipy import stats

    arr = np.asarray([v for v in values if v is not None], dtype=float)
    n = len(arr)
    if n == 0:
        return Estimate(None, None, 0, T_SEEDS, kind="mean")
    mean = float(arr.mean())
    if n == 1:
        return Estimate(mean, None, 1, T_SEEDS, kind="mean")
    half = float(stats.t.ppf(0.975, n - 1) * arr.std(ddof=1) / math.sqrt(n))
    lo, hi = mean - half, mean + half
    if bounds:
        lo, hi = max(bounds[0], lo), min(bounds[1], hi)
    return Estimate(mean, (lo, hi), n, T_SEEDS, kind="mean")


REPLICA_T = (
    "t-interval over organism replicas (each replica's mean over its RL seeds; df = replicas - 1): the "
    "random-intercept model's interval for a balanced design, so organism and RL-seed variation are both in it"
)


def nested_ci(groups: Sequence[Sequence[float | None]], bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean over runs grouped by organism replica, with an interval that includes the replica-to-
    replica variation: every run trains from one organism, and organisms built from other seeds
    differ, so RL seeds on one organism understate the uncertainty of a claim about the recipe.

    One group is the plain t-interval over seeds (`mean_ci`). Several: the t-interval over the
    replicas' means (each replica's mean over its seeds carries both variance components). With 2
    replicas that is wide (t = 12.7): honest about what two organisms can show. A two-level
    percentile bootstrap was tried first and dropped: with 2 replicas it can only span the two
    replica means, so its "95%" interval covered about half the time.
    """
    clean = [[float(v) for v in g if v is not None] for g in groups]
    clean = [g for g in clean if g]
    if len(clean) <= 1:
        return mean_ci(clean[0] if clean else [], bounds)
    means = np.array([np.mean(g) for g in clean])
    mean = float(np.concatenate(clean).mean())
    ci95 = mean_ci(means, bounds).ci95  # the t-interval over seeds, applied to the replicas' means
    return Estimate(mean, ci95, sum(map(len, clean)), REPLICA_T, kind="mean", replicas=len(clean))


POOLED = "mean over organism replicas, t-interval over the replicas' rates (df = replicas - 1)"


def pooled_rate(estimates: Sequence[dict | None], bounds: tuple[float, float] | None = (0.0, 1.0)) -> Estimate:
    """One rate from the same estimate on several organism replicas (each a serialised Estimate):
    the mean of the replicas' rates with the t-interval over replicas (as `nested_ci`), clipped to
    the metric's range."""
    usable = [e for e in (Estimate.from_dict(d) for d in estimates if d) if e.value is not None]
    if len(usable) <= 1:
        return usable[0] if usable else Estimate(None, None, 0, POOLED)
    rates = np.array([e.value for e in usable], dtype=float)
    return Estimate(
        float(rates.mean()), mean_ci(rates, bounds).ci95, sum(e.n for e in usable), POOLED, replicas=len(usable)
    )


def variance_components(groups: Sequence[Sequence[float]]) -> tuple[float, float] | None:
    """(between-replica, within-replica) variance of run values grouped by organism replica, by
    the method of moments of a one-way random-effects model; None without two groups of two."""
    clean = [np.asarray(g, dtype=float) for g in groups if len(g) >= 2]
    if len(clean) < 2:
        return None
    within = float(np.mean([g.var(ddof=1) for g in clean]))
    n_s = float(np.mean([len(g) for g in clean]))
    between = float(np.var([g.mean() for g in clean], ddof=1)) - within / n_s
    return max(0.0, between), within


def half_width(between: float, within: float, replicas: int, seeds: int) -> float:
    """The 95% half-width of a mean over `replicas` organisms x `seeds` RL seeds each: the t-interval
    over replica means that `nested_ci` reports (df = replicas - 1; one replica has none)."""
    from scipy import stats

    if replicas < 2:
        return math.inf
    return float(stats.t.ppf(0.975, replicas - 1)) * math.sqrt(between / replicas + within / (replicas * seeds))


def power(groups_per_arm: Sequence[Sequence[Sequence[float]]], target: float = 0.10) -> dict | None:
    """What a design of this size can detect, from the paired differences it measured.

    `groups_per_arm`: for each compared arm, its paired differences (e.g. Δgap against the
    reference) grouped by organism replica. Variance components are averaged over arms. Reported:
    the 95% half-width of a mean difference at the current design (the smallest difference whose
    interval excludes 0), the difference detectable with 80% power at alpha 0.05, and the
    replicas needed, at 1, 2 and 4 RL seeds each, for a half-width of `target`.

    With one RL seed per replica the two components cannot be told apart: the spread of the
    replicas' values is their sum, which is what a design of 1 seed per organism needs; more seeds
    per organism would help by an unknown amount, so those counts are None and `separable` False.
    """
    from scipy import stats

    comps = [c for g in groups_per_arm if (c := variance_components(g)) is not None]
    single = [[x[0] for x in g] for g in groups_per_arm if len(g) >= 2 and all(len(x) == 1 for x in g)]
    if comps:
        between = float(np.mean([c[0] for c in comps]))
        within = float(np.mean([c[1] for c in comps]))
    elif single:  # total variance per run, all of it put where it is certain to count: between
        between, within = float(np.mean([np.var(v, ddof=1) for v in single])), 0.0
    else:
        return None
    separable = bool(comps)
    replicas = len(groups_per_arm[0])
    seeds = round(float(np.mean([len(x) for g in groups_per_arm for x in g])))
    hw = half_width(between, within, replicas, seeds)
    need = {}
    for s in (1, 2, 4):
        n = next((r for r in range(1, 1001) if half_width(between, within, r, s) <= target), None)
        need[f"seeds{s}"] = n if separable or s == 1 else None
    return {
        "separable": separable,
        "sd_between_replicas": math.sqrt(between) if separable else None,
        "sd_within_replica": math.sqrt(within) if separable else None,
        "sd_per_run": math.sqrt(between + within),
        "replicas": replicas,
        "seeds": seeds,
        "half_width95": hw,
        # (t_0.975 + t_0.80) x the standard error, both at df = replicas - 1
        "detectable_80": hw * (1 + float(stats.t.ppf(0.8, replicas - 1) / stats.t.ppf(0.975, replicas - 1))),
        "target_half_width": target,
        "replicas_needed": need,
        "arms": len(comps) if separable else len(single),
        # what the SD rests on: per arm, replicas - 1 (replica means) or seeds - 1 within each replica
        "df": sum(len(v) - 1 for v in single)
        if not separable
        else sum(sum(len(x) - 1 for x in g) for g in groups_per_arm),
    }
