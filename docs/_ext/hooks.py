"""MkDocs hooks of the documentation site (named in mkdocs.yml).

* The notebooks stay in ``notebooks/`` at the repository root; they are added to the site as
  ``notebooks/*.ipynb`` pages, which mkdocs-jupyter renders (and executes, see mkdocs.yml).
* MathJax is served from the site itself (the copy that ``jupyter-server-mathjax`` ships, a
  dependency of the ``docs`` extra), so equations render offline.
* The figure of the home page is drawn by ``probsnn demo`` during the build.
* The gallery collects the figures of the executed notebooks, each linked to the notebook section
  that draws it (the images are written to ``assets/gallery/``).
* The notebooks' kernels ignore tqdm's warning that ipywidgets is missing (NumPyro imports
  ``tqdm.auto``); the site shows no progress bars, and the warning would open every notebook.
* Docstrings cite the theory pages as "docs/theory.md §N" and "docs/learning.md": on the API
  pages these become links to the section.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import logging
import os
import re
import tempfile
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url

LOG = logging.getLogger("mkdocs.plugins.probsnn")
REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
GALLERY_MARKER = "<!-- gallery -->"
HEADING_OR_IMAGE = re.compile(
    r'<h(?P<level>[1-3]) id="(?P<id>[^"]+)"[^>]*>(?P<title>.*?)</h(?P=level)>'
    r'|<img [^>]*src="data:image/png;base64,(?P<png>[^"]+)"',
    re.DOTALL,
)
TAG = re.compile(r"<[^>]+>")
_gallery_images: dict[str, bytes] = {}
CITATION = re.compile(r"docs/(?P<page>theory|learning)\.md(?:\s+§(?P<section>\d+)(?:\.\d+)*)?")


def on_config(config):
    # inherited by the kernels that mkdocs-jupyter starts
    quiet = "ignore:IProgress not found"
    current = os.environ.get("PYTHONWARNINGS", "")
    if quiet not in current:
        os.environ["PYTHONWARNINGS"] = f"{current},{quiet}" if current else quiet
    return config


def _demo_figure() -> bytes:
    """Run ``probsnn demo`` (the README's command) and return its figure as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from probsnn import cli

    with tempfile.TemporaryDirectory(prefix="probsnn-docs-") as folder:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            status = cli.main(["demo", "--out", folder])
        for line in printed.getvalue().splitlines():
            LOG.info("probsnn demo: %s", line)
        figure = Path(folder) / "demo.png"
        if status != 0 or not figure.exists():
            raise RuntimeError(f"probsnn demo exited with {status} and wrote no {figure.name}")
        return figure.read_bytes()


def _mathjax_root() -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError as error:  # pragma: no cover - the docs extra installs it
        raise RuntimeError(
            'the docs build serves MathJax from jupyter-server-mathjax: pip install -e ".[docs]"'
        ) from error
    return Path(jupyter_server_mathjax.__file__).parent / "static"


@event_priority(100)  # before mkdocs-jupyter wraps the notebooks
def on_files(files: Files, config) -> Files:
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        files.append(
            File(
                f"notebooks/{notebook.name}",
                src_dir=str(REPO),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    files.append(File.generated(config, "assets/figures/demo.png", content=_demo_figure()))
    root = _mathjax_root()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            uri = f"assets/mathjax/{path.relative_to(root).as_posix()}"
            if files.get_file_from_path(uri) is None:
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_content(html: str, page, config, files) -> str:
    if not page.file.src_uri.startswith(("api/", "notebooks/")):
        return html

    def link(match: re.Match) -> str:
        target = files.get_file_from_path(f"{match['page']}.md")
        url = get_relative_url(target.url, page.url)
        anchor = f"#s{match['section']}" if match["section"] else ""
        return f'<a href="{url}{anchor}">{match[0]}</a>'

    return CITATION.sub(link, html)


def on_serve(server, config, builder):
    server.watch(str(NOTEBOOKS))
    server.watch(str(REPO / "probsnn"))
    server.watch(str(REPO / "models"))
    server.watch(str(REPO / "inference"))
    return server


def _notebook_figures(page) -> list[tuple[str, str, bytes]]:
    """(section id, section title, PNG bytes) of every figure of a rendered notebook page."""
    section_id, section_title = "", page.title
    figures = []
    for match in HEADING_OR_IMAGE.finditer(page.content or ""):
        if match["png"] is None:
            section_id = match["id"]
            section_title = html.unescape(TAG.sub("", match["title"])).replace("¶", "").strip()
        else:
            figures.append((section_id, section_title, base64.b64decode(match["png"])))
    return figures


def on_env(env, config, files):
    """Fill the gallery page with the notebooks' figures (every page is rendered by now)."""
    gallery = files.get_file_from_path("gallery.md")
    if gallery is None or gallery.page is None or GALLERY_MARKER not in gallery.page.content:
        return env
    _gallery_images.clear()
    parts = []
    for file in files.documentation_pages():
        if not file.src_uri.startswith("notebooks/"):
            continue
        figures = _notebook_figures(file.page)
        notebook_url = get_relative_url(file.url, gallery.page.url)
        title = html.escape(file.page.title or file.name)
        parts.append(f'<h2 id="{file.name}"><a href="{notebook_url}">{title}</a></h2>')
        if not figures:
            parts.append("<p>No figures: the notebooks were not executed in this build.</p>")
            continue
        parts.append('<div class="probsnn-gallery">')
        for number, (section_id, section_title, png) in enumerate(figures, start=1):
            uri = f"assets/gallery/{file.name}-{number}.png"
            _gallery_images[uri] = png
            link = f"{notebook_url}#{section_id}" if section_id else notebook_url
            image_url = get_relative_url(uri, gallery.page.url)
            parts.append(
                f'<figure><a href="{link}"><img src="{image_url}" loading="lazy" '
                f'alt="{html.escape(section_title)}"></a>'
                f'<figcaption><a href="{link}">{html.escape(section_title)}</a></figcaption>'
                "</figure>"
            )
        parts.append("</div>")
    gallery.page.content = gallery.page.content.replace(GALLERY_MARKER, "\n".join(parts))
    LOG.info("gallery: %d figures from the notebooks", len(_gallery_images))
    return env


def on_post_build(config):
    site = Path(config.site_dir)
    for uri, png in _gallery_images.items():
        target = site / uri
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)
