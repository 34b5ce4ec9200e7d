"""The CMS tests run over both engines (see cms_backends)."""

from cms_backends import clock, cms_store

__all__ = ["clock", "cms_store"]
