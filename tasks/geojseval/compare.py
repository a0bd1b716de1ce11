"""Comparing a case's result with its expected answer, per out_type: the correct rule, and upstream's rule
(js_py_test.py `check_result` at 94f7a33, bugs included) computed beside it.

`result` is the value of the runner's `{"result": ...}` JSON (absent when the function returned undefined);
`expected` is the answer file decoded by data.py: {"npy": {"dtype", "value"}}, {"text": str} or {"json": value}.

Correct rules (SOURCE.md §5, the "correct behaviour" column), with the choices the spec leaves open:
- number: a JSON number (not a boolean), |r - a| <= 1e-6 + 1e-5 |a| (numpy's allclose with atol 1e-6, as
  upstream means it); NaN never equals anything (JSON cannot carry NaN: JS serialises it as null).
- boolean: a JSON boolean equal to the answer.  string, error_message: a string equal to the file's text,
  byte for byte (no strip, no newline translation).
- geojson: both sides reduced to their geometries (a Feature's geometry, a FeatureCollection's features'
  geometries, a bare geometry; properties, ids and bbox ignored); the two lists must match one to one in
  any order, each pair of the same type and structure with every vertex within 1e-6 on x and y (as
  shapely's equals_exact, 2D). Ring start and orientation count: a ring started at another vertex or
  wound the other way is a different geometry (equals_exact's rule; the task docstrings fix the ring).
  A result that is not a GeoJSON object (null, a bbox array) passes only if the answer is not one
  either; null therefore fails against an empty FeatureCollection (upstream passes it), while an empty
  FeatureCollection matches an empty FeatureCollection.
- Array: element-wise over nested lists of the same lengths (ragged arrays too): numbers within
  1.5e-3 (numpy's assert_array_almost_equal, decimal=3), NaN equal to NaN as there, booleans, strings
  and null by equality.
- Object: recursive; numbers (int or float alike: JS writes 2.0 as 2) within 1e-6, booleans only equal
  booleans, strings by equality, lists of the same length element-wise, dicts with the same keys.
"""
from __future__ import annotations

import math
from typing import Any

MISSING = object()  # the function returned undefined: upstream's `output["result"]` raises KeyError
OUT_TYPES = ("number", "string", "boolean", "geojson", "Array", "Object", "error_message")
GEOMETRY_TYPES = ("point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
                  "geometrycollection")


def _is_number(x: Any) -> bool:
    return type(x) in (int, float)


def expected_value(expected: dict[str, Any]) -> Any:
    if "npy" in expected:
        return expected["npy"]["value"]
    return expected["text"] if "text" in expected else expected["json"]


# ------------------------------------------------------------------ correct rules

def correct(out_type: str, result: Any, expected: dict[str, Any]) -> tuple[bool, str]:
    """(passed, why not): the category is wrong_output for a mismatch, output_format for a wrong kind."""
    if result is MISSING:
        return False, "the function returned undefined"
    a = expected_value(expected)
    if out_type == "number":
        if not _is_number(result):
            return False, f"not a number: {_short(result)}"
        if not _is_number(a):
            return False, f"the answer file holds no single number ({_short(a)})"
        return abs(result - a) <= 1e-6 + 1e-5 * abs(a), f"got {result!r}, expected {a!r}"
    if out_type == "boolean":
        if type(result) is not bool:
            return False, f"not a boolean: {_short(result)}"
        return result is bool(a) and type(a) in (bool, int), f"got {result!r}, expected {a!r}"
    if out_type in ("string", "error_message"):
        if not isinstance(result, str):
            return False, f"not a string: {_short(result)}"
        return result == a, f"got {_short(result)}, expected {_short(a)}"
    if out_type == "geojson":
        return _geojson_equal(result, a)
    if out_type == "Array":
        return _array_equal(result, a), f"got {_short(result)}, expected {_short(a)}"
    if out_type == "Object":
        return _object_equal(result, a), f"got {_short(result)}, expected {_short(a)}"
    raise ValueError(f"unknown out_type {out_type!r}")


def _geometries(obj: Any) -> list | None:
    """A GeoJSON object's geometries, or None when `obj` is not a GeoJSON object."""
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return None
    kind = obj["type"].lower()
    if kind == "feature":
        g = obj.get("geometry")
        return [g] if g else []
    if kind == "featurecollection":
        feats = obj.get("features")
        if not isinstance(feats, list):
            return None
        return [f["geometry"] for f in feats if isinstance(f, dict) and f.get("geometry")]
    if kind in GEOMETRY_TYPES:
        return [obj]
    return None


def _coords_equal(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, list) and a and _is_number(a[0]):  # a position: x and y compared, as equals_exact (2D)
        return isinstance(b, list) and len(b) >= 2 and len(a) >= 2 and all(_is_number(v) for v in a[:2] + b[:2]) \
            and abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_coords_equal(x, y, tol) for x, y in zip(a, b))
    return False


def geometry_equal(g: Any, h: Any, tol: float = 1e-6) -> bool:
    if not (isinstance(g, dict) and isinstance(h, dict)) or not isinstance(g.get("type"), str) \
            or not isinstance(h.get("type"), str) or g["type"].lower() != h["type"].lower():
        return False
    if g["type"].lower() == "geometrycollection":
        gs, hs = g.get("geometries"), h.get("geometries")
        return isinstance(gs, list) and isinstance(hs, list) and len(gs) == len(hs) and \
            all(geometry_equal(x, y, tol) for x, y in zip(gs, hs))
    return _coords_equal(g.get("coordinates"), h.get("coordinates"), tol)


