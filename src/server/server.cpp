#include "server/server.h"

#include <dirent.h>
#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "runtime/generate.h"
#include "server/metrics.h"
#include "server/openai_api.h"

namespace tern::server {

namespace {

using Clock = std::chrono::steady_clock;

// One generation request as the HTTP side sees it: the engine's events, queued by the engine thread and
// consumed by the connection's worker thread.
struct Job {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<EngineEvent> events;
  std::atomic<bool> done{false};  // the Done event was queued
  std::shared_ptr<EngineHandle> handle;
  Clock::time_point start, last_token;
  bool got_first = false;
};

// Turns events into text and logprobs (shared by whole and streamed responses).
struct Generation {
  Endpoint ep = Endpoint::Chat;
  TextStreamer streamer{{}};
  int prev = -1;
  int top_logprobs = -1;
  std::string text;             // everything emitted so far
  json logprobs_content = json::array();  // chat: per-token entries
  json lp_tokens = json::array(), lp_token_logprobs = json::array(), lp_top = json::array(), lp_offsets = json::array();
  FinishReason finish = FinishReason::Stop;
  std::string error;
  int prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
  bool finished = false;
  std::string id;
  int64_t created = 0;
};

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

std::string random_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  const uint64_t t = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%llx%llx", prefix, static_cast<unsigned long long>(t & 0xffffffffffull),
                static_cast<unsigned long long>(counter.fetch_add(1)));
  return buf;
}

