// The batched engine behind `tern serve` and `tern run --batch-file`: many sequences share one model.
//
// One engine thread owns the model. Each step it builds one forward_batch() call from every active
// sequence: one token per decoding sequence, plus a chunk (at most prefill_chunk tokens) of each prompt still
// being prefilled, so long prompts are prefilled across several steps while running streams keep flowing
// (continuous batching: requests join and leave between steps). Keys and values live in the model's paged
// KV cache: each sequence has a block table; blocks completely filled by a prompt are remembered by the
// chained hash of their tokens, so a later prompt with the same prefix (a common system prompt) retains
// those blocks instead of recomputing them. Admission is bounded: at most n_parallel sequences run, at
// most max_queue wait; beyond that submit() refuses.
//
// Results never depend on the batch: a sequence's logits are those of running it alone (row-independent
// matmul kernels, per-sequence attention), so greedy output is token-identical (tests/unit/test_engine.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"
#include "model/llama.h"
#include "sampler/sampler.h"

namespace tern {

struct EngineOptions {
  int n_parallel = 4;     // sequences decoded together
  int n_ctx = 0;          // longest sequence (prompt + generated); 0: the model's n_ctx
  int prefill_chunk = 32; // most prompt tokens of one sequence per step
  int max_queue = 64;     // requests waiting for a free sequence; beyond: submit() refuses
  bool prefix_cache = true;
};

// The KV pool a model needs for `o` (n_parallel sequences of n_ctx, plus as much again for cached
// prefixes), to pass to LlamaModel::create.
KvOptions engine_kv_options(const EngineOptions& o, int n_ctx, KvOptions base);

struct EngineRequest {
  std::vector<int> prompt;   // token ids, non-empty
  int max_tokens = 256;      // generated tokens at most (prompt + max_tokens <= n_ctx)
  SamplerParams sampler;
  std::vector<int> stop_ids; // ids that end generation (not emitted); EOS/BOS end it too when stop_at_eos
  bool stop_at_eos = true;
  int top_logprobs = -1;     // -1: no logprobs; k >= 0: the sampled token's logprob and the k most likely
};

enum class FinishReason { Stop, Length, Cancelled, Error };
const char* finish_reason_name(FinishReason r);

// What a request's callback receives, on the engine thread (keep it short: it holds up every sequence).
struct EngineEvent {
  enum Kind { Token, Done } kind = Token;
  int token = -1;
  float logprob = 0.0f;                     // when top_logprobs >= 0
  std::vector<std::pair<int, float>> top;   // (id, logprob), most likely first
  FinishReason finish = FinishReason::Stop; // Done only
  std::string error;                        // Done with Error
  int prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0;  // Done only
  double ttft_s = 0.0;                      // Done only: submit -> first token
};
using EngineCallback = std::function<void(const EngineEvent&)>;

// A submitted request: cancel() stops it at the engine's next step, running (its blocks go back to the pool)
// or still queued (it leaves the queue); its callback then gets Done with Cancelled.
class EngineHandle {
 public:
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  std::atomic<bool> cancelled_{false};
};

enum class SubmitError { None, Invalid, QueueFull, ShuttingDown };

struct EngineStats {
  int active = 0, queued = 0;
  int kv_blocks_total = 0, kv_blocks_used = 0, kv_blocks_cached = 0;
  int kv_blocks_in_use = 0;  // held by sequences (used less those only the prefix cache holds)
  int last_batch_tokens = 0, last_batch_seqs = 0;
  uint64_t steps = 0, prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0;
  // Steps that carried decode tokens only (no prompt chunk): how many, their tokens, and their time
  // (the forward pass and sampling): the engine's aggregate decode rate is tokens / seconds.
  uint64_t decode_steps = 0, decode_step_tokens = 0;
  double decode_step_seconds = 0.0;
};

class Engine {
 public:
  // `model` must have been created with a pool from engine_kv_options(); the engine never calls forward().
  static Result<std::unique_ptr<Engine>> create(LlamaModel& model, int bos_id, int eos_id, const EngineOptions& o);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request. On refusal returns null and sets *err (and *message for Invalid).
  std::shared_ptr<EngineHandle> submit(EngineRequest req, EngineCallback cb, SubmitError* err, std::string* message);

  // Stops admitting (submit() answers ShuttingDown); running and queued requests continue.
  void begin_shutdown();
  // Waits until nothing is running or queued, at most `timeout`; true when idle.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Cancels everything and stops the engine thread (the destructor does this too).
  void stop();

  EngineStats stats() const;
  int n_ctx() const { return n_ctx_; }
  int n_parallel() const { return opt_.n_parallel; }
  int vocab_size() const { return model_.config().vocab_size; }

 private:
  struct Pending {
    EngineRequest req;
    EngineCallback cb;
    std::shared_ptr<EngineHandle> handle;
    std::chrono::steady_clock::time_point submitted;
  };
  struct Slot;
  struct PrefixEntry {
    int32_t block;
    uint64_t parent;
    std::vector<int> tokens;
    uint64_t last_used;
  };

  Engine(LlamaModel& model, int bos_id, int eos_id, const EngineOptions& o);
  void loop();
  bool admit(Pending& p, Slot& s);
  void release_slot(Slot& s);
  void drop_cancelled_queued();
  void finish(Slot& s, FinishReason r, const std::string& error = {});
  void register_prefix_blocks(Slot& s, int filled_positions);
  int evict_cached(int needed);
  void emit_token(Slot& s, int token, const float* raw_logits);
  void update_stats_locked();

  LlamaModel& model_;
  int bos_id_, eos_id_;
  EngineOptions opt_;
  int n_ctx_;
  std::vector<std::unique_ptr<Slot>> slots_;

  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<Pending> queue_;
  bool shutting_down_ = false, stop_ = false;
  int n_active_ = 0;
  EngineStats stats_;

  // Prefix cache (engine thread only): chained hash of a full prompt block -> the block, which the
  // cache holds one reference to.
  std::unordered_map<uint64_t, PrefixEntry> prefix_;
  uint64_t use_clock_ = 0;

  std::vector<SeqChunk> chunks_;
  std::vector<Slot*> chunk_slots_;
  std::thread thread_;
};

// ---- Offline batches (tern run --batch-file) ----

struct BatchItem {
  std::vector<int> prompt;
  std::vector<int> output;       // generated ids
  FinishReason finish = FinishReason::Stop;
  std::string error;
  double ttft_s = 0.0, total_s = 0.0;
};

struct BatchReport {
  double wall_s = 0.0;
  int prompt_tokens = 0, generated_tokens = 0;
  double ttft_mean_s = 0.0, ttft_p50_s = 0.0, ttft_p99_s = 0.0;
  double tpot_mean_s = 0.0;  // time per output token after the first, averaged over requests
  // The engine's decode-only steps during the run (EngineStats): aggregate decode tok/s and mean batch.
  double decode_tok_s = 0.0, decode_mean_batch = 0.0;
};

// Runs every item through the engine at once (queued beyond n_parallel) and waits for all.
// `base` gives max_tokens, sampling and stop ids; each item's prompt is its own.
Result<BatchReport> run_batch(Engine& engine, const EngineRequest& base, std::vector<BatchItem>& items);

}  // namespace tern
