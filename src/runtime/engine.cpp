#include "runtime/engine.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tern {

using Clock = std::chrono::steady_clock;

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
  }
  return "error";
}

KvOptions engine_kv_options(const EngineOptions& o, int n_ctx, KvOptions base) {
  const int bs = base.block_size > 0 ? base.block_size : 16;
  const int per_seq = (n_ctx + bs - 1) / bs;
  base.block_size = bs;
  // Every running sequence can reach n_ctx, and as much again stays free for cached prompt prefixes.
  base.n_blocks = per_seq * (std::max(1, o.n_parallel) + 1);
  return base;
}

struct Engine::Slot {
  bool busy = false;
  EngineRequest req;
  EngineCallback cb;
  std::shared_ptr<EngineHandle> handle;
  KvSequence kv;
  int n_shared = 0;      // leading blocks retained from the prefix cache
  int n_prefilled = 0;   // prompt positions in the cache
  int n_past = 0;        // positions in the cache
  int next_token = -1;   // the token the next decode step feeds
  int generated = 0;
  int hashed_blocks = 0; // prompt blocks whose chained hash is known
  uint64_t chain = 0;    // chained hash of blocks [0, hashed_blocks)
  std::vector<int> history;  // prompt + generated (the penalties' window)
  std::unique_ptr<Sampler> sampler;
  std::vector<float> logits, raw;
  std::vector<int> order;    // logprobs scratch
  Clock::time_point submitted, first_token;
  bool have_first = false;
};

namespace {

uint64_t hash_block(uint64_t parent, const int* tokens, int n) {
  uint64_t h = parent ^ 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < n; ++i) {
    h ^= static_cast<uint64_t>(static_cast<uint32_t>(tokens[i])) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

Engine::Engine(LlamaModel& model, int bos_id, int eos_id, const EngineOptions& o)
    : model_(model), bos_id_(bos_id), eos_id_(eos_id), opt_(o), n_ctx_(o.n_ctx > 0 ? o.n_ctx : model.n_ctx()) {}

Result<std::unique_ptr<Engine>> Engine::create(LlamaModel& model, int bos_id, int eos_id, const EngineOptions& o) {
  if (o.n_parallel < 1) return error("--parallel must be >= 1, got " + std::to_string(o.n_parallel));
  if (o.prefill_chunk < 1) return error("prefill chunk must be >= 1");
  if (o.max_queue < 0) return error("the queue length must be >= 0");
  if (o.n_ctx > model.n_ctx())
    return error("engine context " + std::to_string(o.n_ctx) + " exceeds the model's " + std::to_string(model.n_ctx()));
  if (model.max_batch() < o.n_parallel)
    return error("the model's batch limit " + std::to_string(model.max_batch()) + " is below --parallel " +
                 std::to_string(o.n_parallel));
  const int bs = model.cache().block_size();
  const int n_ctx = o.n_ctx > 0 ? o.n_ctx : model.n_ctx();
  if (model.cache().n_blocks() < (n_ctx + bs - 1) / bs)
    return error("the KV cache pool (" + std::to_string(model.cache().n_blocks()) +
                 " blocks) cannot hold one sequence of the context length " + std::to_string(n_ctx));
  std::unique_ptr<Engine> e(new Engine(model, bos_id, eos_id, o));
  const int vocab = model.config().vocab_size;
  for (int i = 0; i < o.n_parallel; ++i) {
    auto s = std::make_unique<Slot>();
    s->logits.resize(static_cast<size_t>(vocab));
    s->raw.resize(static_cast<size_t>(vocab));
    s->order.resize(static_cast<size_t>(vocab));
    s->history.reserve(static_cast<size_t>(n_ctx));
    s->kv.blocks.reserve(static_cast<size_t>((n_ctx + bs - 1) / bs));
    e->slots_.push_back(std::move(s));
  }
  e->chunks_.reserve(static_cast<size_t>(o.n_parallel));
  e->chunk_slots_.reserve(static_cast<size_t>(o.n_parallel));
  e->stats_.kv_blocks_total = model.cache().n_blocks();
  e->thread_ = std::thread([p = e.get()] { p->loop(); });
  return e;
}

Engine::~Engine() { stop(); }

std::shared_ptr<EngineHandle> Engine::submit(EngineRequest req, EngineCallback cb, SubmitError* err,
                                             std::string* message) {
  auto refuse = [&](SubmitError e, std::string m) -> std::shared_ptr<EngineHandle> {
    if (err) *err = e;
    if (message) *message = std::move(m);
    return nullptr;
  };
  const int n_prompt = static_cast<int>(req.prompt.size());
  if (n_prompt == 0) return refuse(SubmitError::Invalid, "the prompt is empty (no tokens)");
  if (req.max_tokens < 1) return refuse(SubmitError::Invalid, "max_tokens must be >= 1");
  if (static_cast<int64_t>(n_prompt) + req.max_tokens > n_ctx_)
    return refuse(SubmitError::Invalid,
                  "the prompt (" + std::to_string(n_prompt) + " tokens) plus max_tokens (" +
                      std::to_string(req.max_tokens) + ") exceeds the context length " + std::to_string(n_ctx_));
  const int vocab = vocab_size();
  for (int t : req.prompt)
    if (t < 0 || t >= vocab)
      return refuse(SubmitError::Invalid, "token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                                              std::to_string(vocab) + ")");
  if (Status s = validate(req.sampler); !s) return refuse(SubmitError::Invalid, s.message());
  auto handle = std::make_shared<EngineHandle>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_ || stop_) return refuse(SubmitError::ShuttingDown, "the server is shutting down");
    if (static_cast<int>(queue_.size()) >= opt_.max_queue + (opt_.n_parallel - n_active_))
      return refuse(SubmitError::QueueFull, "too many requests: " + std::to_string(opt_.n_parallel) +
                                                " running and " + std::to_string(queue_.size()) + " queued");
    queue_.push_back(Pending{std::move(req), std::move(cb), handle, Clock::now()});
    stats_.queued = static_cast<int>(queue_.size());
  }
  if (err) *err = SubmitError::None;
  cv_.notify_one();
  return handle;
}

