// `tern serve`: an OpenAI-compatible HTTP server over the batched engine (runtime/engine.h).
//
//   POST /v1/chat/completions, /v1/completions   whole JSON or server-sent events ending in `data: [DONE]`
//   GET  /v1/models, /health, /metrics (Prometheus text), /  (a small chat page, embedded)
//   POST /tokenize, /detokenize
//
// HTTP is cpp-httplib, JSON nlohmann-json. Every error is an OpenAI error object. One HTTP worker thread per
// connection waits on its request's events; the engine thread never blocks on a client, so a slow or vanished
// reader costs only its own stream (a failed write, or a closed connection under a whole response, cancels its
// generation and frees its KV blocks).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "runtime/engine.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tern::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;              // non-empty: /v1/*, /tokenize, /detokenize need "Authorization: Bearer KEY"
  std::string model_id = "tern";    // reported by /v1/models and in responses
  size_t max_body_bytes = 1 << 20;  // larger bodies: 413
  int http_threads = 0;             // 0: enough for every running and queued request plus a few more
  int shutdown_grace_s = 30;        // on SIGTERM: how long running requests may finish
  bool quiet = false;
};

// Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread, so that every thread started afterwards
// inherits the mask and serve() can wait for them. Call it first, before any thread exists.
void block_server_signals();

// Serves until SIGTERM/SIGINT: then refuses new work (503), lets running requests finish (at most
// shutdown_grace_s), and returns. An error if the address cannot be bound.
Status serve(const ServerOptions& o, Engine& engine, const Tokenizer& tok, const ChatTemplate* chat,
             const std::vector<int>& chat_stop_ids);

// The chat page served at "/" (plain HTML + JS).
const char* web_page();

}  // namespace tern::server
