"""The benchmark harness: `python -m sparsekernels.bench --suite quick --device cpu --out DIR`.

Every row times a sparsekernels op and the baselines a user would pick instead, in
the same process on the same inputs, checks every timed output against a float64
dense reference, and reports ratios (baseline time / our time: > 1 means we are
faster), achieved bandwidth on the bytes the format moves and the fraction of the
ceilings measured in the same run.
"""