void Engine::begin_shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutting_down_ = true;
}

bool Engine::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [&] { return n_active_ == 0 && queue_.empty(); });
}

void Engine::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
    shutting_down_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Engine::update_stats_locked() {
  const KvCache& c = model_.cache();
  stats_.active = n_active_;
  stats_.queued = static_cast<int>(queue_.size());
  stats_.kv_blocks_used = c.n_used();
  stats_.kv_blocks_cached = static_cast<int>(prefix_.size());
  int only_cache = 0;
  for (const auto& [h, e] : prefix_)
    if (c.refcount(e.block) == 1) ++only_cache;
  stats_.kv_blocks_in_use = c.n_used() - only_cache;
}

int Engine::evict_cached(int needed) {
  KvCache& c = model_.cache();
  if (c.n_free() >= needed) return c.n_free();
  std::vector<std::pair<uint64_t, uint64_t>> idle;  // (last_used, hash) of blocks only the cache holds
  for (const auto& [h, e] : prefix_)
    if (c.refcount(e.block) == 1) idle.emplace_back(e.last_used, h);
  std::sort(idle.begin(), idle.end());
  for (const auto& [used, h] : idle) {
    if (c.n_free() >= needed) break;
    c.release(prefix_[h].block);
    prefix_.erase(h);
  }
  return c.n_free();
}

bool Engine::admit(Pending& p, Slot& s) {
  KvCache& c = model_.cache();
  const int bs = c.block_size();
  const int n_prompt = static_cast<int>(p.req.prompt.size());
  // Shared prefix: full prompt blocks found in the cache, leaving at least one prompt token to prefill
  // (its logits start the generation).
  std::vector<int32_t> shared;
  uint64_t chain = 0;
  if (opt_.prefix_cache) {
    const int max_shared = (n_prompt - 1) / bs;
    for (int j = 0; j < max_shared; ++j) {
      const int* t = p.req.prompt.data() + static_cast<size_t>(j) * bs;
      const uint64_t h = hash_block(chain, t, bs);
      auto it = prefix_.find(h);
      if (it == prefix_.end() || it->second.parent != chain || !std::equal(t, t + bs, it->second.tokens.begin()))
        break;
      shared.push_back(it->second.block);
      chain = h;
    }
  }
  const int positions = std::min(n_ctx_, n_prompt + p.req.max_tokens);
  // Hold the matched blocks first, so that making room below cannot evict them.
  s.kv.blocks.clear();
  s.kv.n_tokens = 0;
  for (int32_t b : shared) {
    c.retain(b);
    s.kv.blocks.push_back(b);
  }
  const int needed = (positions + bs - 1) / bs - static_cast<int>(shared.size());
  if (evict_cached(needed) < needed || !kv_reserve(c, s.kv, positions)) {
    kv_free(c, s.kv);
    return false;
  }
  ++use_clock_;
  {
    uint64_t h = 0;
    for (size_t j = 0; j < shared.size(); ++j) {
      h = hash_block(h, p.req.prompt.data() + j * static_cast<size_t>(bs), bs);
      prefix_[h].last_used = use_clock_;
    }
  }
  s.busy = true;
  s.req = std::move(p.req);
  s.cb = std::move(p.cb);
  s.handle = std::move(p.handle);
  s.submitted = p.submitted;
  s.have_first = false;
  s.n_shared = static_cast<int>(shared.size());
  s.n_prefilled = s.n_past = s.n_shared * bs;
  s.hashed_blocks = s.n_shared;
  s.chain = chain;
  s.generated = 0;
  s.next_token = -1;
  s.history.assign(s.req.prompt.begin(), s.req.prompt.end());
  s.sampler = std::make_unique<Sampler>(s.req.sampler, vocab_size());
  stats_.prompt_tokens += static_cast<uint64_t>(n_prompt);
  stats_.cached_prompt_tokens += static_cast<uint64_t>(s.n_prefilled);
  ++n_active_;
  return true;
}

