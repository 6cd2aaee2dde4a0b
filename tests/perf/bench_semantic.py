"""The optional semantic scorer (classifier.semantic_weight): does it add anything, and what does it cost?

    .venv/bin/python tests/perf/bench_semantic.py quality [--weights 0.05,0.1,0.2,0.3]
    .venv/bin/python tests/perf/bench_semantic.py speed [N]

quality: P/R/F1 of syria-military-shifts per language on the dev set, rules alone vs the blend at a few weights
(each through load_engine with the setting, as `newsmon eval` runs it), and the embedding alone (margin over a
threshold, no rules) at its best threshold per language, chosen on the very items it is scored on (an optimistic
figure). Figures for the whole set, for the h4-h8 batches (written before the rule rounds they measured, the last two
never tuned on) and for h10 (written after the semantic exemplars and settings were fixed), plus the
embedding alone with a threshold chosen on the other batches.
speed: articles/s and CPU ms per article on 1-3 KB articles (tests/perf/bench_classifier.py's mix: 20% conflict
news, the rest everyday news) with the blend off and on, then all-conflict articles (every one embedded);
start-up time and peak RSS of a fresh process. BLAS is held to one thread (per-core figures) unless --threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEVSET = ROOT / "tests" / "data" / "devset.jsonl"
TOPIC = "syria-military-shifts"
LATE = ("h4-", "h5-", "h6-", "h7-", "h8-")
NEWEST = ("h10-",)  # written after the semantic exemplars and settings were chosen


def _engine(weight: float) -> Any:
    from newsmon.classifier.engine import load_engine
    from newsmon.settings import load_settings

    return load_engine(load_settings(classifier={"semantic_weight": weight}))


def _prf(got: list[bool], gold: list[bool]) -> tuple[float, float, float]:
    tp = sum(g and y for g, y in zip(got, gold, strict=True))
    fp = sum(g and not y for g, y in zip(got, gold, strict=True))
    fn = sum(y and not g for g, y in zip(got, gold, strict=True))
    p, r = tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def _best_threshold(margins: list[float], gold: list[bool]) -> float:
    return max(sorted(set(margins)), key=lambda t: _prf([m >= t for m in margins], gold)[2])


def quality(weights: list[float]) -> None:
    rows = [json.loads(x) for x in DEVSET.read_text(encoding="utf-8").splitlines() if x.strip()]
    gold = [TOPIC in (r.get("labels") or []) for r in rows]
    decisions: dict[str, list[bool]] = {}
    margins: list[float] = []
    for w in [0.0, *weights]:
        engine = _engine(w)
        got = []
        for r in rows:
            c = engine.classify(r.get("title") or "", r.get("text") or "", r.get("lang"))
            got.append(any(m.topic == TOPIC for m in c.matches))
        decisions["rules" if w == 0 else f"blend w={w}"] = got
        if w and not margins:  # the embedding alone: margin of every item, whether its query held or not
            topic = engine.packs.topics[TOPIC]
            margins = [engine.semantic.margins(r.get("title") or "", r.get("text") or "", [topic])[TOPIC]
                       for r in rows]
    subsets: dict[str, Callable[[dict[str, Any]], bool]] = {
        "all": lambda r: True, "h4-h8": lambda r: r["id"].startswith(LATE),
        "h10": lambda r: r["id"].startswith(NEWEST)}
    print(f"{TOPIC}: {len(rows)} items; P / R / F1 (tp/fp/fn omitted)")
    print(f"{'subset':7} {'lang':4} {'method':26} {'P':>6} {'R':>6} {'F1':>6}")
    for sname, keep in subsets.items():
        for lang in ("en", "ar"):
            idx = [i for i, r in enumerate(rows) if r["lang"] == lang and keep(r)]
            if not idx:
                continue
            g = [gold[i] for i in idx]
            for name, got in decisions.items():
                print(f"{sname:7} {lang:4} {name:26} " + " ".join(
                    f"{v:6.3f}" for v in _prf([got[i] for i in idx], g)))
            m = [margins[i] for i in idx]
            t = _best_threshold(m, g)
            print(f"{sname:7} {lang:4} {f'embedding alone, t={t:+.3f}':26} "
                  + " ".join(f"{v:6.3f}" for v in _prf([x >= t for x in m], g)))
            if sname != "all":  # threshold chosen on the other batches of the same language
                other = [i for i, r in enumerate(rows) if r["lang"] == lang and not keep(r)]
                t = _best_threshold([margins[i] for i in other], [gold[i] for i in other])
                print(f"{sname:7} {lang:4} {f'embedding, t={t:+.3f} (other)':26} "
                      + " ".join(f"{v:6.3f}" for v in _prf([x >= t for x in m], g)))
    for name, got in decisions.items():
        if name != "rules":
            flips = [(rows[i]["id"], "fixed" if got[i] == gold[i] else "broken")
                     for i in range(len(rows)) if got[i] != decisions["rules"][i]]
            print(f"{name}: changes vs rules: {flips}")


_STARTUP = """
import resource, sys, time
t0 = time.perf_counter()
from newsmon.classifier.engine import load_engine
from newsmon.settings import load_settings
engine = load_engine(load_settings(classifier={"semantic_weight": float(sys.argv[1])}))
start = time.perf_counter() - t0
engine.classify("Rebels take an airbase near Hama", "Fighters overran the base as the army withdrew.")
print(start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def speed(n: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_classifier import articles

    for w in (0.0, 0.1):
        out = subprocess.run([sys.executable, "-c", _STARTUP, str(w)], capture_output=True, text=True, check=True,
                             env=os.environ.copy()).stdout.split()
        print(f"weight {w}: fresh process start-up {float(out[0]):.2f} s, peak RSS {float(out[1]):.0f} MB")
    for share in (0.2, 1.0):
        items = articles(n, conflict_share=share)
        for w in (0.0, 0.1):
            engine = _engine(w)
            for it in items[:50]:
                engine.classify(it["title"], it["text"])
            t0, c0 = time.perf_counter(), time.process_time()
            candidates = sum(bool(engine.classify(it["title"], it["text"]).scores) for it in items)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"conflict share {share:.0%}, weight {w}: {n / wall:8.0f} articles/s wall, "
                  f"{n / cpu:8.0f}/s per CPU second ({1000 * cpu / n:.3f} ms CPU each); "
                  f"{candidates} of {n} had a topic query hold (embedded when on)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["quality", "speed"])
    parser.add_argument("n", nargs="?", type=int, default=2000)
    parser.add_argument("--weights", default="0.05,0.1,0.2,0.3")
    parser.add_argument("--threads", action="store_true", help="let BLAS use every core")
    args = parser.parse_args()
    if "numpy" in sys.modules:
        raise SystemExit("numpy was imported before the BLAS thread limit could be set")
    if not args.threads:  # must precede the first numpy import (here and in the start-up subprocesses)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = "1"
    if args.what == "quality":
        quality([float(w) for w in args.weights.split(",")])
    else:
        speed(args.n)


if __name__ == "__main__":
    main()
