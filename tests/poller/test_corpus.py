"""Every public corpus document through the poller's parse path (read at run time; skipped when absent)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsmon.errors import ParseError
from newsmon.poller import parser, processor

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def _parse(path: Path) -> int:
    feed = parser.parse(path.read_bytes(), url=f"http://corpus.example/{path.name}")
    drafts = processor.process(feed, feed_id="corpus", feed_url="http://corpus.example/", fetched_at=NOW)
    return len(processor.resolve(drafts, processor.Known()))


def test_every_corpus_feed_parses_without_an_unhandled_exception(shared_dir: Path) -> None:
    root = shared_dir / "corpus" / "feeds"
    if not root.is_dir():
        pytest.skip("corpus feeds are not present")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    with_articles = not_feeds = articles = 0
    for path in files:
        try:
            count = _parse(path)
        except ParseError:
            not_feeds += 1
            continue
        articles += count
        with_articles += count > 0
    report = (
        f"corpus: {len(files)} documents, {with_articles} produced articles ({articles} articles), "
        f"{not_feeds} not feeds"
    )
    print(report)
    assert with_articles > len(files) // 2, report


@pytest.mark.parametrize(
    ("name", "minimum"),
    [
        ("node-feedparser/compressed.xml", 1),
        ("node-feedparser/invalid-characters-gzipped.xml", 1),
        ("feed-rs/jsonfeed/jsonfeed_example_1.json", 1),
    ],
    ids=["gzip", "gzip-cp1251", "jsonfeed"],
)
def test_cases_feedparser_alone_misses(shared_dir: Path, name: str, minimum: int) -> None:
    matches = list(
        (shared_dir / "corpus" / "feeds").glob(name.split("/")[0] + "/**/" + name.rsplit("/", 1)[1])
    )
    if not matches:
        pytest.skip(f"{name} not present")
    assert _parse(matches[0]) >= minimum


def test_articles_match_feedparser_entry_counts(shared_dir: Path) -> None:
    manifest = shared_dir / "corpus" / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.skip("corpus manifest is not present")
    with manifest.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    fewer = []
    for row in rows:
        path = shared_dir / "corpus" / "feeds" / row["path"]
        expected = int(row["entries"] or 0)
        if not path.is_file() or not expected:
            continue
        try:
            got = _parse(path)
        except ParseError:
            got = 0
        if got < expected:
            fewer.append((row["path"], expected, got))
    # Entries that collapse to one article (same id twice in a document) are the only accepted shortfall.
    assert len(fewer) <= len(rows) // 100, fewer[:10]
