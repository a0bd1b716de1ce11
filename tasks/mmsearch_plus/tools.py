"""The agent's tools and the mode solvers.

Tools run in the harness (no sandbox). What a call needs of its sample (the images and crops so far, the
question, the search layer, the summariser) is in `_SAMPLE`, set by the solver for the sample's whole
trajectory; the agent loop runs each call in a copy of that context. Crops are computed here with Pillow,
deterministically (integer pixel boxes: floor of x1, y1 and ceil of x2, y2), and become new image ids
(`crop_1`, `crop_2`, ... in the order they are made) that image_search accepts.
"""
from __future__ import annotations

import base64
import contextvars
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

from harness import ChatMessageUser, TaskState
from harness._messages import ContentImage, ContentText
from harness.agent import AgentLimits, ToolFailure, react, tool
from harness.judge import ask, panel
from harness.search import SearchLayer, SummariserSpec, image_png, sha256
from harness.tasks.mmsearch_plus import prompts

SUMMARY_EXCERPT = 1500  # without a summariser, a page is shown as the start of its main text


@dataclass
class ImageEntry:
    image: Any  # PIL
    png: bytes  # canonical PNG: what is hashed for the search key
    provenance: dict[str, Any]


@dataclass
class _Sample:
    state: TaskState
    ctx: Any
    layer: SearchLayer | None
    images: dict[str, ImageEntry] = field(default_factory=dict)
    summarize: bool = True
    crops: int = 0

    @property
    def keys(self) -> dict[str, list[str]]:
        return self.state.metadata.setdefault("search_keys", {})

    def image(self, name: str) -> ImageEntry:
        if name not in self.images:
            raise ToolFailure("invalid_image", f"there is no image {name!r}; the images are: {', '.join(self.images)}")
        return self.images[name]


_SAMPLE: contextvars.ContextVar[_Sample | None] = contextvars.ContextVar("mmsearch_plus_sample", default=None)


def _current() -> _Sample:
    run = _SAMPLE.get()
    assert run is not None, "MMSearch-Plus tools run inside its solvers"
    return run


def sample_images(state: TaskState) -> dict[str, ImageEntry]:
    """img_1..img_n of the sample, decoded from its first user turn (the image part after each `img_k` label)."""
    from PIL import Image

    out: dict[str, ImageEntry] = {}
    message = state.sample.messages()[0]
    k = 0
    for part in message.content:
        if isinstance(part, ContentImage) and k < state.sample.metadata["num_images"]:
            k += 1
            data = base64.b64decode(part.image.split(",", 1)[1])
            img = Image.open(io.BytesIO(data))
            img.load()
            png = image_png(img)
            out[f"img_{k}"] = ImageEntry(img, png, {"source_image_sha256": sha256(png), "box": None})
    return out


def _summariser(run: _Sample) -> SummariserSpec | None:
    clients = panel(run.ctx.judges, "summarizer") if run.summarize else []
    if not clients:
        return None
    client = clients[0]
    config = {"temperature": 0, "max_tokens": 400}

    async def summarise(text: str, question: str) -> str:
        prompt = prompts.SUMMARISER.format(question=question, text=text)
        return (await ask(run.ctx, run.state, client, prompt, config, role="summarizer")).text.strip()

    return SummariserSpec(client.name, prompts.sha(prompts.SUMMARISER), 0.0, summarise)


async def _with_summaries(run: _Sample, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import asyncio

    spec = _summariser(run)
    question = run.state.sample.metadata["question"]

    async def one(r: dict[str, Any]) -> dict[str, Any]:
        text = r.pop("text", "")
        sha = r.pop("text_sha256", None)
        if not text or sha is None:
            summary = "(the page could not be fetched)"
        elif spec is None:
            summary = text[:SUMMARY_EXCERPT]
        else:
            assert run.layer is not None
            summary = await run.layer.summary(text, sha, question, spec, run.keys)
        return {**r, "summary": summary}

    return list(await asyncio.gather(*(one(r) for r in results)))


async def do_text_search(query: str) -> str:
    run = _current()
    if not query.strip():
        raise ToolFailure("parsing", "the query is empty")
    assert run.layer is not None
    results = await _with_summaries(run, await run.layer.text_search(query, run.keys))
    return json.dumps(results, ensure_ascii=False, indent=1) if results else "no results"


async def do_image_search(name: str) -> str:
    run = _current()
    entry = run.image(name)
    assert run.layer is not None
    results = await run.layer.image_search(entry.png, run.keys, entry.provenance, name)
    results = await _with_summaries(run, results)
    return json.dumps(results, ensure_ascii=False, indent=1) if results else "no visual matches"


def _crop(run: _Sample, name: str, box: list[float], how: str) -> list[ContentText | ContentImage]:
    entry = run.image(name)
    if len(box) != 4 or not all(isinstance(c, (int, float)) and math.isfinite(c) for c in box):
        raise ToolFailure("invalid_box", f"a box is four numbers [x1, y1, x2, y2], got {box!r}")
    w, h = entry.image.size
    x1, y1, x2, y2 = math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3])
    if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
        raise ToolFailure("invalid_box", f"the box {box!r} is not a region inside {name} ({w}x{h}): it needs "
                                         f"0 <= x1 < x2 <= {w} and 0 <= y1 < y2 <= {h}")
    region = entry.image.convert("RGB").crop((x1, y1, x2, y2))
    png = image_png(region)
    run.crops += 1
    new = f"crop_{run.crops}"
    source = entry.provenance
    run.images[new] = ImageEntry(region, png, {"source_image_sha256": sha256(entry.png), "source": name,
                                               "box": [x1, y1, x2, y2], "root": source.get("root", name)})
    url = f"data:image/png;base64,{base64.b64encode(png).decode()}"
    return [ContentText(text=f"{new}: {how} of {name}, box [{x1}, {y1}, {x2}, {y2}], {x2 - x1}x{y2 - y1} pixels"),
            ContentImage(image=url)]


