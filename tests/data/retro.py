"""Retro-test a change to the Syria rules on news the rules had not seen.

Each blind wave of the dev set (`h26-*` .. `h161-*`, four batches of 40) was measured with the rules of the
commit listed below, before any rule was changed because of it. This tool checks out those rules (`git
archive`), applies a candidate change to a copy of their packs, and reports, wave by wave, which items the
change fixes or breaks for `syria-military-shifts`. A change chosen this way still benefits from having seen the
errors, so the totals are an upper bound on what it adds, not a forecast; they do show whether a rule written
as a general principle would have held on news that came later.

    python tests/data/retro.py CHANGE.py          # CHANGE.py is run as: python CHANGE.py PACKS_DIR
    python tests/data/retro.py                    # the waves' own figures, no change

CHANGE.py edits the TOML files in PACKS_DIR (for example, it appends a group to 00-groups.toml and a clause
before the end of the Syria query). Older rules lack some groups; a change that names one fails on those waves
and says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEVSET = Path(__file__).with_name("devset.jsonl")
TOPIC = "syria-military-shifts"
# first batch of each wave → the commit whose rules measured it (tests/data/README.md, one row per wave)
WAVES = [
    (26, "8bd090c0f5ebe80d9756fd742002ed9ad6188e1b"),
    (30, "d30321d054bd50c8cc68dd8b825882d161b622b6"),
    (34, "385203291363cf7361d6706cef05a01a1159c5b9"),
    (38, "2bc2f120916091a24c8727ee7115ef2689d480ab"),
    (42, "f3978416bf5ec2f006c542ba3b15edab4a64f7c7"),
    (46, "a23df50dce6fe924c91ef28db6933c2aa6f0019b"),
    (50, "fcef9464b48eeb25187d7d1cc8b40ded76e8a7db"),
    (54, "8cf9585589c54c20d232cbfc7d238a116f9df400"),
    (58, "7aeb07dd6176362123aba180164bd7ef5b78c357"),
    (62, "480355fb8f70272dcdb49d1d86eafeda7f402d95"),
    (66, "b22de3f5c041430bc4404131798534db59d70f4e"),
    (70, "5df87954914fb3f21976bf9559a85cf875b4aaa1"),
    (74, "116761ce37cabc3d7bd1827350e1d1c154c14bca"),
    (78, "d8bf107a1c6ad386736f3abe20ec5d11d6232e43"),
    (82, "8ff437cdff95580830f27e9b3747b443d1d71b1d"),
    (86, "8f63f48a64266adfc0b06bdcf0ead12812d4adf9"),
    (90, "8f63f48a64266adfc0b06bdcf0ead12812d4adf9"),
    (94, "b5595a16c15dd0d991b0a517b7419c642ec36669"),
    (98, "d71bc7b5597b64f3709800415e24f56c2504445b"),
    (102, "97f70a0187109c39a5217522eb95b5d97f9c27a9"),
    (106, "cdae3141ce7ef5e4ba6454406713d1143a505985"),
    (110, "9d713a198543c945b5e3b1b9d5bcce93a65afc87"),
    (114, "51899069a6951a055824686dc06c92fd2bc6a4a5"),
    (118, "51899069a6951a055824686dc06c92fd2bc6a4a5"),
    (122, "4b93160a42d35d5b78cea703400439e39ba62987"),
    (126, "4b93160a42d35d5b78cea703400439e39ba62987"),
    (130, "8010393bc52d38bf19630f4414a4783799082c70"),
    (134, "8010393bc52d38bf19630f4414a4783799082c70"),
    (138, "07fb09fc840b60e4c9ac2b13ed9af9974f121b9c"),
    (142, "07fb09fc840b60e4c9ac2b13ed9af9974f121b9c"),
    (146, "3bfb0634f1b153510f7728e6403e702983c7182c"),
    (150, "3bfb0634f1b153510f7728e6403e702983c7182c"),
    (154, "3ae84f672c2f1a19844ddbd318cd84c2c068acba"),
    (158, "3ae84f672c2f1a19844ddbd318cd84c2c068acba"),
]
# from this wave on, writers were asked for the plain mix of hard negatives (h50-h69 asked for tricky titles)
PLAIN_FROM = 70
# run inside the checked-out rules: one line per item, "id<TAB>0|1" (matched or not)
_DECIDE = f"""
import json, sys
from newsmon.classifier.engine import load_engine
engine = load_engine()
for line in sys.stdin:
    x = json.loads(line)
    c = engine.classify(x["title"], x["text"], x.get("lang"))
    print(x["id"], int(any(m.topic == {TOPIC!r} for m in c.matches)), sep="\\t")
