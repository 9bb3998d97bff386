"""Times each tutorial notebook's execution in the build and logs it.

mkdocs-jupyter executes a notebook when its page is rendered, between ``on_pre_page``
and ``on_page_content``; the build log then reads ``tutorial tutorials/x.py: 54.2 s``.
A tutorial that runs past ``LIMIT_S`` (twice the two minutes each one is written for)
is a warning, which fails the strict build.
"""

import logging
import time

log = logging.getLogger("mkdocs.hooks.timing")
LIMIT_S = 240.0
_started = {}


def _is_tutorial(page):
    return page.file.src_uri.startswith("tutorials/") and page.file.src_uri.endswith(".py")


def on_pre_page(page, config, files):
    if _is_tutorial(page):
        _started[page.file.src_uri] = time.perf_counter()
    return page


def on_page_content(html, page, config, files):
    if _is_tutorial(page) and page.file.src_uri in _started:
        seconds = time.perf_counter() - _started.pop(page.file.src_uri)
        log.info("tutorial %s: %.1f s", page.file.src_uri, seconds)
        if seconds > LIMIT_S:
            log.warning("tutorial %s took %.0f s; each is written to run in under %.0f s",
                        page.file.src_uri, seconds, LIMIT_S / 2)
    return html
