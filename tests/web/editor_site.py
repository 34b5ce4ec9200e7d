"""The editor app over a seeded CMS, both channels ingested into test writers, and one editor
(``ana`` / :data:`PASSWORD`): what the editor's HTTP and browser tests start from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette

from cms_content import NOW, article, seed
from marrow.cms import CMS, SQLiteDatabase
from marrow.ingest import Ingestion
from marrow.ingest.testing import StateWriter
from marrow.pages import GENERATORS, Layouts, PageBuilder
from marrow.web.editor import EditorSettings, editor_app
from marrow.web.site import SiteSettings, site_app

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LOGIN = re.compile(r'name="login_token" value="([^"]+)"')


@dataclass
class Site:
    cms: CMS
    live: StateWriter
    preview: StateWriter
    ingestion: Ingestion
    app: Starlette


def build(directory: Path, secure_cookies: bool = False) -> Site:
    """A CMS in ``directory`` with the seed content, story 1 saved and published, and editor ana."""
    cms = CMS(SQLiteDatabase(directory / "cms.db"))
    seed(cms)
    cms.editors.add("ana", PASSWORD, "Ana Silva")
    live, preview = StateWriter(), StateWriter()
    ingestion = Ingestion(cms, {"live": live, "preview": preview}, clock=lambda: NOW)
    cms.save("story", None, article(), base=None, editor="ana")
    cms.publish("story", 1, editor="ana")
    ingestion.ingest_pending().raise_for_errors()
    builder = PageBuilder(Layouts.load(generators=GENERATORS), editorial=True)  # as the platform builds
    preview_site = site_app(preview.views(), builder, SiteSettings(public_max_age=0))
    app = editor_app(cms, ingestion.ingest, preview_site, EditorSettings(secure_cookies=secure_cookies))
    return Site(cms, live, preview, ingestion, app)
