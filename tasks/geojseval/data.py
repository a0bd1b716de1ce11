"""Reading GeoJSEval's folders: `<lib>_code/` with config.yaml, test_instructions/, standard_code/ and ref_answer/
(SOURCE.md §3-§5), one record per function. A dataset root holds several `<lib>_code/` folders."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from harness._dataset import DataError
from harness.tasks.geojseval.compare import OUT_TYPES

LIBRARIES = ("turf", "geolib", "jsts", "leaflet", "openlayers")
VISUAL = ("leaflet", "openlayers")
# upstream check_result's extension rule: appended when the name does not already end with it
EXTENSIONS = {"number": ".npy", "boolean": ".npy", "Array": ".npy", "geojson": ".geojson", "Object": ".json",
              "string": ".txt", "error_message": ".txt"}


def _loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # upstream js_constructor: a `!js` scalar becomes {"__js__": source}, built into a value by the runner
    Loader.add_constructor("!js", lambda loader, node: {"__js__": loader.construct_scalar(node)})
    return Loader


def library_folders(path: Path) -> list[tuple[str, Path]]:
    """(library, folder) for `path` itself when it is a `<lib>_code/` folder, else for its `*_code/` children."""
    if (path / "config.yaml").is_file():
        return [(path.name.removesuffix("_code"), path)]
    found = sorted((p.name.removesuffix("_code"), p) for p in path.glob("*_code") if (p / "config.yaml").is_file())
    if not found:
        raise DataError(f"{path}: neither a GeoJSEval `<lib>_code/` folder (with config.yaml) nor a dataset root "
                        f"holding such folders")
    return found


def _answer(folder: Path, out_type: str, name: Any) -> dict[str, Any]:
    """The decoded answer file, or {"invalid": why} (a data problem: the case is reported, never scored)."""
    if not isinstance(name, str) or not name:
        return {"invalid": "no expected_answer file name"}
    if out_type not in EXTENSIONS:
        return {"invalid": f"unknown out_type {out_type!r} (known: {', '.join(OUT_TYPES)})"}
    ext = EXTENSIONS[out_type]
    path = folder / "ref_answer" / (name if name.endswith(ext) else name + ext)
    if not path.is_file():
        return {"invalid": f"answer file ref_answer/{path.name} is missing"}
    try:
        if ext == ".npy":
            import numpy as np

            arr = np.load(path, allow_pickle=False)  # never unpickle data files
            return {"npy": {"dtype": arr.dtype.str, "value": arr.tolist()}}
        text = path.read_bytes().decode("utf-8")
        return {"text": text} if ext == ".txt" else {"json": json.loads(text)}
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return {"invalid": f"answer file ref_answer/{path.name} is unreadable ({type(e).__name__}: {str(e)[:120]})"}


def _case(folder: Path, index: int, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {"index": index, "name": f"case{index + 1}", "invalid": "a test case that is not a mapping"}
    out_type = raw.get("out_type")
    name = raw.get("expected_answer")
    case = {"index": index, "name": str(name).split(".")[0] if name else f"case{index + 1}",
            "out_type": str(out_type), "edge_test": bool(raw.get("edge_test", False))}
    params = raw.get("params", {})
    if not isinstance(params, dict):
        return {**case, "invalid": "params is not a mapping"}
    try:
        case["params"] = json.loads(json.dumps([[str(k), v] for k, v in params.items()], allow_nan=False))
    except (TypeError, ValueError) as e:
        return {**case, "invalid": f"params are not JSON data ({e})"}
    if "eval_methods" in raw:
        case["eval_methods"] = raw["eval_methods"]
    answer = _answer(folder, str(out_type), name)
    if "invalid" in answer:
        return {**case, **answer}
    return {**case, "expected": answer}


def read_folder(path: Path) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """One record per function of every library folder under `path`, in config order."""
    import yaml

    for library, folder in library_folders(path):
        try:
            config = yaml.load((folder / "config.yaml").read_text(encoding="utf-8"), Loader=_loader())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise DataError(f"{folder / 'config.yaml'}: not readable YAML ({str(e).splitlines()[0][:200]})") from None
        if not isinstance(config, dict):
            raise DataError(f"{folder / 'config.yaml'}: not a mapping of function names to test cases")
        for function, cases in config.items():
            record: dict[str, Any] = {"library": library, "function": str(function)}
            if not isinstance(cases, list) or not cases:
                record["__invalid__"] = f"{library}/{function}: no list of test cases in config.yaml"
                yield library, record
                continue
            record["cases"] = [_case(folder, i, c) for i, c in enumerate(cases)]
            for key, sub in (("instructions", "test_instructions"), ("standard_code", "standard_code")):
                p = folder / sub / f"{function}.txt"
                record[key] = p.read_text(encoding="utf-8") if p.is_file() else None
            yield library, record
