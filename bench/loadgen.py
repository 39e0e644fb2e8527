#!/usr/bin/env python3
"""Load generator for `tern serve`: N concurrent streaming clients on loopback, bounded in requests and time.

Reports, per concurrency level, aggregate generated tok/s, time to first token (TTFT) and time per output
token (TPOT: the gaps between a stream's tokens) at p50 and p99, as a Markdown table.

    python bench/loadgen.py --tern build/tern -m models/SmolLM2-135M-Instruct.Q4_1.gguf --clients 1,4,8,16
    python bench/loadgen.py --url http://127.0.0.1:8080 --clients 1,8

Only loopback addresses are accepted. Each client sends --requests requests one after another (greedy,
--max-tokens each, the prompt varied per request so no two are identical); a level stops early after
--time-limit seconds. Requests are chat completions, or plain completions with --endpoint completions (for
models without a chat template, such as `tern synth` files). A level where no request succeeds stops the run
with the server's first error.
"""
import argparse
import concurrent.futures as cf
import http.client
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse

PROMPTS = ["Tell me about the history of the bicycle.", "Write a short poem about autumn leaves.",
           "Explain how a refrigerator works.", "Describe a walk through a busy market.",
           "What makes a good cup of tea?", "Summarise the water cycle for a child."]


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def one_request(host, port, i, max_tokens, deadline, endpoint):
    text = f"{PROMPTS[i % len(PROMPTS)]} (request {i})"
    body = {"max_tokens": max_tokens, "temperature": 0, "stream": True}
    if endpoint == "chat":
        body["messages"] = [{"role": "user", "content": text}]
    else:
        body["prompt"] = text
    conn = http.client.HTTPConnection(host, port, timeout=max(10.0, deadline - time.time() + 10))
    t0 = time.perf_counter()
    path = "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        detail = resp.read().decode("utf-8", "replace")
        conn.close()
        try:
            detail = json.loads(detail)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            pass
        return {"error": f"HTTP {resp.status} from {path}: {detail}"}
    times = []
    buf = b""
    while True:
        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if not event.startswith(b"data: ") or event == b"data: [DONE]":
                continue
            d = json.loads(event[6:])
            if d.get("choices") and d["choices"][0].get("text", d["choices"][0].get("delta", {}).get("content")):
                times.append(time.perf_counter())
    conn.close()
    if not times:
        return {"error": f"{path} streamed no tokens"}
    return {"ttft": times[0] - t0, "gaps": [b - a for a, b in zip(times, times[1:])], "tokens": len(times)}


def level(host, port, clients, requests, max_tokens, time_limit, endpoint):
    deadline = time.time() + time_limit
    results, errors = [], []
    lock = threading.Lock()

    def client(c):
        for r in range(requests):
            if time.time() > deadline:
                return
            res = one_request(host, port, c * 1000 + r, max_tokens, deadline, endpoint)
            with lock:
                (errors if "error" in res else results).append(res)

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(clients) as ex:
        list(ex.map(client, range(clients)))
    wall = time.perf_counter() - t0
    if not results:
        sys.exit(f"loadgen: no request succeeded with {clients} clients; the first error: "
                 f"{errors[0]['error'] if errors else 'none (the time limit passed first)'}")
    tokens = sum(r["tokens"] for r in results)
    ttft = [r["ttft"] for r in results]
    gaps = [g for r in results for g in r["gaps"]]
    return {"clients": clients, "requests": len(results), "tokens": tokens, "tok_s": tokens / wall,
            "ttft50": pct(ttft, 0.5), "ttft99": pct(ttft, 0.99), "tpot50": pct(gaps, 0.5), "tpot99": pct(gaps, 0.99)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server on loopback, e.g. http://127.0.0.1:8080")
    ap.add_argument("--tern", help="start this tern binary's server instead (on a free loopback port)")
    ap.add_argument("-m", "--model", help="model for --tern")
    ap.add_argument("--parallel", type=int, default=16, help="--parallel of the started server")
    ap.add_argument("--clients", default="1,4,8,16", help="concurrency levels, comma separated")
    ap.add_argument("--requests", type=int, default=4, help="requests per client per level (at most 100)")
    ap.add_argument("--max-tokens", type=int, default=64, help="tokens per request (at most 512)")
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds per level (at most 600)")
    ap.add_argument("--endpoint", choices=["chat", "completions"], default="chat",
                    help="chat completions (default) or plain completions (models without a chat template)")
    a = ap.parse_args()
    a.requests = min(a.requests, 100)
    a.max_tokens = min(a.max_tokens, 512)
    a.time_limit = min(a.time_limit, 600.0)
    proc = None
    if a.tern:
        cmd = [a.tern, "serve", "--port", "0", "--parallel", str(a.parallel)] + (["-m", a.model] if a.model else [])
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        port = None
        for line in proc.stderr:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            sys.exit("loadgen: the server did not start")
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
        host = "127.0.0.1"
    elif a.url:
        u = urllib.parse.urlparse(a.url)
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit("loadgen: only loopback servers (127.0.0.1, localhost)")
        host, port = u.hostname, u.port or 80
    else:
        sys.exit("loadgen: give --url or --tern")
    try:
        rows = []
        print("| clients | requests | generated tokens | aggregate tok/s | TTFT p50 (ms) | TTFT p99 (ms) | TPOT p50 (ms) | TPOT p99 (ms) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in [int(x) for x in a.clients.split(",")]:
            r = level(host, port, c, a.requests, a.max_tokens, a.time_limit, a.endpoint)
            rows.append(r)
            print(f"| {r['clients']} | {r['requests']} | {r['tokens']} | {r['tok_s']:.1f} | {r['ttft50'] * 1e3:.0f} | "
                  f"{r['ttft99'] * 1e3:.0f} | {r['tpot50'] * 1e3:.1f} | {r['tpot99'] * 1e3:.1f} |", flush=True)
        if rows and rows[0]["clients"] == 1:
            for r in rows[1:]:
                print(f"{r['clients']} clients: {r['tok_s'] / rows[0]['tok_s']:.2f}x the aggregate tok/s of one")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
