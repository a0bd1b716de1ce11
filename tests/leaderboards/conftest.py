"""Runs made in the test with scripted models, and a small HTML reader for the built pages."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest

import harness
from harness.model import MockModel
from harness.store import Store

EASY = {"Rot13", "Atbash", "Reverse"}


def correct(sample, _messages) -> str:
    return f"<result>{sample.target}</result>"


def solves(ciphers: set[str]):
    return lambda sample, m: correct(sample, m) if sample.metadata["cipher"] in ciphers else "<result>?</result>"


@pytest.fixture
def make_run():
    def make(url: str, name: str, respond, *, task: str = "cipherbank", variant: str = "default",
             limit: int | None = None) -> str:
        store = Store(url)
        run_id = harness.eval(f"{task}@{variant}", MockModel(respond, name=name), db=store, data="bundled",
                              limit=limit).run_id
        store.close()
        return run_id

    return make


class Page(HTMLParser):
    """Elements as (tag, attrs, text, ancestors' attrs) — enough to read tables by their data- attributes."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self.title = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "parents": [e["attrs"] for e in self._open]}
        self.elements.append(el)
        if tag not in ("br", "meta", "link", "img", "input", "hr"):  # HTML's void elements
            self._open.append(el)

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i]["tag"] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for el in self._open:
            el["text"] += data
        if self._open and self._open[-1]["tag"] == "title" and not any(e["tag"] == "svg" for e in self._open):
            self.title += data  # the document's title, not an SVG tooltip

    def find(self, tag: str, **attrs) -> list[dict]:
        return [e for e in self.elements if e["tag"] == tag
                and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def cell(self, model: str, suite: str) -> dict | None:
        """The index table cell of (model, suite)."""
        for td in self.find("td", data_suite=suite):
            if any(p.get("data-model") == model for p in td["parents"]):
                return td
        return None
