"""HTML pages (the report, the comparison page) from the Jinja2 templates in ``templates/``.

CSS and the page's one script are inline and nothing is fetched from the network, so a page opens from
``file://``. Its images are either ``data:`` URIs (one file that can be mailed as it is) or files in the page's
folder, referred to by relative paths (``assets.Assets`` decides; the report's figures are files, so the page stays
light however many samples it shows). Its content is a list of :class:`Section`, each a list of blocks
(:class:`Figure`, :class:`Gallery`, :class:`Table`, :class:`Note`, :class:`Text`); the words come from
``strings.yaml``, one table per language, through :class:`Strings`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import yaml
from markupsafe import Markup, escape

from convlens.render import language
from convlens.render.formats import number, percent  # noqa: F401  (the sections' formatting, per language)
from convlens.report.fonts import hangul_font_face


def string_tables() -> dict[str, dict[str, str]]:
    """``strings.yaml``: ``{language: {key: text}}``, read from the installed package."""
    return Strings.tables()


class Strings(language.Strings):
    """The page's words of one language: ``t("key", name=value)`` is the text with its ``{name}`` placeholders
    filled; loaded as the figures' words are (:mod:`convlens.render.language`), from the page's own catalogue."""

    package: ClassVar[str] = "convlens.report"
    resource: ClassVar[str] = "templates/strings.yaml"


@dataclass(frozen=True)
class Image:
    src: str  # a data: URI, or a path relative to the page
    alt: str  # its label, shown under it; its alt text names its section's figures too (``Section.figures``)
    href: str = ""  # a thumbnail's full-size figure (relative to the page), opened by a click

    @property
    def link(self) -> str:
        """What a click on it opens: a thumbnail's full-size figure, else its own file; nothing inline (a ``data:``
        URI, which browsers do not open as a page)."""
        return self.href or ("" if self.src.startswith("data:") else self.src)


@dataclass(frozen=True)
class Figure:
    """Images shown side by side under one caption, each linked to its file (shown narrower than it is drawn);
    ``wide``: one under the other, each the column's full width (a grid of 3×3 filters, whose cells side by side
    would be a few pixels each)."""

    kind: ClassVar[str] = "figure"
    images: list[Image]
    caption: str
    wide: bool = False


@dataclass(frozen=True)
class Gallery:
    """Thumbnails in a grid under one caption, each labelled by its ``alt`` and linked to its full-size figure."""

    kind: ClassVar[str] = "gallery"
    images: list[Image]
    caption: str


@dataclass(frozen=True)
class Table:
    kind: ClassVar[str] = "table"
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    folded: bool = False  # long tables: a <details> the reader opens

    @property
    def numeric(self) -> set[int]:
        """The columns whose every cell is a number: aligned right."""
        return {
            i
            for i in range(len(self.columns))
            if self.rows and all(NUMERIC.fullmatch(row[i]) for row in self.rows if row[i])
        }


@dataclass(frozen=True)
class Note:
    """Something missing (a stage not run yet), shown as a note instead of its figure or table."""

    kind: ClassVar[str] = "note"
    text: str


@dataclass(frozen=True)
class Text:
    kind: ClassVar[str] = "text"
    text: str


NUMERIC = re.compile(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?( ?%)?|–")


Block = Figure | Gallery | Table | Note | Text


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)
    level: int = 2
    figures: str = ""  # what its figures are ("weight histogram"): each image's alt text says it before its label


CODE = re.compile(r"`([^`\n]+)`")  # the strings' one markup: a `command` or `path`


def inline_code(text: str) -> Markup:
    """A string of the page as HTML: escaped, its backtick spans as ``<code>`` (``dvc repro`` as code, not between
    literal backticks)."""
    return Markup(CODE.sub(r"<code>\1</code>", str(escape(text))))


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image(path: Path, alt: str) -> Image | None:
    """The PNG at ``path`` embedded as a data: URI, or None when it is not there (yet)."""
    try:
        return Image(data_uri(path.read_bytes()), alt)
    except FileNotFoundError:
        return None


def flat_items(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` → ``[("a.b", 1)]``: nested mappings as dotted keys, lists kept whole."""
    items: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            items.extend(flat_items(value, f"{prefix}{key}."))
        else:
            items.append((f"{prefix}{key}", value))
    return items


def param_text(value: Any) -> str:
    """A param's value as ``params.yaml`` writes it inline (``[conv2d, conv2d_1]``, ``null``)."""
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6).removesuffix("...\n").strip()


@cache
def environment():
    """The Jinja2 environment: templates from the package, HTML autoescaped, an undefined name an error."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("convlens.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["inline_code"] = inline_code
    return env


FONT_FACE = "/* the page's Hangul font */"  # base.html.j2's <style> holds it; render puts the @font-face there


def render(template: str, t: Strings, title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """One page: ``template`` (extending ``base.html.j2``) with its sections, in ``t``'s language; the NanumGothic
    glyphs of its Hangul embedded (:func:`~convlens.report.fonts.hangul_font_face`)."""
    page = environment().get_template(template).render(t=t, title=title, subtitle=subtitle, sections=sections)
    return page.replace(FONT_FACE, hangul_font_face(page), 1)
