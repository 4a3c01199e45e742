"""The light checks behind the asset checks: floor-plan polygons and brochure pages."""

import io

from reportlab.pdfgen import canvas

from bkbn_pipelines.assets import pdf_page_count, plan_polygon_problems


def _pdf(pages: int) -> bytes:
    buffer = io.BytesIO()
    document = canvas.Canvas(buffer)
    for number in range(pages):
        document.drawString(100, 700, f"page {number + 1}")
        document.showPage()
    document.save()
    return buffer.getvalue()


def test_pdf_pages_are_counted() -> None:
    assert pdf_page_count(_pdf(3)) == 3
    assert pdf_page_count(_pdf(1)) == 1
    assert pdf_page_count(b"<html>not a pdf</html>") == 0
    assert pdf_page_count(b"%PDF-1.4\n%%EOF") == 0


def test_valid_rooms_pass() -> None:
    plan = {
        "rooms": [
            {"label": "living", "polygon": [[0, 0], [5, 0], [5, 4], [0, 4], [0, 0]]},
            {"label": "kitchen", "polygon": [[5, 0], [8, 0], [8, 4], [5, 4]]},
        ]
    }
    problems, rooms, area = plan_polygon_problems(plan)
    assert problems == [] and rooms == 2 and area == 32


def test_bad_rooms_are_named() -> None:
    plan = {
        "rooms": [
            {"label": "bowtie", "polygon": [[0, 0], [4, 4], [4, 0], [0, 4]]},
            {"label": "flat", "polygon": [[0, 0], [4, 0], [8, 0]]},
            {"label": "junk", "polygon": [["a", "b"], [1, 2], [3, 4]]},
        ]
    }
    problems, rooms, _ = plan_polygon_problems(plan)
    assert rooms == 3
    assert any("bowtie" in p and "not valid" in p for p in problems)
    assert any("flat" in p for p in problems)
    assert any("junk" in p and "unreadable" in p for p in problems)
    assert plan_polygon_problems({"rooms": []})[0] == ["the plan has no rooms"]
    assert plan_polygon_problems(None)[0] == ["the plan is not a JSON object"]
