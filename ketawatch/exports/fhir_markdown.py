"""A note's text for a FHIR `markdown` field (Annotation.text): shown as typed where it is rendered, readable where not.

FHIR types Annotation.text as markdown, so a receiving system may render it: a note reading "**stop**" or
"[results](http://...)" would turn into bold type or a link, and "1. dose" into a list (security review). FHIR also
asks that markdown stay readable without processing, so only what markdown could act on is escaped with a
backslash; "Dose raised to 0.6 mg/kg." goes out unchanged.
"""

from __future__ import annotations

import re

#: Characters that act inline wherever they stand (CommonMark and GitHub's tables and strikethrough): escapes,
#: code, emphasis, links and images, raw HTML and autolinks, table cells, strikethrough.
_INLINE = re.compile(r"([\\`*_\[\]<|~])")
#: An entity or character reference ("&amp;", "&#38;") would show as the character it names.
_ENTITY = re.compile(r"&(?=#|[A-Za-z])")
#: What starts a block at the start of a line: a heading, quote, list item, rule or heading underline
#: ("#", ">", "-", "+", "=") or an ordered list item ("1. " or "1)"; "12.5 mg" is none).
_BLOCK_START = re.compile(r"(?m)^([\u00a0]*)(?:([#>+=-])|(\d{1,9})([.)])(?=[ \t]|$))")
#: Spaces and tabs that begin a line: four make a code block; as no-break spaces the line keeps its look.
_LEADING_SPACE = re.compile(r"(?m)^[ \t]+")


def fhir_markdown(text: str) -> str:
    """`text` as markdown that renders as exactly these characters, line by line, and reads the same unrendered."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    escaped = _INLINE.sub(r"\\\1", lines)
    escaped = _ENTITY.sub(r"\\&", escaped)
    escaped = _LEADING_SPACE.sub(lambda m: "\u00a0" * len(m.group(0).expandtabs(4)), escaped)
    escaped = _BLOCK_START.sub(
        lambda m: m.group(1) + ("\\" + m.group(2) if m.group(2) else m.group(3) + "\\" + m.group(4)), escaped)
    return escaped.replace("\n", "  \n")  # each line break kept (a hard break), not joined into one line
