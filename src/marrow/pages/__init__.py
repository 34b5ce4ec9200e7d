"""Page construction: layouts from configuration, sections, assembly, fragments, deadlines and
fallbacks, personalisation and search — the read side of the content platform.

    from marrow import pages

    builder = pages.PageBuilder(pages.Layouts.load())
    fragment = builder.build(state, "home", pages.Visitor(country="DE", device="tv", profile=7))
"""

from marrow.pages.assembly import Card
from marrow.pages.catalogue import Catalogue, catalogue
from marrow.pages.construct import Fallback, Fragment, PageBuilder, Section
from marrow.pages.engagement import Engagement, EngagementStore, InMemoryEngagement, SqliteEngagement
from marrow.pages.faults import Fault, Faults
from marrow.pages.fragments import Cursor
from marrow.pages.layouts import Layout, Layouts, SectionSpec
from marrow.pages.ranking import FatigueRanker, HistoryReader, Ranker, Seen, TitleHistory
from marrow.pages.search import complete, search
from marrow.pages.sections import GENERATORS, Context, Generator, Row, Visitor

__all__ = [
    "GENERATORS",
    "Card",
    "Catalogue",
    "Context",
    "Cursor",
    "Engagement",
    "EngagementStore",
    "Fallback",
    "FatigueRanker",
    "Fault",
    "Faults",
    "Fragment",
    "Generator",
    "HistoryReader",
    "InMemoryEngagement",
    "Layout",
    "Layouts",
    "PageBuilder",
    "Ranker",
    "Row",
    "Section",
    "SectionSpec",
    "Seen",
    "SqliteEngagement",
    "TitleHistory",
    "Visitor",
    "catalogue",
    "complete",
    "search",
]
