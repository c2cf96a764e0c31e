"""Property-based robustness tests through Flask's test client: whatever arrives, the answer is a known status
with the JSON error envelope, never a 5xx, and an error never changes the grid (GET /state byte-identical).

One app (fresh circuit) per test function; hypothesis runs its examples against it, so examples share state
(each test's docstring says so). Examples per test are in
EXAMPLES below; each parametrized endpoint gets its own run of that many.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, strategies as st
from werkzeug.exceptions import MethodNotAllowed, NotFound

from support.fuzzing import (BUSES, EDGE_NUMBERS, EDGE_TEXT, check_response, encode, fuzz_settings, json_values, post,
                             report)

EXAMPLES = {"whole_body": 300, "field": 500, "raw_bytes": 200, "content_type": 100, "path": 300, "query": 150}


#: For one field of an otherwise valid body: anything, plus values near the valid ones so every outcome occurs.
field_values = st.one_of(
    json_values, st.integers(min_value=-3, max_value=16), st.floats(min_value=-1.0, max_value=2e5),
    st.floats(min_value=0.0, max_value=12.0), st.sampled_from(EDGE_NUMBERS),
    st.sampled_from(sorted(BUSES)), st.sampled_from(sorted(BUSES)).map(str.upper),
    st.sampled_from(sorted(BUSES)).flatmap(
        lambda b: st.sampled_from([b + " ", "\t" + b, b + "\x00", b + ".1", b * 30])))


# ---------------------------------------------------------------------------------------------- whole bodies
@pytest.mark.parametrize("path", ["/add_generator", "/modify_load_neighbourhood", "/reset"])
def test_arbitrary_json_as_whole_body(client, path):
    """Any JSON as the whole body. Shares state across examples: one app per test (a fresh circuit), and the accepted
    changes of earlier examples stay. That is deliberate (it fuzzes from the states users reach), and safe since no
    state reached by accepted changes can make a later valid change fail for lack of iterations
    (tests/property/test_trap_states.py)."""
    seen: Counter = Counter()

    @fuzz_settings(EXAMPLES["whole_body"])
    @given(value=json_values)
    def run(value):
        before = client.get("/state").data
        response = post(client, path, encode(value))
        seen[response.status_code] += 1
        check_response(client, response, before)
        if not isinstance(value, dict):
            assert response.status_code == 400, (value, response.status_code)
        elif path == "/reset":
            assert response.status_code == (200 if value == {} else 400), (value, response.status_code)
        elif value == {} or set(value) - {"bus_name", "phases", "kw", "phase", "neighbourhood", "factor"}:
            assert response.status_code == 400, (value, response.status_code)

    run()
    report(f"whole body {path}", seen, EXAMPLES["whole_body"] // 2, {200, 400} if path == "/reset" else {400})


# ---------------------------------------------------------------------------------------------- field values
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def expected_number_statuses(value: Any, low: float, high: float) -> set[int]:
    """Strict float field checked by bounds in the core: wrong type 400, out of bounds or non-finite 422."""
    if not _is_number(value):
        return {400}
    if _is_int(value) and abs(value) > 1.7976931348623157e308:
        return {400}  # no float can hold it
    if not math.isfinite(value) or not low <= value <= high:
        return {422}
    return {200, 422}  # in bounds: applied, or refused by the solver (or a compounding limit)


def _is_unicode(text: str) -> bool:
    """JSON can carry a lone surrogate ("\\udfff"), which is no Unicode text: the app refuses it as a 400."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def expected_generator_statuses(field: str, value: Any) -> set[int]:
    """Body {"bus_name": "16", "phases": 1, "kw": 200} with one field replaced; bus 16 has phase 3 only."""
    if field == "bus_name":
        if not isinstance(value, str) or not 1 <= len(value) <= 64 or not _is_unicode(value):
            return {400}
        if value.lower() in BUSES:
            return {200, 422}
        if value.strip().lower() in BUSES:
            return {200, 404, 422}  # whether surrounding whitespace is trimmed is the app's choice
        return {404}
    if field == "phases":
        if _is_int(value) and value == 1:
            return {200}
        return {422} if _is_int(value) and value == 3 else {400}
    if field == "kw":
        return expected_number_statuses(value, 0.0, 100_000.0)
    if field == "phase":
        if value is None or (_is_int(value) and value == 3):
            return {200}
        return {422} if _is_int(value) and value in (1, 2) else {400}
    return {400}  # any other field is unknown


