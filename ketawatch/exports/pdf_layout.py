"""The printed page shared by the case-review and caseload PDFs: Unicode font, header, footer, tables.

Built with fpdf2 alone (no browser), using DejaVu Sans from matplotlib's own data folder so every
server that can draw the charts can also print any patient's name. The footer carries the page
number ("Page 2 of 5"), when and by whom the document was generated, and whether it identifies
the patient, on every page, so a loose page is still traceable and its handling clear.
"""

from __future__ import annotations

import logging
import re
import types
import unicodedata
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib
from fpdf import FPDF, FontFace
from fpdf.enums import TableCellFillMode, XPos, YPos

from ketawatch.exports.deidentify import NO_TIME
from store.settings import get_settings

FONT = "DejaVu"
_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}
#: Scripts whose letters join, reorder or stack, which fpdf2 prints in reading order and joined only with text shaping
#: (HarfBuzz): right to left (Hebrew, Arabic, Syriac, Thaana, N'Ko and others, with their presentation forms), and the
#: scripts of South and South-East Asia (Devanagari to Sinhala, Thai, Lao, Tibetan, Myanmar, Khmer, Mongolian).
_NEEDS_SHAPING = re.compile("[\u0590-\u0dff\u0e00-\u0fff\u1000-\u109f\u1780-\u18af\ufb1d-\ufdff\ufe70-\ufefe"
                            "\U00010800-\U00010fff\U0001e800-\U0001efff]")
#: Control characters, which no font draws and fpdf2 left out, joining the words either side ("=2+2\tTAB" printed
#: "=2+2TAB", export review): each prints as a space. A line break (\n, \r) is fpdf2's own to handle.
_CONTROLS = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: What a character no loaded font has prints as: fpdf2 left it out, so a cut name looked whole (export review).
UNPRINTABLE_MARK = "\u25a1"
UNPRINTABLE_NOTE = (
    "{n} in this document could not be printed with the fonts on this server and show as \u25a1 "
    "(for example a name in a script DejaVu Sans does not cover, such as Chinese, Japanese or Korean, or an emoji). "
    "Check names and notes on screen. An administrator can add fonts with KETAWATCH_PDF_FALLBACK_FONTS."
)
#: The footer line of a page that holds one, where a name is read (export review: the note alone came at the end).
UNPRINTABLE_FOOTER = "\u25a1 marks a character the fonts on this server cannot print; see the note at the end"


class _NoRecordTextInLogs(logging.Filter):
    """fpdf2's missing-glyph warning quotes the characters, which come from names and notes: it is dropped, and the
    document itself says that something could not be printed (`ReviewPDF.finish`; such a character reaches fpdf2 as
    \u25a1 now, `ReviewPDF._printable`, so what could still be warned of is invisible)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "missing the following glyphs" not in str(record.msg)


logging.getLogger("fpdf.output").addFilter(_NoRecordTextInLogs())

#: How each level is printed: words and a filled-dot scale carry the meaning; grey shades only help. The words are the
#: screen's (a level is a prompt to look, not a finding: "pattern consistent with dependence" read as one on paper).
LEVEL_PRINT = {
    "green": ("GREEN: no warning pattern", "\u25cf\u25cb\u25cb", 255),
    "amber": ("AMBER: watch, review at the next visit", "\u25cf\u25cf\u25cb", 225),
    "red": ("RED: review now", "\u25cf\u25cf\u25cf", 190),
}
DISCLAIMER = (
    "KetaWatch supports clinical judgement and does not diagnose. The level summarises observations in "
    "the records against the clinic's thresholds; what they mean for this patient is the clinician's decision."
)
IDENTIFIED_MARK = "IDENTIFIED: contains personal data, handle as a clinical record"
DEIDENTIFIED_MARK = "DE-IDENTIFIED: pseudonym, dates shifted, notes and staff names removed"


def local_time_text(moment: datetime, tz: str) -> str:
    """A UTC moment as 'YYYY-MM-DD HH:MM (zone)' in the clinic's time zone."""
    return f"{moment.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M} ({tz})"


