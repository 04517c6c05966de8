"""The words and the font of a language: the one loader of the string catalogues (the page's
``report/templates/strings.yaml``, the figures' ``render/strings.yaml``: ``{language: {key: text}}``), and the
figures' language (``report.language``) as a context, the way matplotlib's ``rc_context`` holds its settings.

A stage draws inside ``with figure_language(cfg.report.language):``; every figure function and title helper takes its
words from :func:`words` (English outside any context). ``ko`` also sets matplotlib's font to NanumGothic, the TTFs that
the pip package koreanize-matplotlib ships (regular and :data:`BOLD`), registered by path (importing that package would
change the global rcParams), with DejaVu Sans after it for the glyphs NanumGothic lacks (U+2212 minus): matplotlib falls
back glyph by glyph (the compare chart puts DejaVu Sans first: NanumGothic draws arrows and the hyphen badly). ``en``
draws with DejaVu Sans, matplotlib's default, as before (English figures stay byte for byte), with NanumGothic after it
where installed, for the glyphs DejaVu Sans lacks: Hangul class names. A text of several lines is spaced as its
language needs (:data:`LINE_SPACING`, set by ``figures.space_lines`` as a figure is saved): Korean lines 1.2 em apart,
as DejaVu Sans sets English ones, where NanumGothic's own metrics made them touch.

To add a figure's string: a key in both tables of ``render/strings.yaml`` (the English text as drawn so far), then
``words()("key", name=value)`` in the figure's code.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from convlens.errors import ConvlensError
from convlens.pipeline.files import parse_yaml
from convlens.schema import LANGUAGES

# The font of a language whose letters matplotlib's own DejaVu Sans lacks: (its family, the pip package that ships
# it, the TTF's path inside that package).
FONTS = {"ko": ("NanumGothic", "koreanize_matplotlib", "fonts/NanumGothic.ttf")}
FALLBACK = "DejaVu Sans"  # matplotlib's own font: the glyphs the language's font lacks
# The bold TTFs beside a font of FONTS, registered with it: matplotlib's ``fontweight="bold"`` is weight 700,
# NanumGothicExtraBold.ttf's (NanumGothicBold.ttf is 600). Without one, bold text asks the family for a weight it
# lacks: matplotlib draws Hangul at 400 and logs "findfont: Failed to find font weight bold for NanumGothic".
BOLD = {"ko": ("NanumGothicExtraBold.ttf",)}
# The line spacing of a language whose font sets its lines too close, as matplotlib's fixed ``linespacing``: that
# many times the font's ascent + descent. NanumGothic's metrics (OS/2: ascent + descent 1 em, no line gap) make
# matplotlib's ``"normal"`` spacing 1 em, so a line of Hangul (a full em high) touches the next; DejaVu Sans'
# (ascent + descent 1 em, a gap of 0.2) make it 1.2 em, which 1.2 gives NanumGothic too. A language not here
# keeps ``"normal"`` (English figures as before).
LINE_SPACING = {"ko": 1.2}


@cache
def catalogue(package: str, resource: str) -> dict[str, dict[str, str]]:
    """A string catalogue ``{language: {key: text}}``: the YAML file ``resource`` of the installed ``package``."""
    text = resources.files(package).joinpath(*resource.split("/")).read_text(encoding="utf-8")
    return parse_yaml(text)


def counted(table: Mapping[str, str], key: str, count: int) -> str:
    """``key``'s text of ``table`` with ``{count}`` filled, or ``<key>_one``'s where ``count`` is 1 and the language
    has one (English's singular; Korean has no plural): ``1 epoch``, ``2 epochs``."""
    one = f"{key}_one"
    return table[one if count == 1 and one in table else key].format(count=count)


@dataclass(frozen=True)
class Strings:
    """The words of one language: ``t("key", name=value)`` is the text with its ``{name}`` placeholders filled.
    These are the figures' words; the page's are a subclass that names its own catalogue."""

    language: str
    package: ClassVar[str] = "convlens.render"
    resource: ClassVar[str] = "strings.yaml"

    def __post_init__(self) -> None:
        if self.language not in self.tables():
            raise ConvlensError(f"no strings for language {self.language!r}; choose one of {', '.join(LANGUAGES)}")

    @classmethod
    def tables(cls) -> dict[str, dict[str, str]]:
        return catalogue(cls.package, cls.resource)

    def __call__(self, key: str, **values: Any) -> str:
        return self.tables()[self.language][key].format(**values)

    def count(self, key: str, count: int) -> str:
        """``count`` things in words (:func:`counted`): ``1 epoch``, ``2 epochs``."""
        return counted(self.tables()[self.language], key, count)

    def columns(self, key: str, **values: Any) -> list[str]:
        """A table's header, written in the strings table as one comma-separated line."""
        return [c.strip() for c in self(key, **values).split(",")]

    def term(self, kind: str, value: str) -> str:
        """A value's word: the key ``{kind}_{value}`` (``model_trained``, ``split_test``), or the value itself where
        the catalogue has none (a split or method named by the user's data)."""
        key = f"{kind}_{value}"
        return self(key) if key in self.tables()[self.language] else str(value)


_current: ContextVar[Strings | None] = ContextVar("figure_words", default=None)


def words() -> Strings:
    """The figures' words in the language of the :func:`figure_language` being drawn; English outside one."""
    return _current.get() or Strings("en")


def line_spacing() -> float | None:
    """The :data:`LINE_SPACING` of :func:`words`' language; ``None``: matplotlib's ``"normal"``."""
    return LINE_SPACING.get(words().language)


def font_file(language: str) -> Path | None:
    """The TTF that draws ``language``'s letters (found without importing its package), or ``None`` for a language
    matplotlib's own fonts draw."""
    if language not in FONTS:
        return None
    _, package, resource = FONTS[language]
    spec = importlib.util.find_spec(package)
    path = Path(next(iter(spec.submodule_search_locations or []), "")) / resource if spec else None
    if path is None or not path.is_file():
        raise ConvlensError(
            f"report.language={language} draws its figures with {resource} of the pip package {package}, which is "
            f"missing; install it: pip install -c constraints.txt {package.replace('_', '-')}"
        )
    return path


@cache
def font_families(language: str) -> tuple[str, ...]:
    """matplotlib's ``font.family`` for ``language``, its fonts registered once, by path. A language of
    :data:`FONTS`: its font, then the fallback. Any other (``en``): the fallback first, so that Latin text is
    drawn as before, then every installed font of :data:`FONTS`, so that a class name in Hangul (a folder called
    고양이) is drawn by its font rather than as empty boxes; ``()`` where none is installed."""
    if language in FONTS:
        return (register_font(language), FALLBACK)
    installed = []
    for other in FONTS:
        try:
            installed.append(register_font(other))
        except ConvlensError:  # not installed: that script's letters are boxes, as matplotlib draws them alone
            continue
    return (FALLBACK, *installed) if installed else ()


def register_font(language: str) -> str:
    """Register ``language``'s font file, and its bold ones of :data:`BOLD` where installed beside it, with
    matplotlib and return its family (ConvlensError: not installed)."""
    path = font_file(language)
    from matplotlib import font_manager

    for file in (path, *(path.parent / name for name in BOLD.get(language, ()))):
        if file.is_file():
            font_manager.fontManager.addfont(str(file))
    return FONTS[language][0]


@contextmanager
def figure_language(language: str) -> Iterator[Strings]:
    """Draw in ``language``: :func:`words` gives its strings, and matplotlib its fonts (:func:`font_families`)."""
    t = Strings(language)
    token = _current.set(t)
    try:
        families = font_families(language)
        if not families:
            yield t
            return
        import matplotlib as mpl

        with mpl.rc_context({"font.family": list(families)}):
            yield t
    finally:
        _current.reset(token)


def accuracy_title(model: str, accuracy: float, images: int | str, split: str) -> str:
    """``trained: accuracy 0.9125 on 10000 test images``: evaluate's log line (in English: outside a
    :func:`~convlens.render.language.figure_language`), and a confusion matrix's title, whose ``images`` come
    written as the page writes them (``10,000``, :func:`~convlens.render.formats.number`)."""
    t = words()
    return t("accuracy_title", model=t.term("model", model), accuracy=f"{accuracy:.4f}", images=images,
             split=t.term("split", split))  # fmt: skip