def expected_neighbourhood_statuses(field: str, value: Any) -> set[int]:
    """Body {"neighbourhood": 5, "factor": 1.0} with one field replaced."""
    if field == "neighbourhood":
        if not _is_int(value):
            return {400}
        return {200, 422} if 1 <= value <= 14 else {404}
    if field == "factor":
        return expected_number_statuses(value, 0.0, 10.0)
    return {400}


FIELD_CASES = {
    "/add_generator": ({"bus_name": "16", "phases": 1, "kw": 200}, ["bus_name", "phases", "kw", "phase", "extra"],
                       expected_generator_statuses),
    "/modify_load_neighbourhood": ({"neighbourhood": 5, "factor": 1.0}, ["neighbourhood", "factor", "extra"],
                                   expected_neighbourhood_statuses),
}


@pytest.mark.parametrize("path", list(FIELD_CASES))
def test_arbitrary_json_as_field_value(client, path):
    """Any JSON as one field of a valid body. Shares state across examples: one app per test (a fresh circuit), and the accepted changes of
    earlier examples stay. That is deliberate (it fuzzes from the states users reach), and safe since no
    state reached by accepted changes can make a later valid change fail for lack of iterations
    (tests/property/test_trap_states.py)."""
    base, fields, expected = FIELD_CASES[path]
    seen: Counter = Counter()

    @fuzz_settings(EXAMPLES["field"])
    @given(field=st.sampled_from(fields), value=field_values)
    def run(field, value):
        body = {**base, field: value}
        before = client.get("/state").data
        response = post(client, path, encode(body))
        seen[response.status_code] += 1
        check_response(client, response, before)
        allowed = expected(field, value)
        assert response.status_code in allowed, (field, value, response.status_code, response.get_json())
        if response.status_code == 400:
            assert response.get_json().get("field") == field, (field, value, response.get_json())

    run()
    report(f"field values {path}", seen, EXAMPLES["field"] // 2, {200, 400, 404, 422})


# ---------------------------------------------------------------------------------------------- raw bytes
@pytest.mark.parametrize("path", ["/add_generator", "/modify_load_neighbourhood", "/reset"])
def test_raw_bytes_bodies(client, path):
    """Any bytes as the body. Shares state across examples: one app per test (a fresh circuit), and the accepted
    changes of earlier examples stay. That is deliberate (it fuzzes from the states users reach), and safe since no
    state reached by accepted changes can make a later valid change fail for lack of iterations
    (tests/property/test_trap_states.py)."""
    seen: Counter = Counter()

    @fuzz_settings(EXAMPLES["raw_bytes"])
    @given(data=st.binary(max_size=600) | st.sampled_from([b"\xff\xfe{\x00}\x00", b"\xef\xbb\xbf{}", b"{}\x00",
                                                             b"\x00", b"{\"kw\": 1e999}", b"[" * 50, b"{" * 50]))
    def run(data):
        before = client.get("/state").data
        response = post(client, path, data)
        seen[response.status_code] += 1
        check_response(client, response, before)
        try:
            parsed = json.loads(data)
        except ValueError:
            assert response.status_code == 400, (data, response.status_code)
            return
        if not isinstance(parsed, dict):
            assert response.status_code == 400, (data, response.status_code)

    run()
    report(f"raw bytes {path}", seen, EXAMPLES["raw_bytes"] // 2, {400})


@pytest.mark.parametrize("path", ["/add_generator", "/modify_load_neighbourhood", "/reset"])
def test_content_types(client, path):
    """Any Content-Type with a valid body. Shares state across examples: one app per test (a fresh circuit), and the accepted changes of
    earlier examples stay. That is deliberate (it fuzzes from the states users reach), and safe since no
    state reached by accepted changes can make a later valid change fail for lack of iterations
    (tests/property/test_trap_states.py)."""
    valid = {"/add_generator": {"bus_name": "16", "phases": 1, "kw": 10},
             "/modify_load_neighbourhood": {"neighbourhood": 5, "factor": 1.0}, "/reset": {}}[path]
    seen: Counter = Counter()

    @fuzz_settings(EXAMPLES["content_type"])
    @given(content_type=st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
           | st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                              "application/xml", "application/json-patch", "json", "application/jsonx",
                              "text/json", "application/json; charset=utf-16", "application/merge-patch+json"]))
    def run(content_type):
        before = client.get("/state").data
        response = post(client, path, encode(valid), content_type)
        seen[response.status_code] += 1
        check_response(client, response, before)
        if "json" not in (content_type or "").lower():
            assert response.status_code == 415, (content_type, response.status_code)

    run()
    report(f"content types {path}", seen, EXAMPLES["content_type"] // 2, {200, 415})


# ---------------------------------------------------------------------------------------------- literals
@pytest.mark.parametrize("path,field,valid", [
    ("/add_generator", "kw", {"bus_name": "16", "phases": 1, "kw": 1}),
    ("/modify_load_neighbourhood", "factor", {"neighbourhood": 5, "factor": 1}),
])
@pytest.mark.parametrize("literal,status", [
    ("NaN", 422), ("Infinity", 422), ("-Infinity", 422), ("1e999", 422), ("-1e999", 422),
    ("nan", 400), ("inf", 400), ("+1", 400), ("0x10", 400), ("1_000", 400), ("01", 400), (".5", 400),
    ("1" * 5000, 400),
])
def test_non_finite_and_invalid_number_literals(client, path, field, valid, literal, status):
    before = client.get("/state").data
    body = json.dumps(valid).replace(f'"{field}": 1', f'"{field}": {literal}')
    assert literal in body
    response = post(client, path, body.encode())
    check_response(client, response, before)
    assert response.status_code == status, (literal, response.get_json())


@pytest.mark.parametrize("path,field,valid", [
    ("/add_generator", "phases", {"bus_name": "16", "phases": 1, "kw": 1}),
    ("/modify_load_neighbourhood", "neighbourhood", {"neighbourhood": 1, "factor": 1}),
])
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "1.0", "1e0"])
def test_non_finite_literals_in_integer_fields_are_400(client, path, field, valid, literal):
    before = client.get("/state").data
    body = json.dumps(valid).replace(f'"{field}": 1', f'"{field}": {literal}', 1)
    response = post(client, path, body.encode())
    check_response(client, response, before)
    assert response.status_code == 400, (literal, response.get_json())


