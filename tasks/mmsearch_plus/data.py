"""MMSearch-Plus records -> Samples: decryption with the canary, images as content parts, subsets, SoM marks.

The hub release (`Cie1/MMSearch-Plus`, split `train`, 311 rows) encrypts `question`, each `answer`, `arxiv_id`
and `video_url` as base64(plaintext XOR SHA-256(canary) repeated); the canary is "MMSearch-Plus". Upstream's
decryptor keeps the ciphertext when decryption fails; here it raises, so an undecryptable record errors its
sample instead of asking the model a base64 string.

Local files (`--data PATH`, and the bundled sample) are JSON Lines in the hub schema, with the images as paths
relative to the file, plus two fields of ours: `id`, and `som` ({img_k: {"marks": {index: [x1, y1, x2, y2]},
"annotated": path}}), since the release carries no Set-of-Mark boxes (upstream lists them as "ToDo").
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import itertools
import json
from pathlib import Path
from typing import Any, Iterator

from harness import Dataset, Sample
from harness._messages import ContentImage, ContentText

CANARY = "MMSearch-Plus"
ENCRYPTED = ("question", "arxiv_id", "video_url")
MAX_IMAGES = 5
CATEGORIES = ["Geography", "Sports", "Academic Research", "Film & TV", "Technology", "Video Games", "Vlog", "Music"]


class DecryptionError(ValueError):
    """A field that is not base64 of UTF-8 text XOR-ed with the canary's key."""