"""


def wave_items(first: int) -> list[dict[str, Any]]:
    prefixes = tuple(f"h{n}-" for n in range(first, first + 4))
    with DEVSET.open(encoding="utf-8") as f:
        return [x for x in map(json.loads, f) if str(x["id"]).startswith(prefixes)]


def checkout(commit: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "services"], capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "services"


def decide(services: Path, items: list[dict[str, Any]]) -> dict[str, bool]:
    lines = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items)
    env = {**os.environ, "PYTHONPATH": str(services)}
    proc = subprocess.run([sys.executable, "-c", _DECIDE], input=lines, capture_output=True, text=True,
                          env=env, cwd=services.parent, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    return {i: v == "1" for i, v in (row.split("\t") for row in proc.stdout.splitlines())}


def counts(items: list[dict[str, Any]], got: dict[str, bool], lang: str) -> tuple[int, int, int]:
    tp = fp = fn = 0
    for x in items:
        if x.get("lang") != lang:
            continue
        gold, hit = TOPIC in x["labels"], got[str(x["id"])]
        tp += gold and hit
        fp += hit and not gold
        fn += gold and not hit
    return tp, fp, fn


def f1(tp: int, fp: int, fn: int) -> str:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return f"P {p:.3f} R {r:.3f} F1 {2 * p * r / (p + r) if p + r else 0.0:.3f} ({tp}/{fp}/{fn})"


def main(argv: list[str]) -> int:
    change = Path(argv[0]).resolve() if argv else None
    totals = {lang: [0, 0, 0] for lang in ("en", "ar")}
    plain = {lang: [0, 0, 0] for lang in ("en", "ar")}
    fixed = broken = 0
    for first, commit in WAVES:
        items = wave_items(first)
        if not items:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            services = checkout(commit, Path(tmp))
            before = decide(services, items)
            after = before
            if change is not None:
                subprocess.run([sys.executable, str(change), str(services / "newsmon/classifier/packs")],
                               check=True)
                try:
                    after = decide(services, items)
                except RuntimeError as exc:
                    print(f"h{first}: the change does not load on these rules: {exc}")
                    continue
        gold = {str(x["id"]): TOPIC in x["labels"] for x in items}
        for i in sorted(i for i in before if before[i] != after[i]):
            good = after[i] == gold[i]
            fixed, broken = fixed + good, broken + (not good)
            title = next(str(x["title"]) for x in items if x["id"] == i)
            print(f"h{first}: {'fixed ' if good else 'BROKEN'} {i} {title[:90]}")
        for lang in totals:
            for k, v in enumerate(counts(items, after, lang)):
                totals[lang][k] += v
                if first >= PLAIN_FROM:
                    plain[lang][k] += v
    for lang, (tp, fp, fn) in totals.items():
        print(f"all waves, {lang}: {f1(tp, fp, fn)}")
    for lang, (tp, fp, fn) in plain.items():
        print(f"plain mix (h{PLAIN_FROM} on), {lang}: {f1(tp, fp, fn)}")
    if change is not None:
        print(f"items fixed {fixed}, broken {broken}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
