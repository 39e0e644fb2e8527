// tern perplexity: how well a model predicts a text (lower is better), scored as llama.cpp scores it.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "backend/backend.h"
#include "commands.h"
#include "common.h"
#include "runtime/loaded_model.h"
#include "runtime/perplexity.h"

namespace tern::cli {

int cmd_perplexity(const Args& a) {
  auto path = model_path(a);
  if (!path) return fail("perplexity", path.message());
  if (!a.has("file")) return fail("perplexity", "--file (-f) is required");
  std::ifstream f(a.str("file"), std::ios::binary);
  if (!f) return fail("perplexity", "--file: cannot open '" + a.str("file") + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  const int64_t ctx = a.integer("ctx");
  if (ctx < 4) return fail("perplexity", "--ctx must be at least 4, got " + a.str("ctx"));

  auto lm = open_model(*path, a.str("tokenizer"));
  if (!lm) return fail("perplexity", lm.message());
  if (ctx > lm->file->config.max_seq_len)
    return fail("perplexity", "--ctx " + std::to_string(ctx) + " exceeds the model's context length " +
                                  std::to_string(lm->file->config.max_seq_len));
  const std::vector<int> ids = lm->tokenizer->encode(ss.str(), lm->tokenizer->add_bos_by_default());
  auto backend = backend_from_flags(a);
  if (!backend) return fail("perplexity", backend.message());
  auto kv = kv_options(a);
  if (!kv) return fail("perplexity", kv.message());
  auto model = LlamaModel::create(lm->file->config, lm->file->weights, *backend.value(), static_cast<int>(ctx),
                                  static_cast<int>(ctx), kv.value());
  if (!model) return fail("perplexity", model.message());
  auto r = perplexity(*model.value(), *lm->tokenizer, ids, static_cast<int>(ctx));
  if (!r) return fail("perplexity", r.message());
  for (size_t i = 0; i < r->chunk_ppl.size(); ++i) std::fprintf(stderr, "[%zu]%.4f ", i + 1, r->chunk_ppl[i]);
  std::fprintf(stderr, "\n");
  std::printf("perplexity: %.4f over %d chunks of %lld tokens (%d tokens scored, %zu in the text)\n", r->ppl,
              r->chunks, static_cast<long long>(ctx), r->scored_tokens, ids.size());
  return 0;
}

}  // namespace tern::cli