# ---------------------------------------------------------------------------------------------- nesting
NESTED = [
    *((f"arrays {depth}", "[" * depth + "]" * depth) for depth in (500, 990, 1_000, 2_000)),
    ("arrays", "[" * 10_000 + "]" * 10_000),
    ("objects", '{"a":' * 10_000 + "1" + "}" * 10_000),
    ("arrays in a field", '{"bus_name": "16", "phases": 1, "kw": ' + "[" * 10_000 + "]" * 10_000 + "}"),
    ("mixed", '[{"a":' * 5_000 + "1" + "}]" * 5_000),
    ("arrays 30k", "[" * 30_000 + "]" * 30_000),
]


@pytest.mark.parametrize("path", ["/add_generator", "/modify_load_neighbourhood", "/reset"])
@pytest.mark.parametrize("name,data", NESTED, ids=[n for n, _ in NESTED])
def test_deeply_nested_bodies_are_400(client, path, name, data):
    assert len(data) <= 64 * 1024  # under the size limit: the parser itself must refuse it
    before = client.get("/state").data
    response = post(client, path, data.encode())
    check_response(client, response, before)
    assert response.status_code == 400, response.get_json()


def test_unclosed_deep_nesting_is_400(client):
    before = client.get("/state").data
    response = post(client, "/add_generator", b"[" * 60_000)
    check_response(client, response, before)
    assert response.status_code == 400


