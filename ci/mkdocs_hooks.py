"""MkDocs hook for the docs build: links between notebooks.

A notebook links to another as `[text](other.ipynb)`, which works in Jupyter and on GitHub. mkdocs-jupyter renders
notebooks to HTML without rewriting such links, and MkDocs checks links in Markdown pages only; here each one is
pointed at the other page's URL, and one to a file that is not a page is a warning (an error under --strict).
"""

import logging
import posixpath
import re

log = logging.getLogger("mkdocs.hooks.notebook_links")
_LINK = re.compile(r'href="([^":#?]+\.ipynb)(#[^"]*)?"')


def on_page_content(html, page, config, files):
    if not page.file.src_uri.endswith(".ipynb"):
        return html

    def point(match):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), match.group(1)))
        file = files.get_file_from_path(target)
        if file is None:
            log.warning("Notebook '%s' links to '%s', which is not a page of the site.", page.file.src_uri, target)
            return match.group(0)
        return f'href="{file.url_relative_to(page.file)}{match.group(2) or ""}"'

    return _LINK.sub(point, html)
