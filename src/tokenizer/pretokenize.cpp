#include "tokenizer/pretokenize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <cstdlib>
#include <cstring>

namespace tern {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

size_t utf8_valid_char_len(const unsigned char* s, size_t n) {
  const unsigned char c = s[0];
  if (c < 0x80) return 1;
  auto cont = [&](size_t i, unsigned char lo, unsigned char hi) { return i < n && s[i] >= lo && s[i] <= hi; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1, 0x80, 0xBF) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return cont(1, lo, hi) && cont(2, 0x80, 0xBF) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

std::string_view sanitize_utf8(std::string_view s, std::string& storage) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  // Fast scan: most text is valid, and then nothing is copied.
  while (i < n) {
    const size_t l = utf8_valid_char_len(p + i, n - i);
    if (l == 0) break;
    i += l;
  }
  if (i == n) return s;
  storage.clear();
  storage.reserve(n + 16);
  storage.append(s.substr(0, i));
  while (i < n) {
    const size_t l = utf8_valid_char_len(p + i, n - i);
    if (l == 0) {
      storage.append("\xEF\xBF\xBD");
      ++i;
    } else {
      storage.append(s.substr(i, l));
      i += l;
    }
  }
  return storage;
}

const char* normalization_name(Normalization n) {
  switch (n) {
    case Normalization::kNone: return "none";
    case Normalization::kNFC: return "NFC";
    case Normalization::kNFD: return "NFD";
    case Normalization::kNFKC: return "NFKC";
    case Normalization::kNFKD: return "NFKD";
  }
  return "?";
}

std::string_view normalize_utf8(std::string_view s, Normalization n, std::string& storage) {
  if (n == Normalization::kNone) return s;
  // ASCII is invariant under every normalisation form.
  bool ascii = true;
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return s;
  int opts = UTF8PROC_STABLE;
  switch (n) {
    case Normalization::kNFC: opts |= UTF8PROC_COMPOSE; break;
    case Normalization::kNFD: opts |= UTF8PROC_DECOMPOSE; break;
    case Normalization::kNFKC: opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case Normalization::kNFKD: opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    case Normalization::kNone: break;
  }
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t len =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                   static_cast<utf8proc_ssize_t>(s.size()), &out, static_cast<utf8proc_option_t>(opts));
  if (len < 0) {  // only on invalid UTF-8 or out of memory; callers pass sanitized text
    std::free(out);
    return s;
  }
  storage.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(len));
  std::free(out);
  return storage;
}

// ---------------------------------------------------------------------------------------------------------

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

struct Regex::Matcher::State {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;  // only once the default JIT stack proved too small
  pcre2_jit_stack* stack = nullptr;
  ~State() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

Regex::Matcher::Matcher(const Regex& re) : s_(std::make_unique<State>()) {
  s_->data = pcre2_match_data_create_from_pattern(re.code_->code, nullptr);
}
Regex::Matcher::~Matcher() = default;

Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

Result<Regex> Regex::compile(const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return error("pre-tokenizer regex '" + pattern + "' does not compile: " +
                 reinterpret_cast<const char*>(msg) + " at offset " + std::to_string(err_off));
  }
  Regex re;
  re.pattern_ = pattern;
  re.code_ = std::make_unique<Code>();
  re.code_->code = code;
  re.jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return re;
}