def _key(length: int, canary: str = CANARY) -> bytes:
    digest = hashlib.sha256(canary.encode()).digest()
    return (digest * (length // len(digest) + 1))[:length]


def encrypt(plaintext: str, canary: str = CANARY) -> str:
    data = plaintext.encode("utf-8")
    return base64.b64encode(bytes(a ^ b for a, b in zip(data, _key(len(data), canary)))).decode()


def decrypt(ciphertext: str, canary: str = CANARY, *, field: str = "field") -> str:
    """The plaintext of one encrypted field; "" stays "". Raises DecryptionError (upstream returns the
    ciphertext unchanged)."""
    if not ciphertext:
        return ""
    try:
        data = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError(f"{field} is not base64, so it cannot be decrypted with the canary") from None
    try:
        return bytes(a ^ b for a, b in zip(data, _key(len(data), canary))).decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError(f"{field} does not decrypt to UTF-8 text with the canary {canary!r}: the data is "
                              f"corrupt or was encrypted with another key") from None


def decrypt_record(record: dict[str, Any], canary: str = CANARY) -> dict[str, Any]:
    out = dict(record)
    for name in ENCRYPTED:
        value = record.get(name)
        out[name] = decrypt(value, canary, field=name) if isinstance(value, str) else ""
    answers = record.get("answer")
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, list) or not answers:
        raise ValueError("the record has no answer list")
    out["answer"] = [decrypt(a, canary, field=f"answer[{i}]") if a else "" for i, a in enumerate(answers)]
    out["answer"] = [a for a in out["answer"] if a.strip()]
    if not out["answer"] or not out["question"].strip():
        raise ValueError("the record has an empty question or answer list after decryption")
    return out


def open_image(value: Any, name: str) -> tuple[Any, bytes, str]:
    """(PIL image, the bytes to send, their MIME type) of an image field: a PIL image (the hub), a dict with
    bytes or a path (datasets without decoding), or a path (local files). Raises ValueError naming the field
    when it is missing or does not decode."""
    from PIL import Image, UnidentifiedImageError

    if value is None:
        raise ValueError(f"{name} is missing")
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    try:
        if isinstance(value, Image.Image):
            img = value
            data = None
        else:
            if isinstance(value, (str, Path)):
                try:
                    data = Path(value).read_bytes()
                except OSError as e:
                    raise ValueError(f"{name}: the image file {value} cannot be read ({e.strerror or e})") from None
            elif isinstance(value, (bytes, bytearray)):
                data = bytes(value)
            else:
                raise ValueError(f"{name} is a {type(value).__name__}, not an image")
            img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{name} does not decode as an image ({type(e).__name__}: {str(e)[:120]})") from None
    if data is not None and img.format in ("PNG", "JPEG", "WEBP", "GIF"):
        return img, data, Image.MIME[img.format]
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG")
    return img, buf.getvalue(), "image/png"


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def draw_marks(image: Any, marks: dict[str, list[float]]) -> bytes:
    """The Set-of-Mark copy: each box drawn with its index, deterministically (PNG bytes)."""
    from PIL import ImageDraw

    img = image.convert("RGB").copy()
    draw = ImageDraw.Draw(img)
    width = max(2, round(min(img.size) / 300))
    for index in sorted(marks, key=int):
        x1, y1, x2, y2 = marks[index]
        draw.rectangle([x1, y1, x2, y2], outline=(255, 0, 0), width=width)
        draw.rectangle([x1, y1, x1 + 14 * len(index) + 6, y1 + 18], fill=(255, 0, 0))
        draw.text((x1 + 3, y1 + 2), index, fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def read_local(path: Path) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """JSON Lines in the hub schema, image fields as paths relative to the file."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    for file in files:
        for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                yield None, {"__invalid__": f"{file.name}:{lineno}: not JSON ({e.msg})"}
                continue
            for k in range(1, MAX_IMAGES + 1):
                if isinstance(record.get(f"img_{k}"), str):
                    record[f"img_{k}"] = str(file.parent / record[f"img_{k}"])
            for som in (record.get("som") or {}).values():
                if isinstance(som, dict) and isinstance(som.get("annotated"), str):
                    som["annotated"] = str(file.parent / som["annotated"])
            yield None, record


def read_ids(path: str) -> list[str]:
    """A subset's ids: one per line, or a JSON list."""
    text = Path(path).expanduser().read_text(encoding="utf-8")
    ids = json.loads(text) if text.lstrip().startswith("[") else text.split()
    return [str(i) for i in ids]


def read_som(path: str) -> dict[str, dict[str, Any]]:
    """SoM boxes for hub items: JSON Lines of {"id", "image": "img_k", "marks": {index: [x1, y1, x2, y2]}}."""
    out: dict[str, dict[str, Any]] = {}
    for line in Path(path).expanduser().read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.setdefault(str(row["id"]), {})[row["image"]] = {"marks": row["marks"]}
    return out


class HubRows(Dataset):
    """The hub release has no id column: a row's id is its index in the `train` split (0-based), counted afresh
    each time the data is opened (the stream's order is the split's)."""

    def _hub(self, location: str, revision: str | None) -> Iterator[Sample]:
        counter = itertools.count()
        to_samples = self.to_samples
        rows = Dataset(to_samples=lambda r, c: to_samples({**r, "_row": next(counter)}, c), hub=self.hub,
                       split=self.split, revision=self.revision)
        return rows._hub(location, revision)


def to_samples_for(mode: str, prompt: str, subset: str, ids: set[str] | None,
                   som: dict[str, dict[str, Any]] | None):
    som_mode = mode == "rollout_som"

    def to_samples(record: dict[str, Any], config: str | None) -> Iterator[Sample]:
        if record.get("id") is None and "_row" not in record:
            raise ValueError("a record of a local file needs an `id`")
        sid = str(record["id"]) if record.get("id") is not None else str(record["_row"])
        if ids is not None and sid not in ids:
            return
        rec = decrypt_record(record)
        n = int(rec.get("num_images") or 0)
        if not 1 <= n <= MAX_IMAGES:
            raise ValueError(f"num_images is {rec.get('num_images')!r}, not 1 to {MAX_IMAGES}")
        parts: list[Any] = [ContentText(text=prompt.format(question=rec["question"]))]
        marks: dict[str, dict[str, list[float]]] = {}
        annotated: list[Any] = []
        item_som = (rec.get("som") or {}) if som is None else som.get(sid, {})
        for k in range(1, n + 1):
            name = f"img_{k}"
            img, data, mime = open_image(rec.get(name), name)
            entry = item_som.get(name) if som_mode else None
            # the bundled items' only published pixels are the marked copies: shown once, said so
            drawn = entry is not None and entry.get("annotated") == rec.get(name)
            label = f"{name} ({img.width}x{img.height}" + ("; its marks are drawn on it" if drawn else "") + "):"
            parts += [ContentText(text=f"\n{label}"), ContentImage(image=data_url(data, mime))]
            if entry is not None:
                marks[name] = {str(i): [float(c) for c in box] for i, box in entry["marks"].items()}
            if entry is not None and not drawn:
                if entry.get("annotated"):
                    _, adata, amime = open_image(entry["annotated"], f"{name} (annotated)")
                else:
                    adata, amime = draw_marks(img, marks[name]), "image/png"
                annotated += [ContentText(text=f"\n{name} with its marks (indices for zoom_in):"),
                              ContentImage(image=data_url(adata, amime))]
        if som_mode and not marks:
            raise ValueError("no Set-of-Mark boxes for this item (the hub release has none); pass "
                             "-T som_file=PATH with them")
        yield Sample(
            id=sid,
            input=[{"role": "user", "content": parts + annotated}],
            target=rec["answer"],
            metadata={"category": rec.get("category") or "unknown", "difficulty": rec.get("difficulty") or "unknown",
                      "subtask": rec.get("subtask") or "unknown", "subset": subset, "mode": mode, "num_images": n,
                      "question": rec["question"], "marks": marks,
                      "arxiv_id": rec.get("arxiv_id") or "", "video_url": rec.get("video_url") or ""},
        )

    return to_samples