void Engine::register_prefix_blocks(Slot& s, int filled) {
  if (!opt_.prefix_cache) return;
  KvCache& c = model_.cache();
  const int bs = c.block_size();
  while ((s.hashed_blocks + 1) * bs <= filled) {
    const int j = s.hashed_blocks;
    const int* t = s.req.prompt.data() + static_cast<size_t>(j) * bs;
    const uint64_t h = hash_block(s.chain, t, bs);
    if (prefix_.find(h) == prefix_.end()) {
      c.retain(s.kv.blocks[static_cast<size_t>(j)]);
      prefix_.emplace(h, PrefixEntry{s.kv.blocks[static_cast<size_t>(j)], s.chain, std::vector<int>(t, t + bs),
                                     ++use_clock_});
    }
    s.chain = h;
    ++s.hashed_blocks;
  }
}

void Engine::release_slot(Slot& s) {
  kv_free(model_.cache(), s.kv);
  s.busy = false;
  s.sampler.reset();
  s.cb = nullptr;
  s.handle.reset();
}

void Engine::finish(Slot& s, FinishReason r, const std::string& err) {
  EngineEvent ev;
  ev.kind = EngineEvent::Done;
  ev.finish = r;
  ev.error = err;
  ev.prompt_tokens = static_cast<int>(s.req.prompt.size());
  ev.cached_tokens = s.n_shared * model_.cache().block_size();
  ev.generated_tokens = s.generated;
  ev.ttft_s = s.have_first ? std::chrono::duration<double>(s.first_token - s.submitted).count() : 0.0;
  EngineCallback cb = std::move(s.cb);
  release_slot(s);
  {
    std::lock_guard<std::mutex> lock(mu_);
    --n_active_;
    update_stats_locked();
    if (n_active_ == 0 && queue_.empty()) idle_cv_.notify_all();
  }
  if (cb) cb(ev);
}

