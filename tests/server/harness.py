"""Starts `tern serve` on a free loopback port for the server tests, and stops it.

Tests are ctest tests: run as `python tests/server/test_X.py --tern build/tern`. A missing piece (the model,
the openai package, chromium) skips with exit code 77 outside CI and fails under CI=true.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
SKIP = 77


def in_ci():
    return os.environ.get("CI") == "true"


def skip_or_fail(why):
    if in_ci():
        print(f"FAIL: {why} (required under CI=true)")
        sys.exit(1)
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--tern", required=True)
    return p.parse_args()


def sanitized(tern):
    """True for the ASan build (much slower): tests keep request counts small there."""
    return "asan" in os.path.abspath(tern)


class Server:
    def __init__(self, tern, *extra, model=MODEL):
        if not os.path.exists(model):
            skip_or_fail(f"missing {model} (run scripts/setup.sh)")
        cmd = [tern, "serve", "-m", model, "--port", "0", "--ctx", "512", *extra]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.stderr_lines = []
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.stderr_lines.append(line)
            m = re.search(r"listening on http://[\d.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("server did not start: " + "".join(self.stderr_lines))
        # Keep draining stderr so the server never blocks on a full pipe.
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        self.base = f"http://127.0.0.1:{self.port}"

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def url(self, path):
        return self.base + path

    def metrics(self):
        text = urllib.request.urlopen(self.url("/metrics"), timeout=30).read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def wait_idle(self, timeout=60):
        """Waits until no sequence runs and none waits; returns the metrics."""
        deadline = time.time() + timeout
        while True:
            m = self.metrics()
            if m["tern_active_sequences"] == 0 and m["tern_queue_depth"] == 0:
                return m
            if time.time() > deadline:
                raise AssertionError(f"server not idle after {timeout} s: {m}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        self._drain.join(timeout=5)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
