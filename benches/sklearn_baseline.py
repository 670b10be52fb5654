"""scikit-learn's IsolationForest on the same file, for `cargo bench --bench forest`.

Prints one JSON object: sklearn version, fit seconds, single-threaded
score_samples seconds (best of `--repeat`) and rows/s. Same t and psi as ours.
"""
import argparse
import json
import time

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

ap = argparse.ArgumentParser()
ap.add_argument("file")
ap.add_argument("--trees", type=int, default=100)
ap.add_argument("--sample-size", type=int, default=256)
ap.add_argument("--repeat", type=int, default=3)
args = ap.parse_args()

data = np.loadtxt(args.file, delimiter=",", skiprows=1)
x = np.ascontiguousarray(data[:, :-1])
forest = IsolationForest(n_estimators=args.trees, max_samples=args.sample_size,
                         random_state=0, n_jobs=1)
t0 = time.perf_counter()
forest.fit(x)
fit_s = time.perf_counter() - t0
best = float("inf")
for _ in range(args.repeat):
    t0 = time.perf_counter()
    forest.score_samples(x)
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"version": sklearn.__version__, "rows": len(x), "fit_s": fit_s,
                  "score_s": best, "rows_per_s": len(x) / best}))
