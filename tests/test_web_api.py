"""The JSON/SVG API of ``tconv serve`` (issue 10): every endpoint, bad and hostile input,
the limits, the command, and 200 concurrent requests against a real uvicorn server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

if os.environ.get("TCONV_REQUIRE_ORACLES"):
    import starlette  # noqa: F401  (CI: the web extra must be there)
    import uvicorn  # noqa: F401
else:
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

import tconv  # noqa: E402
from tconv.draw import draw  # noqa: E402
from tconv.translation import translate  # noqa: E402
from tconv.web import background, create_app, forms  # noqa: E402

SEED = "keras.Conv2DTranspose(512, 3, strides=2, padding='same')"
SMALL = "keras.Conv1DTranspose(1, 3, strides=2, padding='same')"  # small enough for every view


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(), base_url="http://127.0.0.1") as c:
        yield c


def _json(obj):
    return json.loads(json.dumps(obj))


# ---------------------------------------------------------------------------- explain


@pytest.mark.parametrize("framework", forms.FRAMEWORKS)
@pytest.mark.parametrize("kind", forms.KINDS)
@pytest.mark.parametrize("rank", (1, 2))
def test_explain_returns_exactly_explain_to_dict(client, framework, kind, rank):
    text, shape = forms.example(framework, kind, rank)
    r = client.get("/api/explain", params={"spec": text, "input": shape})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    want = tconv.explain(text, tuple(int(v) for v in shape.split(","))).to_dict()
    assert r.json() == _json(want)
    assert "refused" not in r.json()


def test_explain_the_seed(client):
    r = client.get("/api/explain", params={"spec": SEED, "input": "8x8x1024"})
    assert r.json()["output_shape"] == [16, 16, 512]
    assert [(a["full"], a["crop_lo"], a["crop_hi"]) for a in r.json()["axes"]] == [(17, 0, 1), (17, 0, 1)]


def test_explain_a_refusal_is_the_frameworks_message(client):
    text = "keras.Conv2DTranspose(512, 3, strides=2, dilation_rate=2)"
    r = client.get("/api/explain", params={"spec": text, "input": "8,8,1024"})
    assert r.status_code == 200
    assert r.json() == _json(tconv.explain(text, (8, 8, 1024)).to_dict())
    assert "not supported in conjunction with `dilation_rate > 1`" in r.json()["refused"]


# ------------------------------------------------------------------------------- draw


@pytest.mark.parametrize("view", forms.VIEWS)
def test_draw_every_view_is_tconv_draw(client, view):
    r = client.get("/api/draw", params={"spec": SMALL, "input": "4,1", "view": view})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/svg+xml"
    assert r.text == str(draw(SMALL, (4, 1), view=view))
    assert f'data-view="{view}"' in r.text


def test_draw_frames_and_one_frame(client):
    r = client.get("/api/frames", params={"spec": SEED, "input": "8,8,1024", "view": "scatter"})
    frames = r.json()
    assert len(frames["frames"]) == 65 and frames["static"] == 64
    assert frames["frames"][0]["kind"] == "step" and frames["frames"][-1]["kind"] == "crop"
    one = client.get("/api/draw", params={"spec": SEED, "input": "8,8,1024", "frame": "3"})
    assert one.text == str(draw(SEED, (8, 8, 1024), frame=3))
    assert one.text != client.get("/api/draw", params={"spec": SEED, "input": "8,8,1024"}).text


def test_draw_default_view_is_scatter(client):
    r = client.get("/api/draw", params={"spec": SEED, "input": "8,8,1024"})
    assert r.text == str(draw(SEED, (8, 8, 1024)))


# -------------------------------------------------------------------------- translate


@pytest.mark.parametrize("to", ("torch", "tf", "jax", "onnx", "keras"))
def test_translate_returns_the_translation_and_its_code(client, to):
    r = client.get("/api/translate", params={"spec": SEED, "input": "8,8,1024", "to": to})
    assert r.status_code == 200, r.text
    t = translate(SEED, to=to, input_shape=(8, 8, 1024))
    assert r.json() == _json({**t.to_dict(), "code": t.code})
    assert "layer" in r.json()["code"]


# ------------------------------------------------------------------------ form / spec


def test_form_of_the_seed(client):
    r = client.get("/api/form", params={"spec": SEED, "input": "8,8,1024"})
    f = r.json()
    assert f["callee"] == "keras.Conv2DTranspose" and f["accepted"] is True
    names = [x["name"] for x in f["fields"]]
    assert names[:4] == ["filters", "kernel_size", "strides", "padding"]
    strides = next(x for x in f["fields"] if x["name"] == "strides")
    # the default comes from the dialect's signature, the valid choices from the dialect's planning
    assert strides["default"] == "(1, 1)" and strides["value"] == "2"
    assert [o["value"] for o in strides["options"]] == ["", "1", "2", "3", "4"]
    output_padding = next(x for x in f["fields"] if x["name"] == "output_padding")
    assert [o["value"] for o in output_padding["options"]] == ["", "0", "1"]  # < strides=2
    dilation = next(x for x in f["fields"] if x["name"] == "dilation_rate")
    assert [o["value"] for o in dilation["options"]] == ["", "1"]  # Keras: no dilation with strides > 1


def test_form_marks_the_value_the_framework_refuses(client):
    text = "keras.Conv2DTranspose(512, 3, strides=2, dilation_rate=2)"
    f = client.get("/api/form", params={"spec": text, "input": "8,8,1024"}).json()
    assert f["accepted"] is False
    dilation = next(x for x in f["fields"] if x["name"] == "dilation_rate")
    assert dilation["options"][0] == {"value": "2", "label": "2 (refused)", "refused": True}


@pytest.mark.parametrize("framework", forms.FRAMEWORKS)
@pytest.mark.parametrize("kind", forms.KINDS)
def test_form_examples(client, framework, kind):
    f = client.get("/api/form", params={"framework": framework, "kind": kind, "rank": "1"}).json()
    assert f["framework"] == framework and f["kind"] == kind and f["rank"] == 1 and f["accepted"]
    assert client.get("/api/explain", params={"spec": f["spec"], "input": f["input"]}).status_code == 200


def test_form_default_is_the_seed(client):
    f = client.get("/api/form").json()
    assert (f["spec"], f["input"]) == (SEED, "8,8,1024")


def test_spec_from_form_values(client):
    r = client.get("/api/spec", params={"callee": "keras.Conv2DTranspose", "filters": "512", "kernel_size": "3",
                                        "strides": "1", "padding": "'same'", "output_padding": ""})
    assert r.json() == {"spec": "keras.Conv2DTranspose(512, 3, strides=1, padding='same')"}
    r = client.get("/api/spec", params=[("callee", "onnx.ConvTranspose"), ("strides", "2"), ("strides", "1"),
                                        ("kernel_shape", "(3, 3)"), ("out_channels", "8")])
    assert r.json() == {"spec": "onnx.ConvTranspose(kernel_shape=(3, 3), strides=(2, 1), out_channels=8)"}


# ---------------------------------------------------------------- bad and hostile input

BAD = [
    ("/api/explain", {"spec": "__import__('os').system('echo owned')", "input": "8,8,3"}, "must be a dotted name"),
    ("/api/explain", {"spec": "keras.Conv2D(8, 3, activation=relu)", "input": "8,8,3"}, "a name is not a literal"),
    ("/api/explain", {"spec": "keras.Conv2D(8, (lambda: 3)())", "input": "8,8,3"}, "calls are not allowed"),
    ("/api/explain", {"spec": "keras.Conv2D(8, 3, strides=2**64)", "input": "8,8,3"}, "arithmetic is not allowed"),
    ("/api/explain", {"spec": "keras.Conv2D(8, 10**100)", "input": "8,8,3"}, "arithmetic is not allowed"),
    ("/api/explain", {"spec": "keras.Conv2D(8, 99999999)", "input": "8,8,3"}, "at most 1000000"),
    ("/api/explain", {"spec": "keras.Conv2D(8, " + "(" * 50 + "3" + ")" * 50 + ")", "input": "8,8,3"}, "nest"),
    ("/api/explain", {"spec": "keras.Conv2D(" + "1, " * 1500 + ")", "input": "8,8,3"}, "characters long"),
    ("/api/explain", {"spec": "keras.Conv2D(8, 3", "input": "8,8,3"}, "not valid Python call syntax"),
    ("/api/explain", {"spec": "os.system('rm -rf /')", "input": "8,8,3"}, "not a known convolution"),
    ("/api/explain", {"spec": SEED, "input": "100000,100000,1024"}, "longer than 4096"),
    ("/api/explain", {"spec": SEED, "input": "4096,4096,4096"}, "elements"),
    ("/api/explain", {"spec": SEED, "input": "8,8,abc"}, "must be lengths"),
    ("/api/explain", {"spec": SEED, "input": "-8,8,3"}, "must be lengths"),
    ("/api/explain", {"spec": SEED, "input": "8,8,1024,1,1,1,1,1"}, "must be lengths"),
    ("/api/explain", {"spec": SEED, "input": "8,1024"}, "must have 3 or 4 axes"),
    ("/api/explain", {"spec": SEED}, "input is missing"),
    ("/api/explain", {"input": "8,8,3"}, "spec is missing"),
    ("/api/explain", {"spec": "x" * 5000, "input": "8,8,3"}, "characters long"),
    ("/api/draw", {"spec": SEED, "input": "8,8,1024", "view": "hologram"}, "must be one of scatter"),
    ("/api/draw", {"spec": SEED, "input": "8,8,1024", "view": "../../etc/passwd"}, "must be one of scatter"),
    ("/api/draw", {"spec": SEED, "input": "64,64,8"}, "the page draws at most 256"),
    ("/api/draw", {"spec": SEED, "input": "8,8,8", "view": "matrix"}, "needs a small case"),
    ("/api/draw", {"spec": SEED, "input": "8,8,8", "frame": "999"}, "must index the 65 frames"),
    ("/api/draw", {"spec": SEED, "input": "8,8,8", "frame": "one"}, "must be an integer"),
    ("/api/draw", {"spec": "keras.Conv2DTranspose(512, 3, strides=2, dilation_rate=2)", "input": "8,8,8"},
     "not supported in conjunction"),
    ("/api/frames", {"spec": SEED, "input": "8,8,8", "view": "nope"}, "must be one of scatter"),
    ("/api/translate", {"spec": SEED, "input": "8,8,1024", "to": "caffe"}, "must be one of keras"),
    ("/api/translate", {"spec": SEED, "input": "8,8,1024"}, "to is missing"),
    ("/api/translate", {"spec": "keras.Conv2DTranspose(512, 3, strides=2, dilation_rate=2)", "input": "8,8,8",
                        "to": "torch"}, "not supported in conjunction"),
    ("/api/form", {"framework": "caffe"}, "framework='caffe' must be one of"),
    ("/api/form", {"framework": "keras", "rank": "9"}, "rank=9 must be one of"),
    ("/api/form", {"framework": "keras", "kind": "sideways"}, "kind='sideways' must be one of"),
    ("/api/form", {"spec": "keras.Conv2D(8, 3)", "input": "1,2,3,4,5,6,7,8"}, "must be lengths"),
    ("/api/spec", {"callee": "keras.Conv2D", "filters": "8, strides=3"}, "must be a single value"),
    ("/api/spec", {"callee": "keras.Conv2D", "filters": "__import__('os')"}, "calls are not allowed"),
    ("/api/spec", {"callee": "keras.Conv2D", "filters": "8) or (1"}, "must be a single value"),
    ("/api/spec", {"callee": "keras.Conv2D", "no_such": "1"}, "has no argument 'no_such'"),
    ("/api/spec", {"callee": "builtins.eval"}, "not a known convolution"),
]


@pytest.mark.parametrize("path,params,message", BAD, ids=[f"{p}:{m}" for p, _, m in BAD])
def test_bad_input_is_a_400_with_the_message(client, path, params, message):
    r = client.get(path, params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"} and message in body["error"], body
    assert "Traceback" not in r.text and 'File "' not in r.text


def test_no_file_system_through_any_path(client):
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/index.html", "/etc/passwd",
                 "/api/../../etc/passwd", "/static/forms.py"):
        r = client.get(path)
        assert r.status_code == 404 and "error" in r.json(), path
    assert client.post("/api/explain").status_code == 405


def test_only_local_host_names_are_answered():
    with TestClient(create_app()) as other:  # Host: testserver, as a rebinding page would send its own name
        assert other.get("/").status_code == 400


def test_page_and_assets_are_served_with_a_strict_policy(client):
    r = client.get("/")
    assert r.status_code == 200 and 'id="output-shape"' in r.text
    for hook in ("output-shape", "explanation", "picture", "error"):
        assert f'id="{hook}"' in r.text
    assert "http://" not in r.text and "https://" not in r.text  # nothing from the internet
    assert "script-src 'self'" in r.headers["content-security-policy"]
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "http" not in js.text.replace("history", "")
    assert client.get("/static/style.css").status_code == 200


def test_a_slow_request_is_stopped_with_a_400():
    with TestClient(create_app(timeout=0.001), base_url="http://127.0.0.1") as slow:
        r = slow.get("/api/explain", params={"spec": "keras.Conv2DTranspose(77, 5, strides=3, padding='same')",
                                             "input": "31,29,64"})
    assert r.status_code == 400 and "took longer than" in r.json()["error"]


# ------------------------------------------------------------------------ concurrency


def test_200_concurrent_requests_from_16_threads_against_a_real_server():
    cases = []
    for stride in (1, 2, 3):
        for kernel in (1, 2, 3, 4):
            text = f"keras.Conv2DTranspose(4, {kernel}, strides={stride}, padding='same')"
            cases.append(("explain", text, "5,6,3"))
            cases.append(("draw", text, "5,6,3"))
    cases.append(("explain", "keras.Conv2DTranspose(4, 3, strides=2, dilation_rate=2)", "5,6,3"))  # refused
    cases.append(("bad", "keras.Conv2D(8, 3, activation=relu)", "5,6,3"))
    expected = {}
    for what, text, shape in cases:
        sh = tuple(int(v) for v in shape.split(","))
        if what == "explain":
            expected[(what, text)] = (200, _json(tconv.explain(text, sh).to_dict()))
        elif what == "draw":
            expected[(what, text)] = (200, str(draw(text, sh, view="overlap")))
        else:
            expected[(what, text)] = (400, None)
    requests = [cases[i % len(cases)] for i in range(200)]
    results: list = [None] * len(requests)
    with background() as url:
        assert url.startswith("http://127.0.0.1:")

        def worker(k):
            for i in range(k, len(requests), 16):
                what, text, shape = requests[i]
                path = "/api/draw" if what == "draw" else "/api/explain"
                query = {"spec": text, "input": shape} | ({"view": "overlap"} if what == "draw" else {})
                try:
                    with urllib.request.urlopen(f"{url.rstrip('/')}{path}?{urllib.parse.urlencode(query)}",
                                                timeout=60) as resp:
                        body = resp.read().decode()
                        results[i] = (resp.status, json.loads(body) if what == "explain" else body)
                except urllib.error.HTTPError as exc:
                    results[i] = (exc.code, json.loads(exc.read().decode()))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert all(r is not None for r in results), "some requests were not answered"
    for (what, text, _), (status, body) in zip(requests, results):
        want_status, want = expected[(what, text)]
        assert status == want_status, (what, text, body)
        if want is not None:
            assert body == want, (what, text)
        else:
            assert "a name is not a literal" in body["error"]


# ---------------------------------------------------------------------- the command


def test_import_tconv_loads_no_web_dependency():
    code = ("import sys, tconv, tconv.cli; "
            "assert not [m for m in ('starlette', 'uvicorn', 'tconv.web') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True)


def _serve(*args):
    proc = subprocess.Popen([sys.executable, "-m", "tconv", "serve", "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    return proc, line


def test_tconv_serve_binds_localhost_prints_the_url_and_stops_on_ctrl_c():
    proc, line = _serve()
    try:
        assert line.startswith("tconv serve: http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/explain?" + urllib.parse.urlencode(
                {"spec": SEED, "input": "8,8,1024"}), timeout=30) as resp:
            assert json.loads(resp.read())["output_shape"] == [16, 16, 512]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_tconv_serve_warns_for_another_host():
    proc, line = _serve("--host", "0.0.0.0")
    try:
        assert line.startswith("tconv serve: http://"), line
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert "warning: binding 0.0.0.0" in err and proc.returncode == 0
