"""Precision, recall and F1 of the engine on a labelled dataset, per topic and per language."""

from __future__ import annotations

from typing import Any, Protocol


class _Classifier(Protocol):
    def classify(self, title: str, text: str, lang: str | None = None) -> Any: ...

    @property
    def topics(self) -> list[Any]: ...


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn}


def evaluate(engine: _Classifier, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures per topic (all languages, then per language) and the misclassified items."""
    topic_ids = [t.id for t in engine.topics]
    counts: dict[tuple[str, str], list[int]] = {}
    errors: list[dict[str, Any]] = []
    for rec in records:
        labels = set(rec.get("labels") or [])
        c = engine.classify(str(rec.get("title") or ""), str(rec.get("text") or ""), rec.get("lang") or None)
        got = {m.topic for m in c.matches}
        lang = str(rec.get("lang") or c.lang or "?")
        for tid in topic_ids:
            for key in ((tid, "all"), (tid, lang)):
                tp_fp_fn = counts.setdefault(key, [0, 0, 0])
                tp_fp_fn[0] += tid in got and tid in labels
                tp_fp_fn[1] += tid in got and tid not in labels
                tp_fp_fn[2] += tid not in got and tid in labels
        if got & set(topic_ids) != labels & set(topic_ids):
            errors.append({"id": rec.get("id"), "lang": lang, "title": rec.get("title", ""),
                           "expected": sorted(labels), "got": sorted(got),
                           "scores": {t: m.score for t, m in c.scores.items()}})
    topics: dict[str, dict[str, Any]] = {}
    for (tid, lang), (tp, fp, fn) in sorted(counts.items()):
        topics.setdefault(tid, {})[lang] = _prf(tp, fp, fn)
    return {"items": len(records), "topics": topics, "misclassified": errors}


def render(report: dict[str, Any]) -> str:
    """A readable table and the misclassified items."""
    lines = [f"{report['items']} items", f"{'topic':28} {'lang':4} {'P':>6} {'R':>6} {'F1':>6}  tp/fp/fn"]
    for tid, per_lang in report["topics"].items():
        for lang, m in sorted(per_lang.items(), key=lambda kv: kv[0] != "all"):
            lines.append(f"{tid:28} {lang:4} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f}  "
                         f"{m['tp']}/{m['fp']}/{m['fn']}")
    lines.append(f"misclassified: {len(report['misclassified'])}")
    for e in report["misclassified"]:
        lines.append(f"  {e['id']} [{e['lang']}] expected={','.join(e['expected']) or '-'} "
                     f"got={','.join(e['got']) or '-'} scores={e['scores']}  {e['title'][:80]}")
    return "\n".join(lines)