# ---------------------------------------------------------------------------------------------- empty bodies
@pytest.mark.parametrize("path", ["/add_generator", "/modify_load_neighbourhood", "/reset"])
@pytest.mark.parametrize("data,content_type,status", [
    (b"", "application/json", 400),
    (b"   \n\t", "application/json", 400),
    (b"null", "application/json", 400),
    (b"", None, 415),
    (b"", "text/plain", 415),
])
def test_empty_bodies(client, path, data, content_type, status):
    before = client.get("/state").data
    response = post(client, path, data, content_type)
    check_response(client, response, before)
    assert response.status_code == status, response.get_json()


@pytest.mark.parametrize("path", ["/add_generator", "/modify_load_neighbourhood"])
def test_empty_object_is_400_and_names_a_missing_field(client, path):
    before = client.get("/state").data
    response = post(client, path, b"{}")
    body = check_response(client, response, before)
    assert response.status_code == 400 and "required" in body["message"], body


# ---------------------------------------------------------------------------------------------- wrong methods
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE", "PROPFIND", "FOO"]


def concrete_paths(app) -> list[str]:
    """Every route of the app, with its variables filled with a valid value."""
    paths = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for argument in rule.arguments:
            value = {"name": "16", "filename": "index.html"}.get(argument, "x")
            path = path.replace(f"<{argument}>", value).replace(f"<path:{argument}>", value)
        paths.add(path)
    return sorted(paths)


def test_wrong_methods_on_every_route(client):
    app = client.application
    adapter = app.url_map.bind("localhost")
    paths = concrete_paths(app)
    assert {"/add_generator", "/modify_load_neighbourhood", "/reset", "/state", "/health", "/buses",
            "/buses/16", "/lines", "/neighbourhoods", "/generators", "/generators/16", "/openapi.json"} <= set(paths)
    tried = 0
    for path in paths:
        for method in METHODS:
            try:
                adapter.match(path, method=method)
                continue  # allowed on this route
            except MethodNotAllowed:
                pass
            except NotFound:
                continue
            before = client.get("/state").data
            for data, content_type in ((None, None), (b'{"bus_name": "16", "phases": 1, "kw": 10}', "application/json"),
                                       (b"x=1", "application/x-www-form-urlencoded")):
                response = client.open(path, method=method, data=data, content_type=content_type)
                assert response.status_code == 405, (method, path, response.status_code)
                check_response(client, response, before)
                assert "allowed" in response.get_json()["message"]
                tried += 1
    assert tried >= 60


def test_options_and_head_do_not_change_the_grid(client):
    before = client.get("/state").data
    for path in ["/add_generator", "/modify_load_neighbourhood", "/reset", "/generators/gen_16_3", "/state"]:
        response = client.options(path)
        assert response.status_code in {200, 204}, (path, response.status_code)
        assert "Allow" in response.headers
        assert client.head(path).status_code in {200, 405}
    assert client.get("/state").data == before


# ---------------------------------------------------------------------------------------------- paths and queries
path_text = st.text(min_size=1, max_size=100) | st.sampled_from(
    [t for t in EDGE_TEXT if t and "\ud800" not in t and "\udfff" not in t] + ["g" * 81, "gen_16_3" * 11])


def _path_segment(text: str) -> str:
    return quote(text, safe="")


