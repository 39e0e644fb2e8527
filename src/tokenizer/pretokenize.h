// Pre-tokenization for byte-level BPE: text is cut into pieces by a chain of regexes (each applied to every
// piece the previous one produced; matches and the gaps between them both become pieces, the Hugging Face
// "Isolated" split), after an optional Unicode normalisation. Regexes are PCRE2 with Unicode classes (\p{L},
// \p{N}) and lookahead, compiled once per tokenizer (JIT where available) and safe to share across threads.
// Also the UTF-8 helpers the tokenizers share. See docs/tokenizer.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace tern {

// The pre-tokenizer regexes of the common byte-level BPE families, as their tokenizer.json files spell them.
// GPT-2 (also the regex of Hugging Face's ByteLevel pre-tokenizer with use_regex=true):
extern const char* const kGpt2Pattern;
// Llama 3 (tiktoken's cl100k pattern: numbers in groups of up to three digits):
extern const char* const kLlama3Pattern;
// Qwen2 (as Llama 3 but every digit alone):
extern const char* const kQwen2Pattern;

// Length of the well-formed UTF-8 character at s[0..n) (Unicode Table 3-7: no overlongs, no surrogates,
// nothing above U+10FFFF), or 0 when s[0] does not start one.
size_t utf8_valid_char_len(const unsigned char* s, size_t n);

// `s` with every byte that does not belong to a well-formed UTF-8 character replaced by U+FFFD, one per byte
// (what llama.cpp does before its regex split). Returns `s` unchanged (no copy made) when it is valid:
// `storage` receives the copy only when one is needed.
std::string_view sanitize_utf8(std::string_view s, std::string& storage);

enum class Normalization : uint8_t { kNone, kNFC, kNFD, kNFKC, kNFKD };
const char* normalization_name(Normalization n);

// `s` (valid UTF-8) in normalisation form `n` (utf8proc), written to `storage`; kNone returns `s` itself.
std::string_view normalize_utf8(std::string_view s, Normalization n, std::string& storage);

// One compiled PCRE2 pattern (UTF + UCP: \s, \d, \w and case folding follow Unicode).
class Regex {
 public:
  static Result<Regex> compile(const std::string& pattern);
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

  const std::string& pattern() const { return pattern_; }
  bool jit() const { return jit_; }

  // Appends to `out` the pieces of text[begin, end) (valid UTF-8): every match, and every stretch between
  // matches, as [start, stop) byte offsets into `text`, in order. Lookarounds see only [begin, end).
  class Matcher;
  void split(std::string_view text, uint32_t begin, uint32_t end, Matcher& m,
             std::vector<std::pair<uint32_t, uint32_t>>& out) const;

 private:
  Regex() = default;
  struct Code;
  std::string pattern_;
  std::unique_ptr<Code> code_;
  bool jit_ = false;
};

// Scratch state for matching one pattern (PCRE2 match data, a JIT stack on demand); one per encode call.
class Regex::Matcher {
 public:
  explicit Matcher(const Regex& re);
  ~Matcher();
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;

 private:
  friend class Regex;
  struct State;
  std::unique_ptr<State> s_;
};

class PreTokenizer {
 public:
  // `patterns` are applied in order; an empty list leaves each text whole. `source` names the file in errors.
  static Result<PreTokenizer> create(const std::vector<std::string>& patterns, Normalization norm,
                                     const std::string& source);

  PreTokenizer(PreTokenizer&&) noexcept = default;
  PreTokenizer& operator=(PreTokenizer&&) noexcept = default;

  // Normalises `text` (after replacing invalid UTF-8 with U+FFFD) into `work` and appends its pieces, as
  // [start, stop) offsets into the returned view of `work`.
  std::string_view split(std::string_view text, std::string& work,
                         std::vector<std::pair<uint32_t, uint32_t>>& pieces) const;

  Normalization normalization() const { return norm_; }
  const std::vector<Regex>& regexes() const { return regexes_; }

 private:
  PreTokenizer() = default;
  Normalization norm_ = Normalization::kNone;
  std::vector<Regex> regexes_;
};

// What llama.cpp does for a GGUF tokenizer.ggml.pre value: the regexes it applies in turn, whether a whole
// pre-token found in the vocabulary skips the merges, and whether BOS is added by default (before
// tokenizer.ggml.add_bos_token overrides it).
struct GgufPre {
  std::vector<std::string> patterns;
  bool ignore_merges = false;
  bool add_bos = false;
};
// Known: llama3 / llama-v3 / llama-bpe, smollm (and starcoder, refact, command-r, codeshell, exaone, which
// share its regexes), gpt-2 / gpt2 (and mpt, olmo, jais), qwen2 (and stablelm2, deepseek-r1-qwen), default
// (also used when the key is absent). Error, naming the key, for anything else.
Result<GgufPre> gguf_pre(const std::string& pre);
// The names gguf_pre accepts, comma separated, for messages.
const char* gguf_pre_names();

}  // namespace tern
