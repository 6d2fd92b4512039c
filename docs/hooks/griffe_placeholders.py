"""griffe extension for the API pages: a docstring's placeholders (``outputs/<date>/<run>``, ``"## <title>"``)
written outside inline code are shown as text, not passed to the page as HTML tags (which a browser
hides, or, for ``<title>``, reads as the start of the document's title)."""

from __future__ import annotations

import re

import griffe

# A `<word...>` outside backticks; code spans are matched first and kept as they are.
PIECES = re.compile(r"(``.*?``|`[^`]*`)|<([A-Za-z][^<>\n]*)>")


def escape(text: str) -> str:
    return PIECES.sub(lambda m: m.group(1) or f"&lt;{m.group(2)}&gt;", text)


class Placeholders(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = escape(obj.docstring.value)
