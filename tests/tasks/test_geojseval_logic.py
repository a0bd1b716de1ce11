"""GeoJSEval without a sandbox: each out_type's correct and upstream comparison on hand-checked cases, the
extraction, the prompts and the loader on the hand-written fixtures (../shared/datasets/geojseval/fixtures:
written for testing a harness, not benchmark data) and on broken copies of them."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from harness import get_task
from harness.tasks.geojseval import compare, data, prompts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "geojseval"  # hand-written fixtures (tests/fixtures/geojseval/FIXTURES.md)


def npy(value, dtype=None):
    arr = np.array(value, dtype=dtype)
    return {"npy": {"dtype": arr.dtype.str, "value": arr.tolist()}}


SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
SQUARE_SHIFTED_START = {"type": "Polygon", "coordinates": [[[1, 0], [1, 1], [0, 1], [0, 0], [1, 0]]]}
SQUARE_CLOCKWISE = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}
POINT = {"type": "Point", "coordinates": [7, 45]}
EMPTY_FC = {"type": "FeatureCollection", "features": []}


def feature(geometry, **props):
    return {"type": "Feature", "properties": props, "geometry": geometry}


@pytest.mark.parametrize("out_type, result, expected, correct, upstream", [
    # number: allclose's atol 1e-6 plus rtol 1e-5 on both sides; a boolean is not a number (upstream: True == 1.0)
    ("number", 113.2190875, npy(113.21908688664138), True, True),
    ("number", 100.0011, npy(100.0), False, False),
    ("number", 100.0009, npy(100.0), True, True),
    ("number", 0, npy(0), True, True),
    ("number", 2, npy(2.0), True, True),  # int vs float: JS writes 2.0 as 2
    ("number", True, npy(1.0), False, True),
    ("number", None, npy(float("nan")), False, False),  # NaN reaches us as null (JSON.stringify)
    ("number", "113.2", npy(113.2), False, False),
    ("number", compare.MISSING, npy(1.0), False, False),  # undefined: no "result" key
    ("number", [5.0, 5.0], npy(5.0), False, True),  # upstream broadcasts a list against a scalar
    # boolean: upstream compares the answer with itself (bug A), unless np.array(result) itself fails
    ("boolean", True, npy(True), True, True),
    ("boolean", True, npy(False), False, True),
    ("boolean", 1, npy(True), False, True),
    ("boolean", [[1], [1, 2]], npy(True), False, False),  # a ragged list: np.array raises there too
    # string: upstream re-reads its own output (bug B); the correct rule is byte equality, no strip
    ("string", "abc", {"text": "abc"}, True, True),
    ("string", "abd", {"text": "abc"}, False, True),
    ("string", "abc", {"text": "abc\n"}, False, True),
    ("string", "a\r\nb", {"text": "a\r\nb"}, True, False),  # upstream's text-mode round trip turns \r\n into \n
    ("string", 5, {"text": "5"}, False, True),
    # error_message: returned (not thrown) text equal to the file; upstream reads the file with universal newlines
    ("error_message", "Invalid input: a LineString is required", {"text": "Invalid input: a LineString is required"},
     True, True),
    ("error_message", "Invalid input", {"text": "Invalid input: a LineString is required"}, False, False),
    # geojson: geometries only, any order, per-vertex 1e-6; upstream fails every non-empty result (bug C)
    ("geojson", feature(SQUARE, name="x"), {"json": {**feature(SQUARE), "bbox": [0, 0, 1, 1]}}, True, False),
    ("geojson", SQUARE, {"json": feature(SQUARE)}, True, False),  # a bare geometry vs a Feature
    ("geojson", feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 0.0000009], [1, 1], [0, 1], [0, 0]]]}),
     {"json": feature(SQUARE)}, True, False),
    ("geojson", feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 0.000002], [1, 1], [0, 1], [0, 0]]]}),
     {"json": feature(SQUARE)}, False, False),
    ("geojson", SQUARE_SHIFTED_START, {"json": SQUARE}, False, False),  # ring start counts (equals_exact)
    ("geojson", SQUARE_CLOCKWISE, {"json": SQUARE}, False, False),  # so does orientation
    ("geojson", {"type": "FeatureCollection", "features": [feature(SQUARE), feature(POINT)]},
     {"json": {"type": "FeatureCollection", "features": [feature(POINT), feature(SQUARE)]}}, True, False),
    ("geojson", {"type": "FeatureCollection", "features": [feature(SQUARE)]},
     {"json": {"type": "FeatureCollection", "features": [feature(SQUARE), feature(SQUARE)]}}, False, False),
    ("geojson", {"type": "Point", "coordinates": [7, 45, 100]}, {"json": POINT}, True, False),  # 2D, as equals_exact
    ("geojson", {"type": "MultiPoint", "coordinates": [[7, 45]]}, {"json": POINT}, False, False),
    ("geojson", [0, 0, 1, 1], {"json": feature(SQUARE)}, False, False),  # a bbox is not GeoJSON
    ("geojson", EMPTY_FC, {"json": EMPTY_FC}, True, True),
    ("geojson", None, {"json": EMPTY_FC}, False, True),  # null is not GeoJSON (upstream: empty == empty)
    ("geojson", feature(None), {"json": EMPTY_FC}, True, True),  # a Feature without geometry holds none
    # Array: decimal=3 element-wise; ragged and string arrays compare element-wise here, fail upstream
    ("Array", [1.0004, 2.0], npy([1.0, 2.0]), True, True),
    ("Array", [1.002, 2.0], npy([1.0, 2.0]), False, False),
    ("Array", [1.0, 2.0, 3.0], npy([1.0, 2.0]), False, False),
    ("Array", [[1, 2], [3]], npy(np.array([[1, 2], [3]], dtype=object).tolist(), dtype=object), True, False),
    ("Array", ["a", "b"], npy(["a", "b"]), True, False),
    ("Array", ["a", "c"], npy(["a", "b"]), False, False),
    ("Array", [None, 1.0], npy([float("nan"), 1.0]), False, False),  # null is not NaN
    # Object: int and float are both numbers here; upstream fails 1 vs 1.0 and passes true vs 1
    ("Object", {"a": 1, "b": [1.0, "x"]}, {"json": {"a": 1.0, "b": [1.0000001, "x"]}}, True, False),
    ("Object", {"a": True}, {"json": {"a": 1}}, False, True),
    ("Object", {"a": 1, "c": 2}, {"json": {"a": 1}}, False, False),
    ("Object", {"lat": 30.55, "lng": 114.36}, {"json": {"lat": 30.55, "lng": 114.36}}, True, True),
    ("Object", None, {"json": None}, True, True),
])
def test_comparisons(out_type, result, expected, correct, upstream):
    assert compare.correct(out_type, result, expected)[0] is correct
    assert compare.upstream(out_type, result, expected) is upstream


def test_upstream_fails_an_unknown_out_type_and_the_loader_marks_it_invalid(tmp_path):
    assert compare.upstream("matrix", 1, {"json": 1}) is False
    folder = _copy(tmp_path)
    text = (folder / "config.yaml").read_text().replace("out_type: boolean\n    expected_answer: isWithinRadius_case2",
                                                       "out_type: matrix\n    expected_answer: isWithinRadius_case2")
    (folder / "config.yaml").write_text(text)
    (case2,) = [c for c in _cases(folder) if c["index"] == 1]
    assert case2["invalid"].startswith("unknown out_type 'matrix'")


@pytest.mark.parametrize("response, upstream_code, code", [
    ("```javascript\nfunction f(a) { return a; }\n```", "function f(a) { return a; }", "function f(a) { return a; }"),
    # upstream keeps the `js` tag as the code's first line (a ReferenceError when run)
    ("```js\nfunction f(a) { return a; }\n```", "js\nfunction f(a) { return a; }", "function f(a) { return a; }"),
    ("```JavaScript\nfunction f() {}\n```", "JavaScript\nfunction f() {}", "function f() {}"),
    ("<think>```javascript\nfunction f() { return 0; }\n```</think>\n```javascript\nfunction f() { return 1; }\n```",
     "function f() { return 1; }", "function f() { return 1; }"),
    # two blocks: upstream takes the last; here the last one that defines the function
    ("```javascript\nfunction f() { return 1; }\n```\nUsage:\n```javascript\nf();\n```", "f();",
     "function f() { return 1; }"),
    ("function f() { return 2; }", "function f() { return 2; }", "function f() { return 2; }"),  # no fence
])
def test_extraction(response, upstream_code, code):
    assert prompts.clean_upstream(response) == upstream_code
    assert prompts.extract(response, "f") == code


def test_upstream_tests_the_first_function_it_finds():
    code = "function helper(x) { return x; }\nfunction f(a) { return helper(a); }"
    assert prompts.upstream_function_name(code) == "helper"  # upstream skips this file: "no test cases"
    assert prompts.upstream_function_name("const f = (a) => a;") is None


def test_prompts_are_the_official_ones():
    turf = prompts.user_prompt("turf", "function f() {\n}")
    assert turf.startswith("Please complete the following JavaScript function for local geospatial processing")
    assert "Keep the given docstring. The input may be empty or invalid" in turf
    assert turf.endswith("Wrap the code with ```javascript and ``` to indicate the code block.\n\n"
                         "Here is the function:\n\nfunction f() {\n}")
    other = prompts.user_prompt("geolib", "X")
    assert "Warp the code with ```javascript and ```  to indicate the code block.\n\nHere is the function:\n\nX" in other
    assert prompts.SYSTEM == "You are an expert in geospatial data processing using JavaScript."


def _copy(tmp_path: Path, lib: str = "geolib") -> Path:
    dst = tmp_path / f"{lib}_code"
    shutil.copytree(FIXTURES / f"{lib}_code", dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def _cases(folder: Path) -> list[dict]:
    (record,) = [r for _, r in data.read_folder(folder)]
    return record["cases"]


def test_loader_reads_the_fixtures_from_the_root_and_from_one_library_folder():
    task = get_task("geojseval").build()
    ids = sorted(s.id for s in task.dataset.open(str(FIXTURES))[1])
    assert ids == ["geolib/isWithinRadius", "turf/getEnvelope", "turf/getLineLengthKm"]
    turf = {s.id: s for s in task.dataset.open(str(FIXTURES / "turf_code"))[1]}
    assert sorted(turf) == ["turf/getEnvelope", "turf/getLineLengthKm"]
    s = turf["turf/getEnvelope"]
    assert s.metadata == {"library": "turf", "function": "getEnvelope", "cases": 3, "edge_cases": 1,
                          "invalid_cases": 0, "out_types": "geojson"}
    import json

    case2 = json.loads(s.files["cases.json"])[1]
    assert case2["params"][0][0] == "geojson" and "turf.lineString" in case2["params"][0][1]["__js__"]
    geolib = get_task("geojseval").build(variant="geolib")
    assert [x.id for x in geolib.dataset.open(str(FIXTURES))[1]] == ["geolib/isWithinRadius"]


def test_answer_files_decode_as_upstream_writes_them():
    (line, env) = [r for _, r in data.read_folder(FIXTURES / "turf_code")]
    assert [c["expected"] for c in line["cases"]] == [
        {"npy": {"dtype": "<f8", "value": 113.21908688664138}}, {"npy": {"dtype": "<f8", "value": 343.53033999857143}},
        {"npy": {"dtype": "<i8", "value": 0}}, {"text": "Invalid input: a LineString is required"}]
    assert env["cases"][2]["expected"]["json"]["geometry"]["coordinates"] == [[[7, 45]] * 5]


def test_a_missing_or_pickled_answer_file_makes_that_case_invalid(tmp_path):
    folder = _copy(tmp_path)
    (folder / "ref_answer" / "isWithinRadius_case1.npy").unlink()
    np.save(folder / "ref_answer" / "isWithinRadius_case2.npy", np.array([{"x": 1}], dtype=object))
    cases = _cases(folder)
    assert cases[0]["invalid"] == "answer file ref_answer/isWithinRadius_case1.npy is missing"
    assert cases[1]["invalid"].startswith("answer file ref_answer/isWithinRadius_case2.npy is unreadable")
    assert cases[2]["expected"] == {"npy": {"dtype": "|b1", "value": False}}


def test_a_folder_that_is_not_geojseval_data_is_a_one_line_error(tmp_path):
    from harness._dataset import DataError

    task = get_task("geojseval").build()
    with pytest.raises(DataError, match="neither a GeoJSEval `<lib>_code/` folder"):
        list(task.dataset.open(str(tmp_path))[1])
    broken = _copy(tmp_path)
    (broken / "config.yaml").write_text("isWithinRadius: [unclosed\n")
    with pytest.raises(DataError, match="not readable YAML"):
        list(task.dataset.open(str(broken))[1])


def test_hub_mirror_folder_and_visual_libraries(tmp_path):
    task = get_task("geojseval").build()
    assert sorted(s.id for s in task.dataset.open(f"hub:{FIXTURES}")[1]) == [
        "geolib/isWithinRadius", "turf/getEnvelope", "turf/getLineLengthKm"]
    leaflet = tmp_path / "leaflet_code"
    (leaflet / "test_instructions").mkdir(parents=True)
    (leaflet / "test_instructions" / "addMarker.txt").write_text("function addMarker(map) {\n}")
    (leaflet / "config.yaml").write_text("addMarker:\n  - params: {map: true}\n    out_type: Object\n"
                                         "    expected_answer: addMarker_case1.json\n    eval_methods: []\n")
    (sample,) = list(task.dataset.open(str(leaflet))[1])
    # the all-library task keeps the Node runner's limits: a visual function names the variant that runs it
    assert sample.invalid and "run it as geojseval@leaflet" in sample.invalid
    (sample,) = list(get_task("geojseval").build(args={"library": "leaflet"}).dataset.open(str(leaflet))[1])
    assert not sample.invalid and sample.id == "leaflet/addMarker" and sample.metadata["invalid_cases"] == 1