void Engine::emit_token(Slot& s, int token, const float* raw) {
  if (!s.have_first) {
    s.have_first = true;
    s.first_token = Clock::now();
  }
  EngineEvent ev;
  ev.kind = EngineEvent::Token;
  ev.token = token;
  if (s.req.top_logprobs >= 0) {
    // log p = l - log sum exp(l), over the model's own distribution (before penalties and temperature).
    const int vocab = vocab_size();
    float mx = -INFINITY;
    for (int i = 0; i < vocab; ++i) mx = std::max(mx, raw[i]);
    double sum = 0.0;
    for (int i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(raw[i] - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    ev.logprob = raw[token] - lse;
    const int k = std::min(s.req.top_logprobs, vocab);
    if (k > 0) {
      std::iota(s.order.begin(), s.order.end(), 0);
      std::partial_sort(s.order.begin(), s.order.begin() + k, s.order.end(), [&](int a, int b) {
        return raw[a] > raw[b] || (raw[a] == raw[b] && a < b);
      });
      for (int i = 0; i < k; ++i) ev.top.emplace_back(s.order[static_cast<size_t>(i)], raw[s.order[static_cast<size_t>(i)]] - lse);
    }
  }
  if (s.cb) s.cb(ev);
}

void Engine::drop_cancelled_queued() {
  // Every step, not only when a slot frees: a client that gave up while waiting (a closed connection) hears
  // back at once and no longer holds a place in the queue.
  std::vector<Pending> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->handle->cancelled()) {
        dropped.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    if (dropped.empty()) return;
    update_stats_locked();
  }
  for (Pending& p : dropped) {
    EngineEvent ev;
    ev.kind = EngineEvent::Done;
    ev.finish = FinishReason::Cancelled;
    ev.prompt_tokens = static_cast<int>(p.req.prompt.size());
    if (p.cb) p.cb(ev);
  }
}

void Engine::loop() {
  const int bs = model_.cache().block_size();
  const int max_batch = model_.max_batch();
  for (;;) {
    drop_cancelled_queued();
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) break;
      // Admit queued requests into free slots, first come first served. One cancelled after the sweep above
      // is admitted and leaves again before the step, below.
      while (!queue_.empty()) {
        Slot* free_slot = nullptr;
        for (auto& s : slots_)
          if (!s->busy) {
            free_slot = s.get();
            break;
          }
        if (!free_slot) break;
        if (!admit(queue_.front(), *free_slot)) break;  // waits for blocks to come back
        queue_.pop_front();
      }
      update_stats_locked();
      if (n_active_ == 0) {
        if (queue_.empty()) idle_cv_.notify_all();
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        continue;
      }
    }

    // Cancelled sequences leave before the step.
    for (auto& s : slots_)
      if (s->busy && s->handle->cancelled()) finish(*s, FinishReason::Cancelled);

    // Build the step: every decoding sequence's next token, then prompt chunks in the remaining budget.
    chunks_.clear();
    chunk_slots_.clear();
    int budget = max_batch;
    for (auto& sp : slots_) {
      Slot& s = *sp;
      if (!s.busy || s.next_token < 0) continue;
      SeqChunk c;
      c.tokens = &s.next_token;
      c.n = 1;
      c.pos = s.n_past;
      c.blocks = s.kv.blocks.data();
      c.logits = s.logits.data();
      chunks_.push_back(c);
      chunk_slots_.push_back(&s);
      --budget;
    }
    for (auto& sp : slots_) {
      Slot& s = *sp;
      const int n_prompt = s.busy ? static_cast<int>(s.req.prompt.size()) : 0;
      if (!s.busy || s.next_token >= 0 || s.n_prefilled >= n_prompt || budget <= 0) continue;
      const int n = std::min({n_prompt - s.n_prefilled, opt_.prefill_chunk, budget});
      SeqChunk c;
      c.tokens = s.req.prompt.data() + s.n_prefilled;
      c.n = n;
      c.pos = s.n_past;
      c.blocks = s.kv.blocks.data();
      c.logits = s.n_prefilled + n == n_prompt ? s.logits.data() : nullptr;
      chunks_.push_back(c);
      chunk_slots_.push_back(&s);
      budget -= n;
    }
    if (chunks_.empty()) continue;

    const int n_step_tokens = max_batch - budget;
    const bool decode_only = n_step_tokens == static_cast<int>(chunks_.size()) &&
                             std::all_of(chunk_slots_.begin(), chunk_slots_.end(), [](const Slot* s) { return s->next_token >= 0; });
    const auto step_t0 = std::chrono::steady_clock::now();
    Status st = model_.forward_batch(chunks_.data(), static_cast<int>(chunks_.size()));
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.steps;
      stats_.last_batch_tokens = max_batch - budget;
      stats_.last_batch_seqs = static_cast<int>(chunks_.size());
    }
    for (size_t i = 0; i < chunks_.size(); ++i) {
      Slot& s = *chunk_slots_[i];
      const SeqChunk& c = chunks_[i];
      if (!st) {
        finish(s, FinishReason::Error, st.message());
        continue;
      }
      s.n_past += c.n;
      if (s.next_token < 0) {
        s.n_prefilled += c.n;
        register_prefix_blocks(s, s.n_prefilled);
      }
      if (!c.logits) continue;
      if (s.req.top_logprobs >= 0) std::copy(s.logits.begin(), s.logits.end(), s.raw.begin());
      const int tok = s.sampler->sample(s.logits.data(), s.history);
      const bool stop_id = std::find(s.req.stop_ids.begin(), s.req.stop_ids.end(), tok) != s.req.stop_ids.end();
      if (stop_id || (s.req.stop_at_eos && (tok == eos_id_ || tok == bos_id_))) {
        finish(s, FinishReason::Stop);
        continue;
      }
      s.history.push_back(tok);
      ++s.generated;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.generated_tokens;
      }
      emit_token(s, tok, s.raw.data());
      if (s.generated >= s.req.max_tokens || s.n_past >= n_ctx_) {
        finish(s, FinishReason::Length);
        continue;
      }
      s.next_token = tok;
    }
    if (decode_only) {
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_t0).count();
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.decode_steps;
      stats_.decode_step_tokens += static_cast<uint64_t>(n_step_tokens);
      stats_.decode_step_seconds += dt;
    }
    (void)bs;
  }
  // Stopping: everything still running or queued ends as cancelled.
  for (auto& s : slots_)
    if (s->busy) finish(*s, FinishReason::Cancelled);
  std::deque<Pending> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (auto& p : left) {
    EngineEvent ev;
    ev.kind = EngineEvent::Done;
    ev.finish = FinishReason::Cancelled;
    if (p.cb) p.cb(ev);
  }
  KvCache& c = model_.cache();
  for (auto& [h, e] : prefix_) c.release(e.block);
  prefix_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  update_stats_locked();
  idle_cv_.notify_all();
}

