"""Griffe extension for the docs build: read a Google-style `Example:` section as `Examples:`.

Napoleon accepts both headings; griffe reads only `Examples:` as doctest code and renders `Example:` as plain text
(where `>>>` becomes a quote). jaxgrad's docstrings use `Example:`.
"""

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
