#!/usr/bin/env python3
"""How often the tune's sequential design keeps a candidate of a given true effect.

A simulation of the design in src/bench/sequential.rs with the noise known: per-round log ratios
drawn from N(log(1 + effect), sd); looks after the rounds given; the one-sided 2.5% level spent
across the looks by the Lan-DeMets O'Brien-Fleming-type function (bounds found by Monte Carlo);
accepted when a look's z crosses its bound and the estimate exceeds the 3% minimum effect;
stopped as not promising when the estimate is at or below it. The real tune estimates the noise
(a t statistic pooled with earlier candidates), so it is a little less powerful than this.

    python3 benches/sequential_power.py                 # the table in BENCHMARKS.md
    python3 benches/sequential_power.py 3,6,12 0.15     # one design, one per-round deviation

Pure Python (no numpy), seeded (the same table every run); a few seconds.
"""
import math
import random
import sys
from statistics import NormalDist

N = NormalDist()
MIN_EFFECT = 0.03


def bounds(fractions, alpha=0.025, sims=60000, rng=random.Random(1)):
    spent = [2 - 2 * N.cdf(N.inv_cdf(1 - alpha / 2) / math.sqrt(t)) for t in fractions]
    inc = [spent[0]] + [spent[i] - spent[i - 1] for i in range(1, len(spent))]
    dt = [fractions[0]] + [fractions[i] - fractions[i - 1] for i in range(1, len(fractions))]
    paths = []
    for _ in range(sims):
        w, z = 0.0, []
        for k, t in enumerate(fractions):
            w += rng.gauss(0, math.sqrt(dt[k]))
            z.append(w / math.sqrt(t))
        paths.append(z)
    out = []
    for k in range(len(fractions)):
        zs = sorted((p[k] for p in paths), reverse=True)
        m = int(inc[k] * sims)
        c = zs[m] if m < len(zs) else math.inf
        out.append(c)
        paths = [p for p in paths if p[k] < c]
    return out


def power(effect, sd, looks, b, sims=6000, rng=random.Random(2)):
    kept = rounds = 0
    for _ in range(sims):
        x = [rng.gauss(math.log1p(effect), sd) for _ in range(looks[-1])]
        for k, n in enumerate(looks):
            m = sum(x[:n]) / n
            z = m / (sd / math.sqrt(n))
            if z >= b[k] and math.expm1(m) > MIN_EFFECT:
                kept += 1
                rounds += n
                break
            if k == len(looks) - 1 or math.expm1(m) <= MIN_EFFECT:
                rounds += n
                break
    return kept / sims, rounds / sims


def main():
    designs = [[3, 5, 8], [3, 6, 12]]
    sds = [0.10, 0.15]
    if len(sys.argv) == 3:
        designs = [[int(v) for v in sys.argv[1].split(",")]]
        sds = [float(sys.argv[2])]
    effects = [0.0, 0.08, 0.15, 0.25]
    print("| looks | per-round sd | " + " | ".join(f"kept at {e:+.0%} (rounds)" for e in effects) + " |")
    print("|---|---|" + "---|" * len(effects))
    for looks in designs:
        b = bounds([n / looks[-1] for n in looks])
        for sd in sds:
            cells = [power(e, sd, looks, b) for e in effects]
            print(f"| {','.join(map(str, looks))} | {sd:.2f} | "
                  + " | ".join(f"{p:.0%} ({n:.1f})" for p, n in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
