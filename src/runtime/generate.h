// Prompt in, streamed text out: prefill the prompt, then sample and decode one token at a time.
// This is the loop behind `tern run`; tools only format its callbacks and statistics.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/llama.h"
#include "sampler/sampler.h"
#include "tokenizer/tokenizer.h"

namespace tern {

struct GenerateOptions {
  int max_new_tokens = 256;
  SamplerParams sampler;
  // Stop when the model emits EOS, or BOS (which llama2.c-style models use to delimit documents).
  bool stop_at_eos = true;
  // Echo the prompt's text (after BOS) through on_text before the generated text, as llama2.c does.
  bool echo_prompt = true;
  // The first n_past prompt tokens are already in the model's KV cache (a chat's earlier turns): only the
  // rest is prefilled.
  int n_past = 0;
  // Further token ids that end generation (e.g. a chat template's end-of-turn token). Not printed.
  std::vector<int> stop_ids;
};

struct GenerateStats {
  int prompt_tokens = 0;
  int generated_tokens = 0;
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;  // time for the forward passes of generated tokens and their sampling
  // Forward passes of one generated token each (the first generated token comes from the prefill's logits,
  // so this is generated_tokens - 1 when generation ran to its end): the decode rate is steps / seconds.
  int decode_steps = 0;
  bool hit_context_limit = false;
  bool stopped_at_eos = false;
};

// Makes text printable as llama2.c does: a piece that is a single control byte other than whitespace is
// dropped; everything else (including raw UTF-8 bytes from byte-fallback tokens) passes through.
std::string printable_piece(const std::string& piece);

// Runs generation from `prompt_ids` (which should start with BOS where the model expects it). Positions
// 0 .. n_past-1 of the model's cache must already hold prompt_ids[0 .. n_past). `on_text` receives each
// printable piece as soon as it is known. `out_ids` receives the generated ids (stop token excluded);
// all of them but the last are in the cache afterwards.
Status generate(LlamaModel& model, const Tokenizer& tok, const std::vector<int>& prompt_ids,
                const GenerateOptions& opts, const std::function<void(const std::string&)>& on_text,
                GenerateStats* stats, std::vector<int>* out_ids = nullptr);

}  // namespace tern
