"""Build the optional C accelerator for the store's hot paths.

The extension is optional: where no C compiler is available the build carries on without it and
marrow.store falls back to its numpy / pure-Python implementation of the same functions.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "marrow.store._speedups",
            sources=["src/marrow/store/_speedups.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ]
)
