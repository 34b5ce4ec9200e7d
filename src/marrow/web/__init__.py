"""HTTP apps over the library: the store explorer (:mod:`marrow.web.explorer`), and later the editor,
preview, site and APIs. Each is a thin shell whose pages all have a JSON twin."""
