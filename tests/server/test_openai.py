"""`tern serve` driven by the official openai Python package, streamed and whole, plus the raw HTTP cases
(bad input, oversized bodies, 404, tokenize), batching invariance through the server, vanished clients (streamed,
whole, queued) and slow readers, admission control (429), the API key, and graceful SIGTERM. Ends by checking
through /metrics that no KV block is left in use."""
import concurrent.futures as cf
import http.client
import json
import os
import signal
import socket
import struct
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, args, check, sanitized, skip_or_fail  # noqa: E402

try:
    import openai
except ImportError:
    skip_or_fail("the openai package is not installed in .venv (run scripts/setup.sh)")


def post(server, path, body, headers=None, raw=False):
    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(server.url(path), data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def expect_error(status, body, want_status, fragment):
    check(status == want_status, f"want HTTP {want_status}, got {status}: {body}")
    err = json.loads(body)["error"]
    for key in ("message", "type", "param", "code"):
        check(key in err, f"error object lacks '{key}': {body}")
    check(fragment in err["message"], f"error message lacks '{fragment}': {err['message']}")


def test_api(server, client, asan):
    models = client.models.list()
    check(models.data and models.data[0].id.startswith("SmolLM2"), f"models: {models}")

    msgs = [{"role": "user", "content": "Write one sentence about the sea."}]
    whole = client.chat.completions.create(model="x", messages=msgs, max_tokens=16, temperature=0)
    text = whole.choices[0].message.content
    check(text and whole.choices[0].finish_reason in ("stop", "length"), f"chat: {whole}")
    check(whole.usage.completion_tokens > 0 and whole.usage.prompt_tokens > 10, f"usage: {whole.usage}")
    pieces = []
    for chunk in client.chat.completions.create(model="x", messages=msgs, max_tokens=16, temperature=0, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    check("".join(pieces) == text, f"streamed {''.join(pieces)!r} != whole {text!r}")
    check(len(pieces) > 1, "the reply should arrive in several chunks")

    # Completions, whole and streamed, with logprobs.
    c = client.completions.create(model="x", prompt="Once upon a time", max_tokens=8, temperature=0, logprobs=3)
    lp = c.choices[0].logprobs
    check(len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) > 0, f"logprobs: {lp}")
    check(all(v <= 0 for v in lp.token_logprobs), f"logprobs must be <= 0: {lp.token_logprobs}")
    check(max(lp.top_logprobs[0].values()) == lp.token_logprobs[0], "greedy picks the most likely token")
    streamed = "".join(ch.choices[0].text for ch in client.completions.create(
        model="x", prompt="Once upon a time", max_tokens=8, temperature=0, stream=True) if ch.choices)
    check(streamed == c.choices[0].text, f"streamed completion {streamed!r} != {c.choices[0].text!r}")

    chat_lp = client.chat.completions.create(model="x", messages=msgs, max_tokens=4, temperature=0, logprobs=True, top_logprobs=2)
    content = chat_lp.choices[0].logprobs.content
    check(len(content) == 4 and len(content[0].top_logprobs) == 2, f"chat logprobs: {content}")

    # Sampling parameters and the seed: the same seed gives the same text.
    kw = dict(model="x", prompt="The weather today", max_tokens=12, temperature=0.9, top_p=0.95,
              presence_penalty=0.5, frequency_penalty=0.5, seed=42, extra_body={"min_p": 0.05, "top_k": 40})
    a = client.completions.create(**kw).choices[0].text
    b = client.completions.create(**kw).choices[0].text
    check(a == b, f"same seed, different text: {a!r} vs {b!r}")

    # Stop strings end the text before them.
    s = client.completions.create(model="x", prompt="1, 2, 3, 4,", max_tokens=30, temperature=0, stop=[" 7"])
    check(" 7" not in s.choices[0].text and s.choices[0].finish_reason == "stop", f"stop: {s.choices[0]}")

    # Errors through the client.
    try:
        client.completions.create(model="x", prompt="hi", max_tokens=100000)
        raise AssertionError("max_tokens over the context should fail")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and "context length" in str(e), str(e))
    try:
        client.chat.completions.create(model="x", messages=msgs, temperature="hot")
        raise AssertionError("a string temperature should fail")
    except openai.BadRequestError as e:
        check("temperature" in str(e), str(e))


