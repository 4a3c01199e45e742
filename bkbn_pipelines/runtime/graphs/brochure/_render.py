"""Layout and rendering: the page plan, the PDF (reportlab) and the HTML (jinja2).

The PDF is A4 portrait: a cover (full-bleed hero photo, the palette as a strip, the
headline, address and price, key facts), gallery pages of up to four photos, a
floor-plan page when the brochure has the ``floor_plan`` parameter (the plan to scale, a
scale bar and the rooms with their areas; see ``_plan.py``), and a details page (the
body text, the facts table, the palette swatches with their hex codes). Photos are
cropped to their frames and embedded as JPEG; all text is real text in an embedded
TrueType font, Bitstream Vera Sans, which ships with reportlab (so every machine renders
the same brochure). It covers Latin-1 and the euro sign, so addresses such as
"Franche-Comté" or "Größe" print as written; characters outside it (Central European
letters such as "ł", CJK) are drawn as empty boxes. The HTML has the same parts with the
photos inlined as data URIs and the plan as inline SVG, so the file stands alone.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image, ImageOps
from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph

from ._palette import rgb_to_lab
from ._plan import draw_plan_page, fit_plan, plan_svg

__all__ = ["accent_colour", "fonts", "plan_layout", "render_html", "render_pdf"]

logger = logging.getLogger("bkbn_pipelines.runtime.brochure")

PAGE_W, PAGE_H = A4
MARGIN = 40.0
INK, MUTED, RULE = HexColor("#1f1f1f"), HexColor("#6b6b6b"), HexColor("#e4dfd7")
_TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def fonts() -> tuple[str, str]:
    """(regular, bold) font names registered with reportlab."""
    import reportlab

    bundled = Path(reportlab.__file__).resolve().parent / "fonts"
    for regular, bold in [(str(bundled / "Vera.ttf"), str(bundled / "VeraBd.ttf"))]:
        if Path(regular).is_file() and Path(bold).is_file():
            pdfmetrics.registerFont(TTFont("BrochureSans", regular))
            pdfmetrics.registerFont(TTFont("BrochureSans-Bold", bold))
            return "BrochureSans", "BrochureSans-Bold"
    logger.warning("brochure: no TrueType font found; Helvetica covers Latin-1 only")
    return "Helvetica", "Helvetica-Bold"


def accent_colour(palette: Sequence[Mapping[str, Any]]) -> str:
    """The most colourful palette colour that is dark enough for text; else charcoal."""
    best, best_chroma = "#3a3a3a", 12.0
    for colour in palette:
        lab = rgb_to_lab(colour["rgb"])
        chroma = float((lab[1] ** 2 + lab[2] ** 2) ** 0.5)
        if colour["weight"] >= 0.04 and 25 <= lab[0] <= 62 and chroma > best_chroma:
            best, best_chroma = colour["hex"], chroma
    return best


def _gallery_boxes(count: int, top: float, bottom: float) -> list[list[float]]:
    """Photo frames [x, y, w, h] (points, origin bottom-left) for 1 to 4 photos."""
    left, width, gap = MARGIN, PAGE_W - 2 * MARGIN, 10.0
    height = top - bottom
    half_w, half_h = (width - gap) / 2, (height - gap) / 2
    if count == 1:
        return [[left, bottom, width, height]]
    if count == 2:
        return [[left, bottom + half_h + gap, width, half_h], [left, bottom, width, half_h]]
    if count == 3:
        return [
            [left, bottom + half_h + gap, width, half_h],
            [left, bottom, half_w, half_h],
            [left + half_w + gap, bottom, half_w, half_h],
        ]
    return [
        [left, bottom + half_h + gap, half_w, half_h],
        [left + half_w + gap, bottom + half_h + gap, half_w, half_h],
        [left, bottom, half_w, half_h],
        [left + half_w + gap, bottom, half_w, half_h],
    ]


def plan_layout(
    photos: Sequence[Mapping[str, Any]],
    copy: Mapping[str, Any],
    palette: Sequence[Any],
    floor_plan: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The page plan: which photo goes in which frame, and what text on which page.

    ``floor_plan`` is a plan made ready by :func:`._plan.prepare_plan`; with it a
    ``floor_plan`` page comes before the details page.
    """
    pages: list[dict[str, Any]] = []
    hero = [0.0, PAGE_H * 0.40, PAGE_W, PAGE_H * 0.60]
    pages.append(
        {
            "kind": "cover",
            "photos": [{"position": 0, "box": hero}] if photos else [],
            "text": ["headline", "address", "price", "keyfacts", "palette_strip"],
        }
    )
    rest = list(range(1, len(photos)))
    for start in range(0, len(rest), 4):
        chunk = rest[start : start + 4]
        boxes = _gallery_boxes(len(chunk), PAGE_H - 70, 60)
        pages.append(
            {
                "kind": "gallery",
                "photos": [
                    {"position": p, "box": [round(v, 2) for v in box]}
                    for p, box in zip(chunk, boxes, strict=True)
                ],
                "text": ["captions"],
            }
        )
    if floor_plan is not None:
        pages.append(
            {
                "kind": "floor_plan",
                "photos": [],
                "text": ["title", "plan", "scale_bar", "rooms"],
                "plan": fit_plan(floor_plan, MARGIN, PAGE_W - MARGIN, PAGE_H - 100, 60),
            }
        )
    pages.append(
        {
            "kind": "details",
            "photos": [],
            "text": ["body", "facts", "palette", "contact_sheet"],
        }
    )
    return {
        "page_size": "A4",
        "orientation": "portrait",
        "width_pt": round(PAGE_W, 2),
        "height_pt": round(PAGE_H, 2),
        "accent": accent_colour(palette),
        "pages": pages,
    }