@tool
def text_search():
    """Web text search."""

    async def execute(query: str) -> str:
        """Search the web. Returns the top pages: rank, title, url, snippet and a summary of each page.

        Args:
            query: what to search for
        """
        return await do_text_search(query)

    return execute


@tool
def image_search():
    """Reverse image search."""

    async def execute(image: str) -> str:
        """Reverse image search: the top web pages with visually matching images (rank, title, url, source,
        thumbnail and a summary of each page).

        Args:
            image: an image id: img_1 (the given images) or crop_1 (a crop you made)
        """
        return await do_image_search(image)

    return execute


@tool
def crop():
    """Crop a region of an image."""

    async def execute(image: str, box: list[float]) -> list[ContentText | ContentImage]:
        """Crop a region of an image; the crop becomes a new image id you can search with.

        Args:
            image: the image id (img_1, crop_1, ...)
            box: [x1, y1, x2, y2] in the image's pixels (x1 < x2, y1 < y2)
        """
        return _crop(_current(), image, box, "crop")

    return execute


@tool
def zoom_in():
    """Zoom into a marked region."""

    async def execute(image: str, mark: int) -> list[ContentText | ContentImage]:
        """Crop the box of a numbered mark (Set-of-Mark) of an image; the crop becomes a new image id.

        Args:
            image: the image id whose marks are shown (img_1, ...)
            mark: the mark's index, as drawn on the marked copy
        """
        run = _current()
        marks = run.state.sample.metadata.get("marks", {}).get(image)
        if not marks:
            raise ToolFailure("invalid_mark", f"{image} has no marks; the marked images are: "
                                              f"{', '.join(run.state.sample.metadata.get('marks', {})) or 'none'}")
        if str(mark) not in marks:
            raise ToolFailure("invalid_mark", f"{image} has no mark {mark}; its marks are "
                                              f"{', '.join(sorted(marks, key=int))}")
        return _crop(run, image, marks[str(mark)], f"mark {mark}")

    return execute


MODE_TOOLS = {"text_search": ["text_search"], "rollout": ["text_search", "image_search", "crop"],
              "rollout_som": ["text_search", "image_search", "crop", "zoom_in"]}
_FACTORIES = {"text_search": text_search, "image_search": image_search, "crop": crop, "zoom_in": zoom_in}


@dataclass
class Rollout:
    """The agentic modes: react over the mode's tools, a round = one assistant turn, at most `rounds`; at the cap
    one more turn, without tools, asks for the answer (the state keeps limit "turns": a cap hit)."""

    mode: str
    rounds: int
    layer: SearchLayer | None
    summarize: bool = True

    async def __call__(self, state: TaskState, ctx: Any) -> TaskState:
        names = MODE_TOOLS[self.mode]
        token = _SAMPLE.set(_Sample(state, ctx, self.layer, sample_images(state), self.summarize))
        try:
            solver = react(tools=[_FACTORIES[n]() for n in names], prompt=prompts.rollout(names, self.rounds),
                           limits=AgentLimits(turns=self.rounds))
            await solver(state, ctx)
            if state.limit == "turns":
                state.messages.append(ChatMessageUser(content=prompts.FINAL))
                output = state.record(await ctx.model.generate(state.messages, ctx.config))
                state.output = output
                state.messages.append(output.message)
        finally:
            _SAMPLE.reset(token)
        return state


@dataclass
class UpfrontImageSearch:
    """The image-search mode: each whole image's top results (with page summaries) are searched before the
    model's only turn and given to it below the question; no tools."""

    layer: SearchLayer
    summarize: bool = True

    async def __call__(self, state: TaskState, ctx: Any) -> TaskState:
        import time

        token = _SAMPLE.set(_Sample(state, ctx, self.layer, sample_images(state), self.summarize))
        try:
            blocks = []
            for name in list(_current().images):
                started = time.time()
                text = await do_image_search(name)
                state.events.add("tool", name="image_search", input={"image": name}, output=text, started_at=started,
                                 metadata={"upfront": True})
                blocks.append(f"Image search results for {name}:\n{text}")
        finally:
            _SAMPLE.reset(token)
        state.messages = state.sample.messages(prompts.IMAGE_SEARCH)
        first = state.messages[-1]
        first.content = list(first.content) + [ContentText(text="\n\n" + "\n\n".join(blocks))]
        state.output = state.record(await ctx.model.generate(state.messages, ctx.config))
        state.messages.append(state.output.message)
        return state