def test_raw_http(server):
    st, _, body = post(server, "/v1/chat/completions", b'{"messages": [', raw=True)
    expect_error(st, body, 400, "not valid JSON")
    st, _, body = post(server, "/v1/chat/completions", b'[1, 2]', raw=True)
    expect_error(st, body, 400, "JSON object")
    st, _, body = post(server, "/v1/chat/completions", {"messages": "hi"})
    expect_error(st, body, 400, "messages")
    st, _, body = post(server, "/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]})
    expect_error(st, body, 400, "role")
    st, _, body = post(server, "/v1/completions", {"prompt": "hi", "max_tokens": -3})
    expect_error(st, body, 400, "max_tokens")
    st, _, body = post(server, "/v1/completions", {"prompt": "hi", "top_p": 1.5})
    expect_error(st, body, 400, "top_p")
    st, _, body = post(server, "/v1/completions", {"prompt": "hi", "stop": [1, 2]})
    expect_error(st, body, 400, "stop")
    st, _, body = post(server, "/v1/completions", {"prompt": "hi", "n": 3})
    expect_error(st, body, 400, "'n'")
    st, _, body = post(server, "/v1/completions", {"prompt": "word " * 600})
    expect_error(st, body, 400, "context length")
    st, _, body = post(server, "/v1/completions", {"prompt": [1, 2, 99999999]})
    expect_error(st, body, 400, "vocabulary")
    st, _, body = post(server, "/v1/completions", b'{"prompt": "' + b"a" * (2 << 20) + b'"}', raw=True)
    expect_error(st, body, 413, "exceeds")
    st, _, body = post(server, "/nowhere", {})
    expect_error(st, body, 404, "no route")

    st, _, body = post(server, "/tokenize", {"content": "Hello world"})
    check(st == 200, body)
    toks = json.loads(body)["tokens"]
    st, _, body = post(server, "/detokenize", {"tokens": toks})
    check(st == 200 and json.loads(body)["content"] == "Hello world", body)
    st, _, body = post(server, "/detokenize", {"tokens": ["a"]})
    expect_error(st, body, 400, "tokens")
    st, _, body = post(server, "/tokenize", {"content": 5})
    expect_error(st, body, 400, "content")
    with urllib.request.urlopen(server.url("/health"), timeout=10) as r:
        check(json.loads(r.read())["status"] == "ok", "health")


def test_batching_invariance(server, client, n):
    """n concurrent greedy requests of mixed lengths give exactly what each gives alone."""
    prompts = [("word " * (1 + 9 * i)) + f"item {i}:" for i in range(n)]
    lens = [4 + (i * 5) % 17 for i in range(n)]

    def one(i):
        r = client.completions.create(model="x", prompt=prompts[i], max_tokens=lens[i], temperature=0)
        return r.choices[0].text

    alone = [one(i) for i in range(n)]
    with cf.ThreadPoolExecutor(n) as ex:
        together = list(ex.map(one, range(n)))
    for i in range(n):
        check(together[i] == alone[i], f"request {i}: batched {together[i]!r} != alone {alone[i]!r}")


def sse_connection(server, body):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    return conn, conn.getresponse()


def test_vanishing_and_slow_clients(server, client):
    # Clients that vanish after the first chunk.
    for _ in range(4):
        conn, resp = sse_connection(server, {"prompt": "Tell me a long story.", "max_tokens": 400, "stream": True,
                                             "temperature": 0.8})
        check(resp.status == 200, f"stream status {resp.status}")
        resp.fp.readline()
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
    # A slow reader that reads nothing for a while, while others are served.
    slow_conn, slow = sse_connection(server, {"prompt": "Count:", "max_tokens": 64, "stream": True, "temperature": 0})
    r = client.completions.create(model="x", prompt="Hello", max_tokens=8, temperature=0)
    check(r.choices[0].text, "others are served while a client is slow")
    time.sleep(1.0)
    data = slow.read().decode()
    check(data.rstrip().endswith("data: [DONE]"), f"slow reader should get the whole stream: {data[-200:]!r}")
    slow_conn.close()
    m = server.wait_idle()
    check(m["tern_kv_blocks_in_use"] == 0, f"KV blocks leaked: {m['tern_kv_blocks_in_use']}")
    check(m["tern_requests_cancelled_total"] >= 1, f"vanished clients should cancel (some may end at EOS first): {m['tern_requests_cancelled_total']}")


def whole_request(server, body):
    """Sends a non-streamed completion on a bare socket, which the test closes when it likes."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
    return sock


def wait_metrics(server, cond, timeout, what):
    deadline = time.time() + timeout
    while True:
        m = server.metrics()
        if cond(m):
            return m
        if time.time() > deadline:
            raise AssertionError(f"{what} after {timeout} s: {m}")
        time.sleep(0.02)


CLOSED_499 = 'tern_requests_total{endpoint="/v1/completions",code="499"}'


def test_whole_request_disconnect(server, client):
    """A client that closes its connection while its non-streamed request generates cancels it (nothing is
    written to it before the end, so no failed write reveals it): the blocks come back long before max_tokens.
    Once with an orderly close (FIN), once with a reset (RST)."""
    max_tokens = 400  # about 4 s of greedy counting on two cores, far more under the sanitizers
    for reset in (False, True):
        before = server.wait_idle()
        sock = whole_request(server, {"prompt": "1, 2, 3, 4, 5,", "max_tokens": max_tokens, "temperature": 0})
        wait_metrics(server, lambda m: m["tern_active_sequences"] == 1 and m["tern_kv_blocks_in_use"] > 0, 60,
                     "the request did not start")
        time.sleep(0.3)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        # The counters move just after the engine frees the blocks (the request's callback, then its HTTP
        # worker), so the wait covers them all.
        how = "reset" if reset else "close"
        m = wait_metrics(server, lambda m: m["tern_active_sequences"] == 0 and m["tern_kv_blocks_in_use"] == 0 and
                         m["tern_requests_cancelled_total"] == before["tern_requests_cancelled_total"] + 1 and
                         m.get(CLOSED_499, 0) == before.get(CLOSED_499, 0) + 1, 30,
                         f"{how}: the request was not cancelled, its blocks freed and counted as code 499")
        generated = m["tern_generated_tokens_total"] - before["tern_generated_tokens_total"]
        check(generated < max_tokens // 2, f"{how}: {generated:.0f} of {max_tokens} tokens generated before the cancel")
    r = client.completions.create(model="x", prompt="Hello", max_tokens=8, temperature=0)
    check(r.choices[0].text and r.choices[0].finish_reason in ("stop", "length"), f"served after disconnects: {r}")


def test_queued_disconnect(tern):
    """A request waiting for the only sequence slot leaves the queue when its client goes, while the running
    one goes on."""
    with Server(tern, "--parallel", "1") as s:
        body = {"prompt": "1, 2, 3, 4, 5,", "max_tokens": 400, "temperature": 0}
        running = whole_request(s, body)
        wait_metrics(s, lambda m: m["tern_active_sequences"] == 1, 60, "the first request did not start")
        queued = whole_request(s, body)
        wait_metrics(s, lambda m: m["tern_queue_depth"] == 1, 30, "the second request was not queued")
        queued.close()
        m = wait_metrics(s, lambda m: m["tern_queue_depth"] == 0 and m["tern_requests_cancelled_total"] == 1, 30,
                         "the queued request was not cancelled after its client left")
        check(m["tern_active_sequences"] == 1, f"the running request should go on: {m}")
        running.close()
        m = wait_metrics(s, lambda m: m["tern_active_sequences"] == 0 and m["tern_kv_blocks_in_use"] == 0 and
                         m["tern_requests_cancelled_total"] == 2, 30, "the running request was not cancelled")
        check(m["tern_generated_tokens_total"] < 400, f"the running request ran to max_tokens: {m}")
        s.stop()


def test_admission(tern):
    with Server(tern, "--parallel", "1", "--queue", "1") as s:
        body = {"prompt": "Once upon a time", "max_tokens": 48, "temperature": 0}
        with cf.ThreadPoolExecutor(6) as ex:
            results = list(ex.map(lambda _: post(s, "/v1/completions", body), range(6)))
        codes = sorted(r[0] for r in results)
        check(codes.count(200) >= 2 and codes.count(429) >= 1, f"want some 200 and some 429: {codes}")
        for st, headers, text in results:
            if st == 429:
                expect_error(st, text, 429, "too many requests")
                check(headers.get("Retry-After") is not None, f"429 without Retry-After: {headers}")
        m = s.wait_idle()
        check(m["tern_kv_blocks_in_use"] == 0, "KV blocks leaked after refusals")
        check(m['tern_requests_rejected_total{reason="queue_full"}'] >= 1, "rejections are counted")
        s.stop()


def test_api_key(tern):
    with Server(tern, "--api-key", "sekret") as s:
        st, _, body = post(s, "/v1/completions", {"prompt": "hi", "max_tokens": 2})
        expect_error(st, body, 401, "API key")
        bad = openai.OpenAI(base_url=s.url("/v1"), api_key="wrong", max_retries=0)
        try:
            bad.models.list()
            raise AssertionError("a wrong key should fail")
        except openai.AuthenticationError:
            pass
        good = openai.OpenAI(base_url=s.url("/v1"), api_key="sekret", max_retries=0)
        check(good.completions.create(model="x", prompt="hi", max_tokens=2).choices, "the right key works")
        with urllib.request.urlopen(s.url("/health"), timeout=10) as r:
            check(r.status == 200, "health needs no key")
        s.stop()


def test_sigterm(tern):
    with Server(tern) as s:
        conn, resp = sse_connection(s, {"prompt": "Tell me a story.", "max_tokens": 60, "stream": True, "temperature": 0})
        first = resp.read(16)
        s.proc.send_signal(signal.SIGTERM)
        data = (first + resp.read()).decode()
        check(data.rstrip().endswith("data: [DONE]"), f"the running stream should finish on SIGTERM: {data[-200:]!r}")
        code = s.proc.wait(timeout=60)
        check(code == 0, f"exit code {code} after SIGTERM")
        check(any("SIGTERM" in line for line in s.stderr_lines), "shutdown is logged")


def main():
    a = args()
    asan = sanitized(a.tern)
    with Server(a.tern, "--parallel", "8") as server:
        client = openai.OpenAI(base_url=server.url("/v1"), api_key="unused", max_retries=0, timeout=300)
        test_api(server, client, asan)
        test_raw_http(server)
        test_batching_invariance(server, client, 8 if asan else 16)
        test_vanishing_and_slow_clients(server, client)
        test_whole_request_disconnect(server, client)
        m = server.wait_idle()
        check(m["tern_kv_blocks_in_use"] == 0, f"KV blocks leaked: {m}")
        check(m["tern_generated_tokens_total"] > 0 and m["tern_prompt_tokens_total"] > 0, "token counters")
        check(m["tern_time_to_first_token_seconds_count"] > 0, "TTFT histogram")
        check(server.stop() == 0, "clean exit")
    test_queued_disconnect(a.tern)
    test_admission(a.tern)
    test_api_key(a.tern)
    test_sigterm(a.tern)
    print("server.openai: all passed")


if __name__ == "__main__":
    main()