// ---- Offline batches ----

Result<BatchReport> run_batch(Engine& engine, const EngineRequest& base, std::vector<BatchItem>& items) {
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  const auto t0 = Clock::now();
  std::vector<Clock::time_point> started(items.size());
  const EngineStats s0 = engine.stats();
  for (size_t i = 0; i < items.size(); ++i) {
    EngineRequest r = base;
    r.prompt = items[i].prompt;
    BatchItem* item = &items[i];
    EngineCallback cb = [&, item, i](const EngineEvent& ev) {
      if (ev.kind == EngineEvent::Token) {
        item->output.push_back(ev.token);
        return;
      }
      std::lock_guard<std::mutex> lock(mu);
      item->finish = ev.finish;
      item->error = ev.error;
      item->ttft_s = ev.ttft_s;
      item->total_s = std::chrono::duration<double>(Clock::now() - started[i]).count();
      ++done;
      cv.notify_all();
    };
    for (;;) {
      SubmitError err = SubmitError::None;
      std::string msg;
      started[i] = Clock::now();
      if (engine.submit(r, cb, &err, &msg)) break;
      if (err == SubmitError::QueueFull) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      // Wait for what was already submitted before reporting (the callbacks point into `items`).
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done == i; });
      return error("prompt " + std::to_string(i + 1) + ": " + msg);
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == items.size(); });
  }
  BatchReport rep;
  rep.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // (The step that finished the last request may not be counted yet: its callbacks run inside it.)
  const EngineStats s1 = engine.stats();
  const double dsec = s1.decode_step_seconds - s0.decode_step_seconds;
  const uint64_t dtok = s1.decode_step_tokens - s0.decode_step_tokens, dsteps = s1.decode_steps - s0.decode_steps;
  if (dsec > 0) rep.decode_tok_s = static_cast<double>(dtok) / dsec;
  if (dsteps > 0) rep.decode_mean_batch = static_cast<double>(dtok) / static_cast<double>(dsteps);
  std::vector<double> ttft;
  double tpot_sum = 0.0;
  int tpot_n = 0;
  for (const auto& it : items) {
    if (it.finish == FinishReason::Error) return error(it.error);
    rep.prompt_tokens += static_cast<int>(it.prompt.size());
    rep.generated_tokens += static_cast<int>(it.output.size());
    if (!it.output.empty()) ttft.push_back(it.ttft_s);
    if (it.output.size() > 1) {
      tpot_sum += (it.total_s - it.ttft_s) / static_cast<double>(it.output.size() - 1);
      ++tpot_n;
    }
  }
  if (!ttft.empty()) {
    std::sort(ttft.begin(), ttft.end());
    rep.ttft_mean_s = std::accumulate(ttft.begin(), ttft.end(), 0.0) / static_cast<double>(ttft.size());
    auto pct = [&](double q) { return ttft[std::min(ttft.size() - 1, static_cast<size_t>(q * static_cast<double>(ttft.size())))]; };
    rep.ttft_p50_s = pct(0.5);
    rep.ttft_p99_s = pct(0.99);
  }
  rep.tpot_mean_s = tpot_n ? tpot_sum / tpot_n : 0.0;
  return rep;
}

}  // namespace tern
