"""HTML case report (Jinja2 template ``templates/report.html.j2``).

The page is self-contained: overlay thumbnails are embedded as PNG data URIs (downscaled), so
the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path

import cv2
import jinja2

from livus.report.content import ReportContent

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
THUMBNAIL_WIDTH_PX = 640


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """One environment per process: it keeps the compiled template (recompiled when the file
    changes), instead of compiling it again for every report."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


def thumbnail_data_uri(path: Path, width_px: int = THUMBNAIL_WIDTH_PX) -> str:
    """PNG data URI of the image at ``path``, shrunk to at most ``width_px`` wide."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"{path}: cannot read overlay image")
    if img.shape[1] > width_px:
        scale = width_px / img.shape[1]
        img = cv2.resize(img, (width_px, max(1, round(img.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"{path}: cannot encode thumbnail")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _thumbnails(content: ReportContent) -> list[dict[str, str]]:
    seen: dict[Path, dict[str, str]] = {}
    for row in content.lesions:
        if row.overlay_path is None or not Path(row.overlay_path).is_file():
            continue
        entry = seen.get(row.overlay_path)
        if entry is None:
            seen[row.overlay_path] = {"src": thumbnail_data_uri(row.overlay_path), "caption": row.image}
    return list(seen.values())


def render_html(content: ReportContent) -> str:
    """The report page as a string."""
    template = _environment().get_template("report.html.j2")
    return template.render(c=content, thumbnails=_thumbnails(content))


def write_html(content: ReportContent, path: Path) -> Path:
    """Write the report page to ``path`` (UTF-8); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(content), encoding="utf-8")
    return path