void Regex::split(std::string_view text, uint32_t begin, uint32_t end, Matcher& m,
                  std::vector<std::pair<uint32_t, uint32_t>>& out) const {
  // The piece is matched as a subject of its own, so anchors and lookarounds cannot see past its ends (as
  // in Hugging Face tokenizers and llama.cpp, which split each piece independently).
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + begin);
  const size_t n = end - begin;
  Matcher::State& st = *m.s_;
  size_t pos = 0;
  size_t last = 0;
  while (pos < n) {
    int rc = pcre2_match(code_->code, subject, n, pos, PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !st.stack) {
      // Long runs (e.g. megabytes of spaces against \s+(?!\S)) can outgrow the 32 KiB default JIT stack.
      st.stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
      st.context = pcre2_match_context_create(nullptr);
      if (st.stack && st.context) pcre2_jit_stack_assign(st.context, nullptr, st.stack);
      rc = pcre2_match(code_->code, subject, n, pos, PCRE2_NO_UTF_CHECK, st.data, st.context);
    }
    if (rc < 0) break;  // no further match (or a resource limit): the rest is one gap
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    const size_t ms = ov[0];
    const size_t me = ov[1];
    if (me <= ms) {  // empty match: step over one character and look again
      pos = ms + 1;
      while (pos < n && (subject[pos] & 0xC0) == 0x80) ++pos;
      continue;
    }
    if (ms > last) out.emplace_back(begin + static_cast<uint32_t>(last), begin + static_cast<uint32_t>(ms));
    out.emplace_back(begin + static_cast<uint32_t>(ms), begin + static_cast<uint32_t>(me));
    last = pos = me;
  }
  if (last < n) out.emplace_back(begin + static_cast<uint32_t>(last), end);
}

// ---------------------------------------------------------------------------------------------------------

Result<PreTokenizer> PreTokenizer::create(const std::vector<std::string>& patterns, Normalization norm,
                                          const std::string& source) {
  PreTokenizer p;
  p.norm_ = norm;
  for (const std::string& pat : patterns) {
    auto re = Regex::compile(pat);
    if (!re) return error(source + ": " + re.message());
    p.regexes_.push_back(std::move(re.value()));
  }
  return p;
}

std::string_view PreTokenizer::split(std::string_view text, std::string& work,
                                     std::vector<std::pair<uint32_t, uint32_t>>& pieces) const {
  std::string sanitized;
  std::string_view t = sanitize_utf8(text, sanitized);
  if (norm_ != Normalization::kNone) {
    t = normalize_utf8(t, norm_, work);
  }
  if (t.data() == sanitized.data()) {
    work = std::move(sanitized);
    t = work;
  }
  const size_t first = pieces.size();
  if (t.empty()) return t;
  pieces.emplace_back(0, static_cast<uint32_t>(t.size()));
  std::vector<std::pair<uint32_t, uint32_t>> next;
  for (const Regex& re : regexes_) {
    Regex::Matcher m(re);
    next.clear();
    for (size_t i = first; i < pieces.size(); ++i) re.split(t, pieces[i].first, pieces[i].second, m, next);
    pieces.resize(first);
    pieces.insert(pieces.end(), next.begin(), next.end());
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------------

namespace {

// GPT-2's regex as llama.cpp spells it (without the final "|\s+": whitespace it leaves unmatched becomes a
// piece of its own anyway, as a gap).
constexpr const char* kGpt2LlamaCpp =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

}  // namespace

const char* gguf_pre_names() {
  return "llama3, llama-v3, llama-bpe, smollm, starcoder, refact, command-r, codeshell, exaone, gpt-2, gpt2, "
         "mpt, olmo, jais, qwen2, stablelm2, deepseek-r1-qwen, default";
}

Result<GgufPre> gguf_pre(const std::string& pre) {
  GgufPre g;
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe") {
    g.patterns = {kLlama3Pattern};
    g.ignore_merges = true;
    g.add_bos = true;
  } else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" ||
             pre == "codeshell" || pre == "exaone") {
    // Hugging Face: Digits(individual_digits) then ByteLevel(use_regex).
    g.patterns = {R"(\p{N})", kGpt2LlamaCpp};
  } else if (pre == "gpt-2" || pre == "gpt2" || pre == "mpt" || pre == "olmo" || pre == "jais") {
    g.patterns = {kGpt2LlamaCpp};
  } else if (pre == "qwen2" || pre == "stablelm2" || pre == "deepseek-r1-qwen") {
    g.patterns = {kQwen2Pattern};
  } else if (pre == "default") {
    g.patterns = {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2LlamaCpp, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  } else {
    return error("'" + pre + "' is not a pre-tokenizer tern knows (known: " + gguf_pre_names() + ")");
  }
  return g;
}

}  // namespace tern