def _geojson_equal(result: Any, answer: Any) -> tuple[bool, str]:
    got, want = _geometries(result), _geometries(answer)
    if want is None:
        return got is None and result == answer, f"got {_short(result)}, expected {_short(answer)}"
    if got is None:
        return False, f"not GeoJSON: {_short(result)}"
    if len(got) != len(want):
        return False, f"{len(got)} geometries, expected {len(want)}"
    left = list(want)
    for g in got:  # one to one, in any order
        match = next((i for i, h in enumerate(left) if geometry_equal(g, h)), None)
        if match is None:
            return False, f"no expected geometry matches {_short(g)}"
        left.pop(match)
    return True, ""


def _array_equal(r: Any, a: Any) -> bool:
    if isinstance(a, list):
        return isinstance(r, list) and len(r) == len(a) and all(_array_equal(x, y) for x, y in zip(r, a))
    if type(a) is bool or type(r) is bool:
        return type(a) is type(r) and a == r
    if _is_number(a):
        if not _is_number(r):
            return False
        if math.isnan(a) or math.isnan(r):
            return math.isnan(a) and math.isnan(r)
        return abs(r - a) < 1.5e-3
    return type(r) is type(a) and r == a


def _object_equal(r: Any, a: Any, tol: float = 1e-6) -> bool:
    if type(r) is bool or type(a) is bool:
        return type(r) is type(a) and r == a
    if _is_number(r) and _is_number(a):
        return abs(r - a) < tol
    if isinstance(r, str) and isinstance(a, str):
        return r == a
    if isinstance(r, list) and isinstance(a, list):
        return len(r) == len(a) and all(_object_equal(x, y, tol) for x, y in zip(r, a))
    if isinstance(r, dict) and isinstance(a, dict):
        return r.keys() == a.keys() and all(_object_equal(r[k], a[k], tol) for k in r)
    return r is None and a is None


# ------------------------------------------------------------------ upstream's rules, bugs included

def upstream(out_type: str, result: Any, expected: dict[str, Any]) -> bool:
    """upstream check_result's verdict on a result that reached it (no stderr, one parseable stdout line); any
    exception it raises counts as a failure there ("Unhandled error in test case")."""
    if result is MISSING:
        return False  # output["result"] raises KeyError
    try:
        return bool(_upstream(out_type, result, expected))
    except Exception:
        return False


def _npy(expected: dict[str, Any]):
    import numpy as np

    if "npy" not in expected:
        raise ValueError("not an .npy answer")
    return np.array(expected["npy"]["value"], dtype=expected["npy"]["dtype"])


def _upstream(out_type: str, result: Any, expected: dict[str, Any]) -> bool:
    import numpy as np

    if out_type == "number":
        return bool(np.allclose(np.array(result), _npy(expected), atol=1e-6))
    if out_type == "boolean":
        np.array(result)  # np.save(np.array(result)) must succeed; then the answer is compared with itself (bug A)
        _npy(expected)
        return True
    if out_type == "string":
        # bug B: str(result) is written, the *result* file read back (universal newlines) and compared with it
        s = str(result)
        s.encode("utf-8")
        return s == s.replace("\r\n", "\n").replace("\r", "\n")
    if out_type == "geojson":
        want = _upstream_geometries(expected["json"])
        got = _upstream_geometries(result)
        if got:
            raise TypeError("cannot unpack non-iterable bool object")  # bug C
        return got == want
    if out_type == "Array":
        np.testing.assert_array_almost_equal(np.array(result), _npy(expected), decimal=3)
        return True
    if out_type == "Object":
        return _compare_result(result, expected["json"])
    if out_type == "error_message":
        return result == expected["text"].replace("\r\n", "\n").replace("\r", "\n")
    return False  # "Unsupported output type"


def _upstream_geometries(obj: Any) -> list:
    """upstream extract_comparable_geometry without shapely: which geometries it finds (the list is only
    ever tested for emptiness and equality with the answer's, since a non-empty one crashes). shape() on
    a malformed geometry raises there too."""
    if not obj:
        return []
    kind = obj.get("type", "").lower()
    if kind == "feature":
        g = obj.get("geometry")
        return [_shape(g)] if g else []
    if kind == "featurecollection":
        features = obj.get("features", [])
        if not features:
            return features
        return [_shape(f["geometry"]) for f in features if f.get("geometry")]
    if kind in GEOMETRY_TYPES:
        return [_shape(obj)]
    return []


def _shape(g: Any) -> Any:
    if not isinstance(g, dict) or not isinstance(g.get("type"), str):
        raise ValueError("not a geometry")
    return g


def _compare_result(result, expected, float_tol=1e-6):
    """upstream compare_result, verbatim: int vs float fails, True == 1 passes."""
    if isinstance(result, float) and isinstance(expected, float):
        return abs(result - expected) < float_tol
    elif isinstance(result, (int, bool, str)) and isinstance(expected, (int, bool, str)):
        return result == expected
    elif isinstance(result, list) and isinstance(expected, list):
        if len(result) != len(expected):
            return False
        return all(_compare_result(r, e, float_tol) for r, e in zip(result, expected))
    elif isinstance(result, dict) and isinstance(expected, dict):
        if result.keys() != expected.keys():
            return False
        return all(_compare_result(result[k], expected[k], float_tol) for k in result)
    elif result is None and expected is None:
        return True
    else:
        return False


def _short(x: Any, limit: int = 200) -> str:
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxdict, r.maxstring, r.maxother = 4, 8, 8, limit, limit
    text = r.repr(x)
    return text if len(text) <= limit else text[:limit] + "..."
