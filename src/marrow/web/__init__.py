"""HTTP apps over the library: the store explorer (:mod:`marrow.web.explorer`), the impression history
API (:mod:`marrow.web.impressions`), and later the editor, preview, site and APIs. Each is a thin
shell; every page has a JSON twin (the impression history API is JSON only)."""
