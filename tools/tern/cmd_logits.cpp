// tern logits: raw logits of every position, for comparison against reference implementations.
#include <cstdio>
#include <sstream>

#include "backend/backend.h"
#include "commands.h"
#include "common.h"
#include "formats/model_file.h"
#include "model/llama.h"

namespace tern::cli {

int cmd_logits(const Args& a) {
  for (const char* f : {"model", "ids", "output"})
    if (!a.has(f)) return fail("logits", std::string("--") + f + " is required");
  std::vector<int> ids;
  std::string text = a.str("ids");
  for (char& ch : text)
    if (ch == ',') ch = ' ';
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    char* end = nullptr;
    long v = std::strtol(word.c_str(), &end, 10);
    if (*end || v < 0 || v > INT32_MAX) return fail("logits", "--ids: '" + word + "' is not a token id");
    ids.push_back(static_cast<int>(v));
  }
  if (ids.empty()) return fail("logits", "--ids: no token ids given");

  auto mf = load_model_file(a.str("model"));
  if (!mf) return fail("logits", mf.message());
  const ModelConfig& c = mf.value()->config;
  if (static_cast<int>(ids.size()) > c.max_seq_len)
    return fail("logits", std::to_string(ids.size()) + " ids exceed the model's context length " +
                              std::to_string(c.max_seq_len));
  auto backend = backend_from_flags(a);
  if (!backend) return fail("logits", backend.message());
  auto kv = kv_options(a);
  if (!kv) return fail("logits", kv.message());
  auto model = LlamaModel::create(c, mf.value()->weights, *backend.value(), static_cast<int>(ids.size()), 64, kv.value());
  if (!model) return fail("logits", model.message());

  const size_t V = static_cast<size_t>(c.vocab_size);
  std::vector<float> logits(ids.size() * V);
  if (a.flag("prefill")) {
    if (Status s = model.value()->forward(ids.data(), static_cast<int>(ids.size()), 0, logits.data(), true); !s)
      return fail("logits", s.message());
  } else {
    for (size_t i = 0; i < ids.size(); ++i)
      if (Status s = model.value()->forward(&ids[i], 1, static_cast<int>(i), logits.data() + i * V); !s)
        return fail("logits", s.message());
  }
  FILE* f = std::fopen(a.str("output").c_str(), "wb");
  if (!f) return fail("logits", "--output: cannot open '" + a.str("output") + "' for writing");
  const size_t written = std::fwrite(logits.data(), sizeof(float), logits.size(), f);
  const bool ok = std::fclose(f) == 0 && written == logits.size();
  if (!ok) return fail("logits", "--output: write to '" + a.str("output") + "' failed");
  return 0;
}

}  // namespace tern::cli
