"""A stand-in CDN for the sample content: every image URL answers with a placeholder drawn for it.

The sample's assets (``titles/17/boxart.jpg?w=342&h=192&fit=crop``) point at a CDN that does not
exist on a machine without a network. This app draws, for any path and size, an SVG of that size in a
colour of its own with the asset's name on it, so the demo's pages look like pages. Responses are
cacheable for a day, as a CDN's would be. Not for production: a real deployment sets
``ingest.cdn_base`` to its CDN.
"""

from __future__ import annotations

import hashlib
from html import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["cdn_app", "placeholder"]

_MAX_SIDE = 4096


def placeholder(path: str, width: int, height: int) -> str:
    """An SVG of ``width`` × ``height`` whose colour and label come from ``path``."""
    digest = hashlib.blake2b(path.encode(), digest_size=3).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    parts = [p for p in path.split("/") if p]
    label = " ".join(parts[:2]) if len(parts) > 2 else path
    size = max(10, min(width, height) // 6)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
        f'<rect width="100%" height="100%" fill="hsl({hue},45%,32%)"/>'
        f'<text x="50%" y="50%" fill="hsl({hue},60%,85%)" font-family="sans-serif" font-size="{size}" '
        f'text-anchor="middle" dominant-baseline="middle">{escape(label)}</text></svg>'
    )


def _side(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name, "")
    return min(_MAX_SIDE, max(1, int(text))) if text.isdigit() else default


def cdn_app() -> Starlette:
    def image(request: Request) -> Response:
        path = request.path_params["path"]
        svg = placeholder(path, _side(request, "w", 320), _side(request, "h", 180))
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})

    return Starlette(routes=[Route("/{path:path}", image)])