// A whole (non-streamed) response is written only after the generation ends, so a client that closes its
// connection meanwhile would otherwise be noticed only then, max_tokens later, its KV blocks held all along.
// Newer cpp-httplib releases offer Request::is_connection_closed() for this; the 0.11 this builds against
// (Debian 12's) has none and does not hand a handler its socket either. A TCP connection is the only socket
// with its pair of addresses, which the request carries, so the handler finds its descriptor by them (once,
// among this process's open descriptors) and polls it while it waits. The descriptor stays valid meanwhile:
// the worker thread that would close it is the one running the handler.
std::string numeric_host(const sockaddr_storage& a, socklen_t len, int* port) {
  char host[NI_MAXHOST];
  char serv[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return {};
  *port = std::atoi(serv);
  return host;
}

// The request's connection socket, or -1 when it cannot be found (no /proc): then a vanished client is
// noticed only when the response fails to send, as before.
int connection_socket(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const int fd = std::atoi(e->d_name);
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof local, peer_len = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0)
      continue;  // not a socket, or not a connected one
    int local_port = -1, peer_port = -1;
    if (numeric_host(local, local_len, &local_port) == req.local_addr && local_port == req.local_port &&
        numeric_host(peer, peer_len, &peer_port) == req.remote_addr && peer_port == req.remote_port) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

// True once the peer has closed or reset the connection. A client that only shuts down its sending side counts
// as gone too, as it does for later cpp-httplib's is_connection_closed(); bytes it already sent (a pipelined
// next request) do not make the connection look closed.
bool peer_closed(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

const char* finish_name(const Generation& g) {
  if (g.streamer.stopped()) return "stop";
  switch (g.finish) {
    case FinishReason::Length: return "length";
    default: return "stop";
  }
}

class HttpServer {
 public:
  HttpServer(const ServerOptions& o, Engine& engine, const Tokenizer& tok, const ChatTemplate* chat,
             const std::vector<int>& stop_ids)
      : o_(o), engine_(engine), tok_(tok), chat_(chat), chat_stop_ids_(stop_ids) {}

  Status run();

 private:
  void routes();
  void send_error(httplib::Response& res, const ApiError& e, const std::string& endpoint);
  void send_json(httplib::Response& res, const json& j, const std::string& endpoint, int status = 200);
  void handle_generate(const httplib::Request& req, httplib::Response& res, Endpoint ep);
  // Applies one event to `g`; returns the text that became visible. Token/Done bookkeeping only.
  std::string apply(Generation& g, const EngineEvent& ev, json* lp_delta);

  ServerOptions o_;
  Engine& engine_;
  const Tokenizer& tok_;
  const ChatTemplate* chat_;
  std::vector<int> chat_stop_ids_;
  Metrics metrics_;
  httplib::Server http_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<int> open_streams_{0};  // streamed responses not yet fully written
};

void HttpServer::send_json(httplib::Response& res, const json& j, const std::string& endpoint, int status) {
  res.status = status;
  res.set_content(dump(j), "application/json");
  metrics_.count_request(endpoint, status);
}

void HttpServer::send_error(httplib::Response& res, const ApiError& e, const std::string& endpoint) {
  send_json(res, error_json(e), endpoint, e.status);
}

std::string HttpServer::apply(Generation& g, const EngineEvent& ev, json* lp_delta) {
  if (ev.kind == EngineEvent::Done) {
    g.finished = true;
    g.finish = ev.finish;
    g.error = ev.error;
    g.prompt_tokens = ev.prompt_tokens;
    g.cached_tokens = ev.cached_tokens;
    g.completion_tokens = ev.generated_tokens;
    return g.streamer.flush();
  }
  if (g.streamer.stopped()) return {};
  const std::string piece = printable_piece(tok_.decode_piece(g.prev, ev.token));
  g.prev = ev.token;
  if (g.top_logprobs >= 0) {
    json top = json::array();
    json top_map = json::object();
    for (const auto& [id, lp] : ev.top) {
      const std::string t = tok_.decode_piece(-1, id);
      top.push_back({{"token", t}, {"logprob", lp}, {"bytes", bytes_of(t)}});
      top_map[t] = lp;
    }
    if (g.ep == Endpoint::Chat) {
      json entry = {{"token", piece}, {"logprob", ev.logprob}, {"bytes", bytes_of(piece)}, {"top_logprobs", top}};
      g.logprobs_content.push_back(entry);
      if (lp_delta) lp_delta->push_back(entry);
    } else {
      g.lp_tokens.push_back(piece);
      g.lp_token_logprobs.push_back(ev.logprob);
      g.lp_top.push_back(top_map);
      g.lp_offsets.push_back(g.text.size());
      if (lp_delta) {
        (*lp_delta)["tokens"].push_back(piece);
        (*lp_delta)["token_logprobs"].push_back(ev.logprob);
        (*lp_delta)["top_logprobs"].push_back(top_map);
        (*lp_delta)["text_offset"].push_back(g.text.size());
      }
    }
  }
  std::string out = g.streamer.feed(piece);
  g.text += out;
  // A stop string ends the generation: the engine frees the sequence at its next step.
  return out;
}

json usage_json(const Generation& g) {
  return {{"prompt_tokens", g.prompt_tokens},
          {"completion_tokens", g.completion_tokens},
          {"total_tokens", g.prompt_tokens + g.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", g.cached_tokens}}}};
}

void HttpServer::handle_generate(const httplib::Request& req, httplib::Response& res, Endpoint ep) {
  const std::string endpoint = ep == Endpoint::Chat ? "/v1/chat/completions" : "/v1/completions";
  CompletionParams p;
  const uint64_t clock_seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  if (auto e = parse_completion_request(req.body, ep, clock_seed, &p)) return send_error(res, *e, endpoint);

  std::vector<int> ids;
  EngineRequest r;
  if (ep == Endpoint::Chat) {
    if (!chat_)
      return send_error(res, {400, "this model has no chat template; use /v1/completions", "invalid_request_error", "messages", "no_chat_template"}, endpoint);
    auto text = render_chat(*chat_, p.messages, true);
    if (!text) return send_error(res, {400, text.status().message(), "invalid_request_error", "messages", "invalid_value"}, endpoint);
    ids = tok_.encode(*text, false, false, /*parse_special=*/true);
    r.stop_ids = chat_stop_ids_;
  } else if (p.prompt_is_ids) {
    ids = p.prompt_ids;
  } else {
    ids = tok_.encode(p.prompt, tok_.add_bos_by_default());
    if (ids.empty() && tok_.bos_id() >= 0) ids.push_back(tok_.bos_id());
  }
  if (ids.empty()) return send_error(res, {400, "the prompt is empty", "invalid_request_error", "prompt", "invalid_value"}, endpoint);
  const int n_ctx = engine_.n_ctx();
  const int n_prompt = static_cast<int>(ids.size());
  if (n_prompt >= n_ctx)
    return send_error(res, {400, "the prompt has " + std::to_string(n_prompt) + " tokens, which leaves no room in the context length of " +
                                     std::to_string(n_ctx) + " tokens", "invalid_request_error", ep == Endpoint::Chat ? "messages" : "prompt",
                            "context_length_exceeded"}, endpoint);
  const int max_tokens = p.max_tokens.value_or(n_ctx - n_prompt);
  if (static_cast<int64_t>(n_prompt) + max_tokens > n_ctx)
    return send_error(res, {400, "the prompt (" + std::to_string(n_prompt) + " tokens) plus max_tokens (" + std::to_string(max_tokens) +
                                     ") exceeds the context length of " + std::to_string(n_ctx) + " tokens",
                            "invalid_request_error", "max_tokens", "context_length_exceeded"}, endpoint);
  r.prompt = std::move(ids);
  r.max_tokens = max_tokens;
  r.sampler = p.sampler;
  r.top_logprobs = p.top_logprobs;

  auto job = std::make_shared<Job>();
  job->start = Clock::now();
  EngineCallback cb = [job, this](const EngineEvent& ev) {
    const auto now = Clock::now();
    if (ev.kind == EngineEvent::Token) {
      if (!job->got_first) metrics_.observe_ttft(std::chrono::duration<double>(now - job->start).count());
      else metrics_.observe_tpot(std::chrono::duration<double>(now - job->last_token).count());
      job->got_first = true;
      job->last_token = now;
    } else {
      metrics_.add_tokens(static_cast<uint64_t>(ev.prompt_tokens), static_cast<uint64_t>(ev.generated_tokens));
      if (ev.finish == FinishReason::Cancelled) metrics_.count_cancelled();
    }
    {
      std::lock_guard<std::mutex> lock(job->mu);
      job->events.push_back(ev);
      if (ev.kind == EngineEvent::Done) job->done = true;
    }
    job->cv.notify_one();
  };
  SubmitError err = SubmitError::None;
  std::string msg;
  job->handle = engine_.submit(std::move(r), cb, &err, &msg);
  if (!job->handle) {
    if (err == SubmitError::QueueFull) {
      metrics_.count_rejected("queue_full");
      res.set_header("Retry-After", "1");
      return send_error(res, {429, msg, "rate_limit_error", "", "rate_limit_exceeded"}, endpoint);
    }
    if (err == SubmitError::ShuttingDown) {
      metrics_.count_rejected("shutting_down");
      res.set_header("Retry-After", "5");
      return send_error(res, {503, msg, "server_error", "", "shutting_down"}, endpoint);
    }
    return send_error(res, {400, msg, "invalid_request_error", "", "invalid_value"}, endpoint);
  }

  auto g = std::make_shared<Generation>();
  g->ep = ep;
  g->streamer = TextStreamer(p.stop);
  g->top_logprobs = p.top_logprobs;
  g->id = random_id(ep == Endpoint::Chat ? "chatcmpl" : "cmpl");
  g->created = static_cast<int64_t>(std::time(nullptr));
  const std::string model = o_.model_id;

  if (!p.stream) {
    // Between events, and at least every 100 ms, the connection is checked: a client that went away cancels
    // its request (the engine frees its blocks at its next step), and the Done that follows ends the wait.
    const int sock = connection_socket(req);
    bool client_gone = false;
    for (;;) {
      std::deque<EngineEvent> evs;
      {
        std::unique_lock<std::mutex> lock(job->mu);
        job->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return !job->events.empty(); });
        evs.swap(job->events);
      }
      for (const auto& ev : evs) apply(*g, ev, nullptr);
      if (g->streamer.stopped()) job->handle->cancel();
      if (g->finished) break;
      if (!client_gone && sock >= 0 && peer_closed(sock)) {
        client_gone = true;
        job->handle->cancel();
      }
    }
    // Nobody is there to read it: the answer is for the metrics, under nginx's 499 "client closed request".
    if (client_gone)
      return send_error(res, {499, "the client closed the connection; the request was cancelled", "invalid_request_error", "",
                              "client_closed_request"}, endpoint);
    if (g->finish == FinishReason::Error) return send_error(res, {500, g->error, "server_error", "", "engine_error"}, endpoint);
    json choice;
    if (ep == Endpoint::Chat) {
      choice = {{"index", 0}, {"message", {{"role", "assistant"}, {"content", g->text}}}, {"finish_reason", finish_name(*g)}};
      choice["logprobs"] = g->top_logprobs >= 0 ? json{{"content", g->logprobs_content}} : json(nullptr);
    } else {
      choice = {{"index", 0}, {"text", g->text}, {"finish_reason", finish_name(*g)}};
      choice["logprobs"] = g->top_logprobs >= 0 ? json{{"tokens", g->lp_tokens}, {"token_logprobs", g->lp_token_logprobs},
                                                       {"top_logprobs", g->lp_top}, {"text_offset", g->lp_offsets}}
                                                 : json(nullptr);
    }
    json out = {{"id", g->id}, {"object", ep == Endpoint::Chat ? "chat.completion" : "text_completion"},
                {"created", g->created}, {"model", model}, {"choices", json::array({choice})}, {"usage", usage_json(*g)}};
    return send_json(res, out, endpoint);
  }

  // Streamed: one SSE event per visible delta, then the finish chunk, the usage chunk when asked, [DONE].
  metrics_.count_request(endpoint, 200);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  const bool include_usage = p.include_usage;
  auto started = std::make_shared<bool>(false);
  auto chunk = [g, model, ep](const json& delta_or_text, const json& logprobs, const json& finish) {
    json choice = {{"index", 0}, {"finish_reason", finish}, {"logprobs", logprobs}};
    if (ep == Endpoint::Chat) choice["delta"] = delta_or_text;
    else choice["text"] = delta_or_text;
    json c = {{"id", g->id}, {"object", ep == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
              {"created", g->created}, {"model", model}, {"choices", json::array({choice})}};
    return "data: " + dump(c) + "\n\n";
  };
  // The server outlives every connection (stop() joins the HTTP workers), so the provider may use `this`.
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, g, started, chunk, include_usage, ep](size_t, httplib::DataSink& sink) {
        std::string out;
        if (!*started) {
          *started = true;
          if (ep == Endpoint::Chat) out += chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr);
        }
        std::deque<EngineEvent> evs;
        {
          std::unique_lock<std::mutex> lock(job->mu);
          job->cv.wait_for(lock, std::chrono::seconds(1), [&] { return !job->events.empty(); });
          evs.swap(job->events);
        }
        // Nothing new for a second: a comment line keeps proxies open and finds a vanished client.
        if (evs.empty() && out.empty()) out = ": keep-alive\n\n";
        for (const auto& ev : evs) {
          if (g->finished) break;
          json lp = nullptr;
          if (g->top_logprobs >= 0)
            lp = ep == Endpoint::Chat ? json::array()
                                      : json{{"tokens", json::array()}, {"token_logprobs", json::array()},
                                             {"top_logprobs", json::array()}, {"text_offset", json::array()}};
          const std::string text = apply(*g, ev, g->top_logprobs >= 0 ? &lp : nullptr);
          if (g->finished && g->finish == FinishReason::Error) {
            out += "data: " + dump(error_json({500, g->error, "server_error", "", "engine_error"})) + "\n\n";
            break;
          }
          const bool has_lp = g->top_logprobs >= 0 && !(ep == Endpoint::Chat ? lp.empty() : lp["tokens"].empty());
          if (!text.empty() || has_lp) {
            json lpo = has_lp ? (ep == Endpoint::Chat ? json{{"content", lp}} : lp) : json(nullptr);
            out += ep == Endpoint::Chat ? chunk(json{{"content", text}}, lpo, nullptr) : chunk(text, lpo, nullptr);
          }
          if (g->finished) {
            out += ep == Endpoint::Chat ? chunk(json::object(), nullptr, finish_name(*g)) : chunk("", nullptr, finish_name(*g));
            if (include_usage) {
              json u = {{"id", g->id}, {"object", ep == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
                        {"created", g->created}, {"model", o_.model_id}, {"choices", json::array()}, {"usage", usage_json(*g)}};
              out += "data: " + dump(u) + "\n\n";
            }
          }
        }
        if (g->streamer.stopped() && !g->finished) job->handle->cancel();
        if (g->finished) out += "data: [DONE]\n\n";
        if (!out.empty() && !sink.write(out.data(), out.size())) return false;  // the client is gone
        if (g->finished) sink.done();
        return true;
      },
      [this, job](bool) {
        // Ended early (client gone, write timeout): the generation stops at the engine's next step.
        if (!job->done) job->handle->cancel();
        --open_streams_;
      });
  ++open_streams_;
}

void HttpServer::routes() {
  http_.set_payload_max_length(o_.max_body_bytes);
  http_.set_read_timeout(30, 0);
  http_.set_write_timeout(10, 0);
  http_.set_keep_alive_timeout(2);
  const int threads = o_.http_threads > 0 ? o_.http_threads : engine_.n_parallel() + 64 + 8;
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };

  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (o_.api_key.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string& path = req.path;
    const bool open = path == "/" || path == "/health" || path == "/metrics";
    if (open) return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") != "Bearer " + o_.api_key) {
      send_error(res, {401, "missing or wrong API key: send 'Authorization: Bearer <key>'", "authentication_error", "", "invalid_api_key"}, path);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    ApiError e{res.status, "", "invalid_request_error", "", ""};
    if (res.status == 404) e = {404, "no route for " + req.method + " " + req.path, "not_found_error", "", "not_found"};
    else if (res.status == 413) e = {413, "the request body exceeds " + std::to_string(o_.max_body_bytes) + " bytes", "invalid_request_error", "", "payload_too_large"};
    else if (res.status == 405) e = {405, "method " + req.method + " not allowed on " + req.path, "invalid_request_error", "", "method_not_allowed"};
    else e.message = "HTTP error " + std::to_string(res.status);
    res.set_content(dump(error_json(e)), "application/json");
    metrics_.count_request("other", res.status);
  });
  http_.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, {500, what, "server_error", "", "internal_error"}, req.path);
  });

  http_.Get("/", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(web_page(), "text/html; charset=utf-8");
    metrics_.count_request("/", 200);
  });
  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (shutting_down_) return send_json(res, {{"status", "shutting down"}}, "/health", 503);
    send_json(res, {{"status", "ok"}}, "/health");
  });
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    metrics_.count_request("/metrics", 200);
    res.set_content(metrics_.render(engine_.stats()), "text/plain; version=0.0.4");
  });
  http_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json m = {{"id", o_.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "tern"},
              {"meta", {{"n_ctx", engine_.n_ctx()}, {"n_vocab", engine_.vocab_size()}, {"n_parallel", engine_.n_parallel()}}}};
    send_json(res, {{"object", "list"}, {"data", json::array({m})}}, "/v1/models");
  });
  http_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generate(req, res, Endpoint::Chat);
  });
  http_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generate(req, res, Endpoint::Completion);
  });
  http_.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    json j;
    if (auto e = parse_json_object(req.body, &j)) return send_error(res, *e, "/tokenize");
    auto it = j.find("content");
    if (it == j.end() || !it->is_string())
      return send_error(res, {400, "'content' must be a string", "invalid_request_error", "content", "invalid_value"}, "/tokenize");
    bool add_special = false, parse_special = false;
    if (auto b = j.find("add_special"); b != j.end()) {
      if (!b->is_boolean()) return send_error(res, {400, "'add_special' must be a boolean", "invalid_request_error", "add_special", "invalid_value"}, "/tokenize");
      add_special = b->get<bool>();
    }
    if (auto b = j.find("parse_special"); b != j.end()) {
      if (!b->is_boolean()) return send_error(res, {400, "'parse_special' must be a boolean", "invalid_request_error", "parse_special", "invalid_value"}, "/tokenize");
      parse_special = b->get<bool>();
    }
    send_json(res, {{"tokens", tok_.encode(it->get<std::string>(), add_special && tok_.add_bos_by_default(), false, parse_special)}}, "/tokenize");
  });
  http_.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    json j;
    if (auto e = parse_json_object(req.body, &j)) return send_error(res, *e, "/detokenize");
    auto it = j.find("tokens");
    if (it == j.end() || !it->is_array())
      return send_error(res, {400, "'tokens' must be an array of token ids", "invalid_request_error", "tokens", "invalid_value"}, "/detokenize");
    std::vector<int> ids;
    for (const json& t : *it) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok_.vocab_size())
        return send_error(res, {400, "'tokens' must hold integers in [0, " + std::to_string(tok_.vocab_size()) + "), got " + t.dump(),
                                "invalid_request_error", "tokens", "invalid_value"}, "/detokenize");
      ids.push_back(t.get<int>());
    }
    send_json(res, {{"content", tok_.decode(ids)}}, "/detokenize");
  });
}

