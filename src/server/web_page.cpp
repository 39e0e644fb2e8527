// The chat page at "/": plain HTML and JavaScript, no build step. It keeps the conversation in the page,
// posts it to /v1/chat/completions with stream: true and appends the server-sent deltas as they arrive.
#include "server/server.h"

namespace tern::server {

const char* web_page() {
  return R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tern chat</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 48rem; margin: 0 auto; padding: 1rem; }
  #log { display: flex; flex-direction: column; gap: .5rem; margin-bottom: 1rem; }
  .msg { padding: .5rem .75rem; border-radius: .5rem; white-space: pre-wrap; }
  .user { background: #e8f0fe; align-self: flex-end; }
  .assistant { background: #f1f3f4; align-self: flex-start; }
  .error { background: #fce8e6; }
  form { display: flex; gap: .5rem; }
  textarea { flex: 1; min-height: 3rem; }
  #status { color: #666; font-size: .85rem; margin-top: .5rem; }
</style>
</head>
<body>
<h1>tern chat</h1>
<div id="log"></div>
<form id="form">
  <textarea id="input" placeholder="Type a message; Enter sends, Shift+Enter breaks the line"></textarea>
  <button id="send" type="submit">Send</button>
</form>
<div id="status"></div>
<details><summary>Settings</summary>
  <label>API key <input id="key" type="password"></label>
  <label>Temperature <input id="temp" type="number" step="0.1" min="0" max="2" value="0.7"></label>
  <label>Max tokens <input id="max" type="number" min="1" value="256"></label>
  <button id="clear" type="button">New chat</button>
</details>
<script>
"use strict";
const log = document.getElementById("log"), input = document.getElementById("input");
const status = document.getElementById("status"), send = document.getElementById("send");
let messages = [];

function bubble(role, text) {
  const d = document.createElement("div");
  d.className = "msg " + role;
  d.textContent = text;
  log.appendChild(d);
  return d;
}

async function ask(text) {
  messages.push({role: "user", content: text});
  bubble("user", text);
  const out = bubble("assistant", "");
  out.dataset.done = "false";
  send.disabled = true;
  status.textContent = "generating...";
  const headers = {"Content-Type": "application/json"};
  const key = document.getElementById("key").value;
  if (key) headers["Authorization"] = "Bearer " + key;
  try {
    const res = await fetch("/v1/chat/completions", {method: "POST", headers, body: JSON.stringify({
      messages, stream: true,
      temperature: Number(document.getElementById("temp").value),
      max_tokens: Number(document.getElementById("max").value)})});
    if (!res.ok) {
      const err = await res.json().catch(() => ({error: {message: res.statusText}}));
      throw new Error(err.error ? err.error.message : res.statusText);
    }
    const reader = res.body.getReader(), dec = new TextDecoder();
    let buf = "", reply = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += dec.decode(value, {stream: true});
      let at;
      while ((at = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, at);
        buf = buf.slice(at + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          if (delta && delta.content) { reply += delta.content; out.textContent = reply; }
        }
      }
    }
    messages.push({role: "assistant", content: reply});
    status.textContent = "";
  } catch (e) {
    out.classList.add("error");
    out.textContent = "error: " + e.message;
    messages.pop();
    status.textContent = "";
  }
  out.dataset.done = "true";
  send.disabled = false;
}

document.getElementById("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || send.disabled) return;
  input.value = "";
  ask(text);
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); document.getElementById("form").requestSubmit(); }
});
document.getElementById("clear").addEventListener("click", () => { messages = []; log.textContent = ""; });
</script>
</body>
</html>
)HTML";
}

}  // namespace tern::server
