"""Stories in the store, on both engines (SQLite, and PostgreSQL when its binaries are installed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsmon.classifier.engine import Engine, load_engine
from newsmon.classifier.stories import StoryAssigner
from newsmon.events import Article
from newsmon.store import Store
from newsmon.store import stories as db

T0 = datetime(2024, 12, 7, 6, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    sqlite = f"sqlite:///{tmp_path / 'n.db'}"
    url = sqlite if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    s = await Store.open(url)
    yield s
    await s.close()


@pytest.fixture(scope="module")
def engine() -> Engine:
    return load_engine()


def art(aid: str, title: str, text: str, hours: float = 0) -> Article:
    return Article.model_validate({"id": aid, "feed_id": "f", "feed_url": "https://f.example/rss",
                                   "title": title, "text": text, "published": T0 + timedelta(hours=hours)})


HOMS_EN = art("h-en", "Rebels take Homs as government troops withdraw",
              "Opposition fighters led by Hayat Tahrir al-Sham captured Homs after Syrian army units "
              "withdrew towards the coast; Rastan and Talbiseh fell earlier.")
HOMS_AR = art("h-ar", "فصائل المعارضة تسيطر على حمص بعد انسحاب قوات النظام",
              "سيطرت هيئة تحرير الشام وفصائل المعارضة على مدينة حمص بعد انسحاب الجيش السوري من الرستن "
              "وتلبيسة.", hours=2)
DEIR_EN = art("d-en", "US jets strike Islamic State camps near Deir ez-Zor",
              "American warplanes hit Islamic State positions in the desert of Deir ez-Zor province, the "
              "Pentagon said.", hours=1)


async def assign_all(store: Store, engine: Engine, articles: tuple[Article, ...]) -> dict[str, str]:
    """Each article's story id, assigned in order; every article must match the Syria topic first."""
    assigner = StoryAssigner(store, window=48 * 3600)
    ids = {}
    for a in articles:
        c = engine.classify(a.title, a.text)
        assert c.matches and c.matches[0].topic == "syria-military-shifts", a.id
        ids[a.id] = await assigner.assign(a, c)
    return ids


async def test_same_event_in_two_languages_is_one_story(store: Store, engine: Engine) -> None:
    ids = await assign_all(store, engine, (HOMS_EN, DEIR_EN, HOMS_AR))
    assert ids["h-en"] == ids["h-ar"] != ids["d-en"]
    story = await db.get(store, ids["h-en"])
    assert story is not None and story.articles == 2 and "homs" in story.entities
    # Idempotent: the same article again (any worker, any time) keeps its story and changes nothing.
    c = engine.classify(HOMS_AR.title, HOMS_AR.text)
    again = await StoryAssigner(store, window=48 * 3600).assign(HOMS_AR, c)
    assert again == ids["h-ar"]
    story_after = await db.get(store, ids["h-en"])
    assert story_after is not None and story_after.articles == 2


async def test_outside_the_window_starts_a_new_story(store: Store, engine: Engine) -> None:
    assigner = StoryAssigner(store, window=3600)
    late = art("h-en-late", HOMS_EN.title, HOMS_EN.text, hours=5)
    first = await assigner.assign(HOMS_EN, engine.classify(HOMS_EN.title, HOMS_EN.text))
    second = await assigner.assign(late, engine.classify(late.title, late.text))
    assert first != second


# Two events on one day, each told at full length with the same background paragraph: the story is where the
# title and the lead put it, not where the war's history went.
BACKGROUND = (
    "\n\nThe north has changed hands many times since 2011. Rebels took Aleppo and then Damascus in December "
    "2024, Turkish-backed factions seized Manbij and Tal Rifaat, and the Kurdish-led SDF still holds Raqqa and "
    "much of Hasakah. Israeli troops have moved into the buffer zone in Quneitra, and Islamic State cells "
    "still attack patrols in the desert around Palmyra and Deir ez-Zor. Aid agencies say millions remain "
    "displaced in camps near Idlib and Azaz.")
KOBANI = art("k-en", "Turkish drones strike SDF positions near Kobani",
             "Turkish drones struck positions of the Syrian Democratic Forces in villages south of Kobani on "
             "Tuesday, killing four fighters, the SDF said, the third such strike this week." + BACKGROUND,
             hours=3)
HIMS_AR = art("h-ar-long", "فصائل المعارضة تسيطر على حمص بعد انسحاب قوات النظام",
              "سيطرت فصائل المعارضة بقيادة هيئة تحرير الشام على مدينة حمص فجر الأحد بعد انسحاب الجيش السوري منها "
              "باتجاه الساحل، إثر سيطرتها على الرستن وتلبيسة شمالي المدينة، بحسب المرصد السوري لحقوق الإنسان وسكان "
              "في المدينة.\n\nوكانت الفصائل قد سيطرت على حلب وحماة خلال الأيام الماضية، فيما "
              "تسيطر قوات سوريا الديمقراطية على الرقة والحسكة، وتنتشر قوات إسرائيلية في القنيطرة منذ أيام، وتشن "
              "خلايا تنظيم الدولة هجمات في البادية قرب تدمر ودير الزور. وتقول وكالات الإغاثة إن ملايين النازحين "
              "ما زالوا في مخيمات قرب إدلب وأعزاز.", hours=4)


async def test_long_articles_group_by_their_lead_not_their_background(store: Store, engine: Engine) -> None:
    ids = await assign_all(store, engine, (HOMS_EN, KOBANI, HIMS_AR))
    assert ids["h-ar-long"] == ids["h-en"]  # Homs in both leads (and Rastan in the English one)
    assert ids["k-en"] != ids["h-en"]  # Kobani's background names Homs' neighbours, but its lead does not
    kobani = await db.get(store, ids["k-en"])
    assert kobani is not None and "raqqa" not in kobani.entities and "kobani" in kobani.entities
