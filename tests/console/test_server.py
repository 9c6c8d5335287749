"""The console's HTTP side on a real uvicorn server on loopback: the token on every request,
security headers, bounded and validated bodies, images only by their registered number."""
import json
import threading
import urllib.error
import urllib.request

import pytest

from benchbot.console.mux import OperatorMux
from benchbot.console.server import ConsoleServer, Hub, is_loopback
from benchbot.console.state import ConsoleState
from benchbot.core.errors import BenchbotError


@pytest.fixture
def served(tmp_path):
    hub = Hub()
    state = ConsoleState(hub.publish)
    (tmp_path / "run1").mkdir()
    (tmp_path / "run1" / "a1_overlay.png").write_bytes(b"\x89PNG fake")
    state.observe("run", {"run_id": "run-1", "backend": "hardware", "protocol": "p", "resumed": False,
                          "outcome_source": "operator", "n_trials": 3, "todo": 3, "needs_go": True,
                          "results_dir": str(tmp_path)})
    state.observe("attempt", {"run_id": "run-1", "trial_id": "t1", "trial_no": 1, "method": "centroid",
                              "object_id": "banana", "attempt_no": 1, "status": "final", "success": True,
                              "cause": None, "note": None, "source": "operator", "reason": None,
                              "overlay": "run1/a1_overlay.png"})
    server = ConsoleServer(state, hub).start()
    yield server, state
    state.close()
    server.stop()


def request(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def base(server):
    return f"http://127.0.0.1:{server.port}"


def test_loopback_by_default_and_the_token_is_required_everywhere(served):
    server, _ = served
    assert server.sock.getsockname()[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    assert len(server.token) >= 24
    paths = ["/", "/static/console.js", "/static/console.css", "/events", "/api/state", "/img/1"]
    for path in paths:
        for suffix in ("", "?token=", "?token=wrong" + server.token[6:]):
            status, headers, body = request(base(server) + path + suffix)
            assert status == 403, (path, suffix)
            assert b"another or a finished run" in body and headers["referrer-policy"] == "no-referrer"
    status, _, body = request(base(server) + "/api/answer", data=b"{}")
    assert status == 403
    status, _, _ = request(base(server) + "/api/state", headers={"x-benchbot-token": server.token})
    assert status == 200
    assert request(base(server) + "/favicon.ico")[0] == 204


def test_page_assets_and_headers(served):
    server, _ = served
    status, headers, body = request(server.url)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert f'data-token="{server.token}"' in body.decode() and "static/console.js?token=" in body.decode()
    assert "default-src 'none'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
    assert request(f"{base(server)}/static/other.js?token={server.token}")[0] == 404


def test_images_only_by_registered_number(served):
    server, state = served
    status, headers, body = request(f"{base(server)}/img/1?token={server.token}")
    assert status == 200 and body == b"\x89PNG fake" and headers["content-type"] == "image/png"
    assert request(f"{base(server)}/img/2?token={server.token}")[0] == 404
    assert request(f"{base(server)}/img/..%2F..%2Fetc%2Fpasswd?token={server.token}")[0] == 404


def test_answers_are_bounded_parsed_and_checked(served):
    server, state = served
    url = f"{base(server)}/api/answer?token={server.token}"
    assert request(url, data=b"x" * 5000)[0] == 413
    status, _, body = request(url, data=b"not json")
    assert status == 400 and json.loads(body)["message"] == "the request body is not JSON"
    mux = OperatorMux([state])
    mux.observe("run", {"run_id": "run-1"})
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("a", mux.confirm("placed?")), daemon=True)
    t.start()
    for _ in range(100):
        if state.question is not None:
            break
        t.join(0.02)
    qid = state.question.qid
    answer = {"run_id": "run-1", "qid": qid, "answer": {"value": "maybe"}}
    status, _, body = request(url, data=json.dumps(answer).encode())
    assert status == 400 and state.question is not None
    status, _, body = request(url, data=json.dumps({"run_id": "run-1", "qid": qid, "answer": {"value": "go"}}).encode())
    assert status == 200 and json.loads(body)["message"] == "recorded: run placement: go"
    t.join(5)
    assert box["a"] is True
    status, _, body = request(url, data=json.dumps({"run_id": "run-1", "qid": qid, "answer": {"value": "go"}}).encode())
    assert status == 409 and "already answered (by page: go)" in json.loads(body)["message"]


def test_the_event_stream_sends_the_state_first(served):
    server, _ = served
    with urllib.request.urlopen(f"{base(server)}/events?token={server.token}", timeout=5) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        r.readline()  # retry:
        data = json.loads(r.readline().decode().removeprefix("data: "))
    assert data["run"]["run_id"] == "run-1" and data["recent"][0]["verdict"] == "success"
    assert data["watch_only"] is False and data["counts"]["finals"] == 1


def test_a_busy_port_is_one_clear_error(served):
    server, state = served
    with pytest.raises(BenchbotError, match=f"cannot serve the console on 127.0.0.1:{server.port}"):
        ConsoleServer(state, Hub(), "127.0.0.1", server.port)


def test_loopback_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.9")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20") and not is_loopback("lab-pc.local")