class ReviewPDF(FPDF):
    """An A4 document with KetaWatch's header and a traceable footer on every page."""

    def __init__(self, *, title: str, subject: str, generated: str, deidentified: bool, made_at: datetime | None,
                 orientation: str = "P"):
        super().__init__(orientation=orientation, unit="mm", format="A4")
        # the document's own date; none for a de-identified file, whose real date would give its date shifts away
        self.set_creation_date(NO_TIME if made_at is None else made_at)
        self._unprintable: set[int] = set()
        self._unprintable_pages: set[int] = set()
        for style, name in FONT_FILES.items():
            self.add_font(FONT, style, str(_FONT_DIR / name))
        fallbacks = []
        for i, path in enumerate(get_settings().fallback_font_files):
            self.add_font(f"Fallback{i}", "", str(path))
            fallbacks.append(f"Fallback{i}")
        if fallbacks:
            self.set_fallback_fonts(fallbacks, exact_match=False)
        self._fallback_cmap = frozenset(self._fallback_covered())
        self.doc_title = title
        self.subject_line = subject
        self.generated = generated
        self.deidentified = deidentified
        self.set_margins(12, 14, 12)
        self.set_auto_page_break(True, margin=16)
        self.set_title(title)
        self.set_creator("KetaWatch")
        self.set_font(FONT, size=9)

    def finish(self) -> bytes:
        """The document as bytes, ending with a note if some characters could only be printed as \u25a1."""
        # The last page's footer is drawn only while writing; check its text against the font now.
        self.set_font(FONT, size=6.5)
        self.normalize_text(self.generated)
        if self._unprintable:
            count = f"{len(self._unprintable)} character" + ("s" if len(self._unprintable) != 1 else "")
            self.paragraph(UNPRINTABLE_NOTE.format(n=count), size=7.5, style="B", height=3.6)
        return bytes(self.output())

    def normalize_text(self, text: str) -> str:
        """Every text fpdf2 draws or measures passes here first, so each is shaped or not before it is laid out."""
        text = self._printable(_CONTROLS.sub(" ", super().normalize_text(text)))
        self._shape_if_needed(text)
        return text

    def _printable(self, text: str) -> str:
        """Each character neither the current font nor a fallback font has becomes \u25a1, counted for the note and
        the page's footer: fpdf2 left it out, so a cut name looked whole (export review)."""
        if text.isascii() or self.current_font is None:  # DejaVu Sans has every printable ASCII character
            return text
        cmap, out = self.current_font.cmap, []
        for c in text:
            # a line break, and an invisible format character (a direction mark, say), are left to fpdf2
            if ord(c) in cmap or ord(c) in self._fallback_cmap or c in "\n\r" or unicodedata.category(c) == "Cf":
                out.append(c)
                continue
            out.append(UNPRINTABLE_MARK)
            self._unprintable.add(ord(c))
            if self._drawing():
                self._unprintable_pages.add(self.page)
        return "".join(out)

    def _drawing(self) -> bool:
        """False in fpdf2's dry runs (a table measuring a row), whose text may yet be drawn on the next page."""
        return isinstance(self._out, types.MethodType)  # fpdf2's _disable_writing swaps in a lambda

    def _shape_if_needed(self, text: str) -> None:
        """Shaping only for a text in a script that needs it: without it Arabic printed its letters reversed and unjoined
        (export review), and shaping every text made the demo patient's PDF about 50% slower."""
        needed = _NEEDS_SHAPING.search(text) is not None
        if needed != bool(self.text_shaping):
            self.set_text_shaping(needed)

    def _fallback_covered(self) -> set[int]:
        return {c for key, font in self.fonts.items() if key.startswith("fallback") for c in getattr(font, "cmap", {})}

    # ----- page furniture

    def header(self) -> None:
        self.set_font(FONT, "B", 8)
        self.set_text_color(60)
        self.cell(0, 4, self._fitted(f"KetaWatch \u00b7 {self.doc_title} \u00b7 ", self.subject_line),
                  new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(150)
        self.line(self.l_margin, self.get_y() + 0.5, self.w - self.r_margin, self.get_y() + 0.5)
        self.ln(3)
        self.set_text_color(0)
        self.set_font(FONT, size=9)

    def _fitted(self, lead: str, subject: str) -> str:
        """`lead` + `subject` on one line: a long name is shortened with an ellipsis, its "(ID)" at the end always kept."""
        if self.get_string_width(lead + subject) <= self.usable_width:
            return lead + subject
        name, tail = subject, ""
        if subject.endswith(")") and " (" in subject:
            name, tail = subject[:subject.rindex(" (")], subject[subject.rindex(" ("):]
        while name and self.get_string_width(f"{lead}{name}\u2026{tail}") > self.usable_width:
            name = name[:-1]
        return f"{lead}{name.rstrip()}\u2026{tail}"

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(FONT, size=6.5)
        self.set_text_color(70)
        mark = DEIDENTIFIED_MARK if self.deidentified else IDENTIFIED_MARK
        self.normalize_text(self.generated)  # a character of it the fonts lack is on this page too
        # Two lines by design: joined, they wrapped mid-phrase on a portrait page.
        lines = [self.generated, mark] + ([UNPRINTABLE_FOOTER] if self.page in self._unprintable_pages else [])
        self.multi_cell(self.usable_width - 24, 3, "\n".join(lines), new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.set_xy(self.w - self.r_margin - 24, -13)
        self.cell(24, 3, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0)

    # ----- text blocks

    @property
    def usable_width(self) -> float:
        return self.w - self.l_margin - self.r_margin

    def heading(self, text: str, size: float = 11.5, keep: float = 30) -> None:
        """A section heading, kept on the same page as the first `keep` mm of what follows."""
        if self.get_y() + 8 + keep > self.h - self.b_margin:
            self.add_page()
        self.ln(2)
        self.set_font(FONT, "B", size)
        self.cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FONT, size=9)

    def paragraph(self, text: str, size: float = 9, style: str = "", height: float = 4.4) -> None:
        """Wrapped body text across the page."""
        self.set_font(FONT, style, size)
        self.multi_cell(self.usable_width, height, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FONT, size=9)

    def bullet(self, text: str, size: float = 8.5) -> None:
        """One item of a list, indented under its bullet."""
        self.set_font(FONT, size=size)
        self.cell(4, 4.2, "\u2022")
        self.multi_cell(self.usable_width - 4, 4.2, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def warning_box(self, title: str, lines: list[str]) -> None:
        """A heavy-bordered box for what needs a clinician today, readable without colour."""
        self.set_line_width(0.8)
        self.set_font(FONT, "B", 10)
        text = "\n".join([title, *lines])
        self.multi_cell(self.usable_width, 5, text, border=1, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT,
                        padding=1.5)
        self.set_line_width(0.2)
        self.set_font(FONT, size=9)
        self.ln(1)

    def level_badge(self, level: str, detail: str) -> None:
        """The level in words, with a dot scale and a grey box: readable without colour."""
        words, dots, grey = LEVEL_PRINT.get(level, (level.upper(), "", 255))
        self.set_fill_color(grey)
        self.set_line_width(0.8 if level == "red" else 0.4)
        self.set_font(FONT, "B", 11)
        self.cell(self.usable_width, 8, f"  {dots}  {words}", border=1, fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_line_width(0.2)
        self.set_fill_color(255)
        self.set_font(FONT, size=8.5)
        self.cell(0, 5, detail, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FONT, size=9)

    def key_values(self, pairs: list[tuple[str, str]], label_width: float = 48) -> None:
        """A two-column fact list (label, value)."""
        self.set_font(FONT, size=8.5)
        with self.table(
            v_align="TOP",
            col_widths=(label_width, self.usable_width - label_width),
            width=self.usable_width,
            first_row_as_headings=False,
            line_height=4.6,
            borders_layout="HORIZONTAL_LINES",
            text_align=("LEFT", "LEFT"),
        ) as table:
            for label, value in pairs:
                row = table.row()
                row.cell(label, style=FontFace(emphasis="BOLD"))
                row.cell(value)
        self.set_font(FONT, size=9)

    def data_table(self, headings: list[str], rows: list[list[str]], widths: list[float], size: float = 7, align=None,
                   shaded: list[bool] | None = None) -> None:
        """A ruled table with a bold heading row repeated on every page it spans.

        Rows are shaded alternately, or where `shaded` says (to band several rows of one patient together)."""
        if not rows:
            self.paragraph("None in this period.", size=8, style="I")
            return
        self.set_font(FONT, size=size)
        self.set_draw_color(120)
        self.set_fill_color(246)
        rows, shaded = self._rows_that_fit(rows, widths, size * 0.5 + 0.6, shaded)
        with self.table(
            v_align="TOP",
            col_widths=tuple(widths),
            width=self.usable_width,
            line_height=size * 0.5 + 0.6,
            headings_style=FontFace(emphasis="BOLD", fill_color=(230, 230, 230)),
            cell_fill_mode=TableCellFillMode.ROWS if shaded is None else TableCellFillMode.NONE,
            cell_fill_color=(246, 246, 246),
            text_align=tuple(align) if align else "LEFT",
            repeat_headings=1,
        ) as table:
            table.row(headings)
            # Bands of one patient: a clearly grey band against white, visible in print too.
            band, plain = FontFace(fill_color=(226, 226, 226)), FontFace(fill_color=(255, 255, 255))
            for i, values in enumerate(rows):
                style = None if shaded is None else (band if shaded[i] else plain)
                table.row([str(v) for v in values], style=style)
        self.set_font(FONT, size=9)
        self.ln(1)

    def _rows_that_fit(self, rows: list[list[str]], widths: list[float], line_height: float,
                       shaded: list[bool] | None) -> tuple[list[list[str]], list[bool] | None]:
        """Rows too tall for one page (a long note) split into continuation rows, which fpdf2 cannot do itself.

        A table row never breaks across pages, so one cell taller than a page stopped the whole
        export. Each cell is wrapped at its column's width in the current font; a row with more
        lines than a page holds goes on in further rows marked "(continued)", none of it cut.
        """
        room = self.h - self.t_margin - self.b_margin - 40  # the page header, the repeated heading row, some slack
        most = max(4, int(room / line_height))
        scale = self.usable_width / sum(widths)
        out, bands = [], []
        for i, values in enumerate(rows):
            cells = [self.multi_cell(w * scale - 2 * self.c_margin - 0.5, line_height, str(v), dry_run=True,
                                     output="LINES") for v, w in zip(values, widths)]
            tallest = max((len(c) for c in cells), default=0)
            pieces = range(0, max(tallest, 1), most)
            for k, start in enumerate(pieces):
                if k == 0 and len(pieces) == 1:
                    out.append([str(v) for v in values])
                else:
                    part = ["\n".join(c[start:start + most]) for c in cells]
                    if k:
                        part[0] = "(continued)" + (f"\n{part[0]}" if part[0] else "")
                    out.append(part)
                bands.append(shaded[i] if shaded is not None else False)
        return out, (bands if shaded is not None else None)

    def figure(self, title: str, png: bytes, caption: str = "") -> None:
        """A chart image across the page, with its title kept on the same page."""
        import io

        from PIL import Image

        with Image.open(io.BytesIO(png)) as img:
            ratio = img.height / img.width
        height = self.usable_width * ratio
        if self.get_y() + height + 8 > self.h - self.b_margin:
            self.add_page()
        self.set_font(FONT, "B", 9)
        self.cell(0, 5, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.image(io.BytesIO(png), x=self.l_margin, w=self.usable_width)
        if caption:
            self.paragraph(caption, size=7, style="I", height=3.4)
        self.set_font(FONT, size=9)
        self.ln(1)

    def sign_off(self, lines: list[str]) -> None:
        """The reviewer's sign-off block: boxes to fill in by hand."""
        if self.get_y() > self.h - 75:
            self.add_page()
        self.heading("Reviewer sign-off")
        self.set_font(FONT, size=8.5)
        box_h = 9
        half = self.usable_width / 2
        for left, right in (("Reviewed by (name)", "Role"), ("Signature", "Date")):
            self.cell(half, box_h, f" {left}:", border=1)
            self.cell(half, box_h, f" {right}:", border=1, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.cell(self.usable_width, 5, " Decision and actions agreed:", border="LTR", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.cell(self.usable_width, 22, "", border="LBR", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)
        for line in lines:
            self.paragraph(line, size=7.5, style="I", height=3.6)