Status HttpServer::run() {
  routes();
  int port = o_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(o_.host);
    if (port <= 0) return error("cannot bind " + o_.host + " to a free port");
  } else if (!http_.bind_to_port(o_.host, port)) {
    return error("cannot bind " + o_.host + ":" + std::to_string(port) + " (in use, or not an address of this machine)");
  }
  std::fprintf(stderr, "tern serve: listening on http://%s:%d (model %s, %d parallel, context %d)\n", o_.host.c_str(), port,
               o_.model_id.c_str(), engine_.n_parallel(), engine_.n_ctx());
  std::fflush(stderr);

  // SIGTERM/SIGINT arrive here (every thread blocks them): refuse new work, let the running finish, stop.
  std::thread waiter([this] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGUSR1) return;  // the server stopped by itself
    std::fprintf(stderr, "tern serve: %s: finishing running requests (at most %d s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 o_.shutdown_grace_s);
    shutting_down_ = true;
    engine_.begin_shutdown();
    const auto deadline = Clock::now() + std::chrono::seconds(o_.shutdown_grace_s);
    engine_.wait_idle(std::chrono::seconds(o_.shutdown_grace_s));
    // The HTTP server aborts streams it is still writing when it stops: let them send their last events.
    while (open_streams_ > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    engine_.stop();
    http_.stop();
  });
  const bool ok = http_.listen_after_bind();
  if (!shutting_down_) pthread_kill(waiter.native_handle(), SIGUSR1);
  waiter.join();
  engine_.stop();
  if (!ok && !shutting_down_) return error("the HTTP server stopped unexpectedly");
  std::fprintf(stderr, "tern serve: stopped\n");
  return Status();
}

}  // namespace

void block_server_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Status serve(const ServerOptions& o, Engine& engine, const Tokenizer& tok, const ChatTemplate* chat,
             const std::vector<int>& chat_stop_ids) {
  HttpServer s(o, engine, tok, chat, chat_stop_ids);
  return s.run();
}

}  // namespace tern::server