def _fit(image: Image.Image, width_pt: float, height_pt: float, dpi: int = 150) -> bytes:
    """The photo cropped to the frame's shape at ``dpi``, as JPEG bytes."""
    size = (max(1, round(width_pt / 72 * dpi)), max(1, round(height_pt / 72 * dpi)))
    fitted = ImageOps.fit(image, size, Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    buf = io.BytesIO()
    fitted.save(buf, format="JPEG", quality=84, optimize=True)
    return buf.getvalue()


def _keyfacts(copy: Mapping[str, Any]) -> list[dict[str, str]]:
    wanted = {"Bedrooms": "bedrooms", "Bathrooms": "bathrooms", "Living area": "living area"}
    return [
        {"label": wanted[row["label"]], "value": row["value"]}
        for row in copy["facts"]
        if row["label"] in wanted
    ]


def render_pdf(
    layout: Mapping[str, Any],
    images: Sequence[Image.Image],
    captions: Sequence[str],
    copy: Mapping[str, Any],
    palette: Sequence[Mapping[str, Any]],
    *,
    footer: str,
    floor_plan: Mapping[str, Any] | None = None,
) -> bytes:
    regular, bold = fonts()
    accent = HexColor(layout["accent"])
    buf = io.BytesIO()
    pdf = Canvas(buf, pagesize=A4, pageCompression=1, invariant=1)
    pdf.setTitle(copy["headline"])
    pdf.setAuthor("bkbn_pipelines")
    pdf.setSubject(copy.get("address") or copy["headline"])

    def photo(position: int, box: Sequence[float]) -> None:
        x, y, w, h = box
        pdf.drawImage(ImageReader(io.BytesIO(_fit(images[position], w, h))), x, y, w, h)

    def strip(y: float, height: float) -> None:
        x = 0.0
        for colour in palette:
            w = PAGE_W * colour["weight"]
            pdf.setFillColor(HexColor(colour["hex"]))
            pdf.rect(x, y, w + 0.5, height, stroke=0, fill=1)
            x += w

    def foot(number: int) -> None:
        pdf.setFont(regular, 8)
        pdf.setFillColor(MUTED)
        pdf.drawString(MARGIN, 24, footer)
        pdf.drawRightString(PAGE_W - MARGIN, 24, str(number))

    for number, page in enumerate(layout["pages"], start=1):
        if page["kind"] == "cover":
            for item in page["photos"]:
                photo(item["position"], item["box"])
            strip(PAGE_H * 0.40 - 8, 8)
            y = PAGE_H * 0.40 - 56
            pdf.setFillColor(INK)
            for line in simpleSplit(copy["headline"], bold, 28, PAGE_W - 2 * MARGIN)[:3]:
                pdf.setFont(bold, 28)
                pdf.drawString(MARGIN, y, line)
                y -= 34
            if copy.get("address"):
                pdf.setFont(regular, 13)
                pdf.setFillColor(MUTED)
                for line in simpleSplit(copy["address"], regular, 13, PAGE_W - 2 * MARGIN)[:2]:
                    pdf.drawString(MARGIN, y, line)
                    y -= 18
            if copy.get("price"):
                y -= 10
                pdf.setFont(bold, 22)
                pdf.setFillColor(accent)
                pdf.drawString(MARGIN, y, copy["price"])
                y -= 20
            facts = _keyfacts(copy)
            if facts:
                y -= 40
                pdf.setStrokeColor(RULE)
                pdf.line(MARGIN, y + 40, PAGE_W - MARGIN, y + 40)
                col = (PAGE_W - 2 * MARGIN) / max(3, len(facts))
                for i, fact in enumerate(facts):
                    pdf.setFont(bold, 18)
                    pdf.setFillColor(INK)
                    pdf.drawString(MARGIN + i * col, y + 10, fact["value"])
                    pdf.setFont(regular, 9)
                    pdf.setFillColor(MUTED)
                    pdf.drawString(MARGIN + i * col, y - 4, fact["label"].upper())
        elif page["kind"] == "gallery":
            strip(PAGE_H - 8, 8)
            pdf.setFont(bold, 10)
            pdf.setFillColor(accent)
            pdf.drawString(MARGIN, PAGE_H - 48, "GALLERY")
            for item in page["photos"]:
                photo(item["position"], item["box"])
                x, y = item["box"][0], item["box"][1]
                label = captions[item["position"]].replace("_", " ").capitalize()
                if label == "Room":
                    continue  # a room nobody named: no caption
                width = pdf.stringWidth(label, regular, 9) + 14
                pdf.setFillColor(HexColor("#ffffff"))
                pdf.rect(x + 8, y + 8, width, 16, stroke=0, fill=1)
                pdf.setFillColor(INK)
                pdf.setFont(regular, 9)
                pdf.drawString(x + 15, y + 13, label)
        elif page["kind"] == "floor_plan" and floor_plan is not None:
            strip(PAGE_H - 8, 8)
            pdf.setFont(bold, 10)
            pdf.setFillColor(accent)
            pdf.drawString(MARGIN, PAGE_H - 48, "FLOOR PLAN")
            pdf.setFont(bold, 18)
            pdf.setFillColor(INK)
            pdf.drawString(MARGIN, PAGE_H - 74, page["plan"]["title"])
            draw_plan_page(
                pdf,
                floor_plan,
                page["plan"],
                regular=regular,
                bold=bold,
                accent=accent,
                right=PAGE_W - MARGIN,
            )
        else:
            strip(PAGE_H - 8, 8)
            top = PAGE_H - 70
            column = (PAGE_W - 2 * MARGIN - 30) * 0.56
            pdf.setFont(bold, 10)
            pdf.setFillColor(accent)
            pdf.drawString(MARGIN, top, "THE HOME")
            pdf.setFont(bold, 18)
            pdf.setFillColor(INK)
            heading_y = top - 30
            for line in simpleSplit(copy["headline"], bold, 18, column)[:5]:
                pdf.drawString(MARGIN, heading_y, line)
                heading_y -= 23
            style = ParagraphStyle("body", fontName=regular, fontSize=11, leading=17, textColor=INK)
            body = Paragraph(_escape(copy["body"]) or "&nbsp;", style)
            _, height = body.wrap(column, PAGE_H)
            body_bottom = heading_y - 6 - height
            body.drawOn(pdf, MARGIN, body_bottom)
            right = MARGIN + column + 30
            width = PAGE_W - MARGIN - right
            pdf.setFont(bold, 10)
            pdf.setFillColor(accent)
            pdf.drawString(right, top, "FACTS")
            y = top - 26
            for row in copy["facts"]:
                pdf.setFont(regular, 9)
                pdf.setFillColor(MUTED)
                pdf.drawString(right, y, row["label"].upper())
                pdf.setFont(regular, 11)
                pdf.setFillColor(INK)
                lines = simpleSplit(row["value"], regular, 11, width)[:3]
                for line in lines:
                    y -= 14
                    pdf.drawString(right, y, line)
                y -= 10
                pdf.setStrokeColor(RULE)
                pdf.line(right, y, PAGE_W - MARGIN, y)
                y -= 16
            label_y = max(200.0, min(body_bottom, y) - 40)
            pdf.setFont(bold, 10)
            pdf.setFillColor(accent)
            pdf.drawString(MARGIN, label_y, "PALETTE")
            size, gap = 72.0, 14.0
            for i, colour in enumerate(palette):
                x = MARGIN + i * (size + gap)
                pdf.setFillColor(HexColor(colour["hex"]))
                pdf.setStrokeColor(RULE)
                pdf.rect(x, label_y - 16 - size, size, size, stroke=1, fill=1)
                pdf.setFont(regular, 9)
                pdf.setFillColor(INK)
                pdf.drawString(x, label_y - 30 - size, colour["hex"].upper())
                pdf.setFillColor(MUTED)
                pdf.drawString(x, label_y - 42 - size, f"{colour['weight'] * 100:.0f} %")
            _contact_sheet(pdf, images, captions, label_y - 42 - size - 40, accent, bold, regular)
        foot(number)
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def _contact_sheet(
    pdf: Canvas,
    images: Sequence[Image.Image],
    captions: Sequence[str],
    top: float,
    accent: HexColor,
    bold: str,
    regular: str,
) -> None:
    """Small prints of every photo, four to a row, as far down as the page allows."""
    if len(images) < 2:
        return
    gap, columns = 10.0, 4
    width = (PAGE_W - 2 * MARGIN - gap * (columns - 1)) / columns
    height = width * 0.72
    rows = min(math.ceil(len(images) / columns), int((top - 20 - 60) // (height + gap + 14)))
    if rows < 1:
        return
    pdf.setFont(bold, 10)
    pdf.setFillColor(accent)
    pdf.drawString(MARGIN, top, "IN THE PHOTOS")
    for i, image in enumerate(images[: rows * columns]):
        row, col = divmod(i, columns)
        x = MARGIN + col * (width + gap)
        y = top - 14 - (row + 1) * height - row * (gap + 14)
        pdf.drawImage(
            ImageReader(io.BytesIO(_fit(image, width, height, dpi=110))), x, y, width, height
        )
        label = captions[i].replace("_", " ").capitalize()
        if label != "Room":
            pdf.setFont(regular, 8)
            pdf.setFillColor(MUTED)
            pdf.drawString(x, y - 11, label)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _data_uri(image: Image.Image, long_side: int) -> str:
    small = image.copy()
    small.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=80, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_HTML = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(
    layout: Mapping[str, Any],
    images: Sequence[Image.Image],
    captions: Sequence[str],
    copy: Mapping[str, Any],
    palette: Sequence[Mapping[str, Any]],
    *,
    footer: str,
    floor_plan: Mapping[str, Any] | None = None,
) -> bytes:
    """One self-contained HTML file: photos inlined as JPEG data URIs, the floor plan
    (when given) as inline SVG."""
    cover = None
    if images:
        cover = {"src": _data_uri(images[0], 1600), "room": captions[0]}
    gallery = [
        {"src": _data_uri(images[i], 900), "room": captions[i]} for i in range(1, len(images))
    ]
    html = _HTML.get_template("brochure.html.j2").render(
        copy=copy,
        palette=palette,
        accent=layout["accent"],
        cover=cover,
        gallery=gallery,
        keyfacts=_keyfacts(copy),
        footer=footer,
        plan=_html_plan(floor_plan),
    )
    return html.encode("utf-8")


def _html_plan(floor_plan: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if floor_plan is None:
        return None
    return {
        # plan_svg escapes the plan's text itself (labels are user input): the template
        # inserts it as it is
        "svg": plan_svg(floor_plan),
        "rooms": [{"name": r["name"], "area": r["area_text"]} for r in floor_plan["rooms"]],
    }