@pytest.mark.parametrize("method,prefix", [("GET", "/buses/"), ("DELETE", "/generators/")])
def test_arbitrary_path_names(client, method, prefix):
    """Any text as a bus or generator name in the path. Shares state across examples: one app per test (a fresh circuit), and the accepted changes of
    earlier examples stay. That is deliberate (it fuzzes from the states users reach), and safe since no
    state reached by accepted changes can make a later valid change fail for lack of iterations
    (tests/property/test_trap_states.py)."""
    limit = 64 if prefix == "/buses/" else 80
    seen: Counter = Counter()

    @fuzz_settings(EXAMPLES["path"])
    @given(name=path_text.filter(lambda t: not t.startswith("/") and "//" not in t))  # see test_double_slashes
    def run(name):
        before = client.get("/state").data
        response = client.open(prefix + _path_segment(name), method=method)
        seen[response.status_code] += 1
        check_response(client, response, before)
        if response.status_code == 200:
            assert method == "GET" and name.strip().lower() in BUSES, name
        elif "/" in name or name in (".", ".."):
            assert response.status_code == 404, (name, response.status_code)
        elif len(name) > limit:
            assert response.status_code == 400, (name, response.status_code)
        elif method == "DELETE":
            assert response.status_code == 404, (name, response.status_code)  # no generator in a fresh grid
        elif name.lower() in BUSES:
            raise AssertionError(f"bus {name!r} was not found")
        else:
            assert response.status_code == 404, (name, response.status_code)
        assert client.get("/state").data == before

    run()
    report(f"path names {method} {prefix}<name>", seen, EXAMPLES["path"] // 2, {400, 404})


@pytest.mark.parametrize("method,path", [
    ("GET", "/buses//16"), ("DELETE", "/generators//gen_16_3"), ("GET", "/buses/%2F16"),
    ("DELETE", "/generators/%2Fgen_16_3"), ("GET", "/buses/16//"),
])
def test_double_slashes_get_a_json_answer_not_a_redirect(client, method, path):
    """Werkzeug merges repeated slashes with a 308 redirect whose body is HTML; the API answers JSON only."""
    before = client.get("/state").data
    response = client.open(path, method=method)
    check_response(client, response, before)


QUERY_ROUTES = ["/state", "/buses", "/lines", "/health", "/generators", "/neighbourhoods"]


@pytest.mark.parametrize("route", QUERY_ROUTES)
def test_arbitrary_query_strings(client, route):
    """Any query string on the read routes. Shares state across examples: one app per test (a fresh circuit), and the accepted changes of
    earlier examples stay. That is deliberate (it fuzzes from the states users reach), and safe since no
    state reached by accepted changes can make a later valid change fail for lack of iterations
    (tests/property/test_trap_states.py)."""
    keys = st.sampled_from(["sections", "format", "x", "", "sections[]", "format\x00"]) | st.text(max_size=10)
    values = st.text(max_size=60) | st.sampled_from(["csv", "json", "CSV", "power_summary", "bus_details,losses",
                                                      "power_summary,", ",", "csv\x00", "json ", "power_summary" * 20])
    seen: Counter = Counter()

    @fuzz_settings(EXAMPLES["query"])
    @given(params=st.lists(st.tuples(keys, values), max_size=4))
    def run(params):
        before = client.get("/state").data
        query = urlencode([(k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass"))
                           for k, v in params])
        response = client.get(f"{route}?{query}")
        seen[response.status_code] += 1
        assert response.status_code in {200, 400}, (params, response.status_code, response.data[:200])
        if response.status_code == 200 and response.mimetype == "text/csv":
            assert route in ("/state", "/buses", "/lines") and any(v == "csv" for k, v in params if k == "format")
        else:
            check_response(client, response, before)
        assert client.get("/state").data == before  # a GET never changes the grid

    run()
    report(f"query strings {route}", seen, EXAMPLES["query"] // 2,
           {200} if route in ("/health", "/generators", "/neighbourhoods") else {200, 400})
