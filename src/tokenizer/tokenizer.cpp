// Tokenizer loaders (llama2.c tokenizer.bin, GGUF tokenizer.ggml.* for the llama and gpt2 models, and the
// dispatch by file kind) and the whole-sequence decode. tokenizer.json is read in hf_tokenizer_json.cpp.
#include "tokenizer/tokenizer.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/mmap.h"
#include "formats/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/spm.h"

namespace tern {

std::string Tokenizer::decode(const std::vector<int>& ids, bool special) const {
  std::string out;
  int prev = -1;
  for (int id : ids) {
    // BOS/EOS are skipped even where a vocabulary does not mark them as control pieces, but BOS still
    // counts as `prev` so the piece after it loses its dummy-prefix space.
    if (special || (id != bos_id() && id != eos_id())) out += decode_piece(prev, id, special);
    prev = id;
  }
  return out;
}

int Tokenizer::token_id(std::string_view p) const {
  for (int i = 0; i < vocab_size(); ++i)
    if (piece(i) == p) return i;
  return -1;
}

bool is_end_of_generation_text(std::string_view t) {
  for (std::string_view e : {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|endoftext|>", "<|end_of_text|>",
                             "<end_of_turn>", "<|end|>", "</s>", "<EOT>"})
    if (t == e) return true;
  return false;
}

namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";

// llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, bytes.
// Its exporter wrote "▁" as " " and BOS/EOS as "\n<s>\n" / "\n</s>\n"; both are undone here.
Result<std::unique_ptr<Tokenizer>> parse_tokenizer_bin(const MappedFile& file, int vocab_size) {
  const std::string& path = file.path();
  auto fail = [&](const std::string& msg) { return error(path + ": " + msg); };
  const uint8_t* data = file.data();
  const size_t size = file.size();
  if (vocab_size < 0) return fail("requested vocabulary size " + std::to_string(vocab_size) + " is negative");
  if (size < 4) return fail("too short for a tokenizer.bin header (" + std::to_string(size) + " bytes)");
  int32_t max_len = 0;
  std::memcpy(&max_len, data, 4);
  if (max_len <= 0 || max_len > (1 << 20))
    return fail("max_token_length " + std::to_string(max_len) + " in the header is not in 1..1048576");

  SpmVocab v;
  size_t off = 4;
  for (size_t i = 0; vocab_size > 0 ? i < static_cast<size_t>(vocab_size) : off < size; ++i) {
    const std::string at = "token " + std::to_string(i) + " (offset " + std::to_string(off) + ")";
    if (size - off < 8) {
      if (vocab_size > 0 && off == size)
        return fail("has " + std::to_string(i) + " tokens, expected " + std::to_string(vocab_size));
      return fail("truncated: " + at + " needs 8 bytes for its score and length, " +
                  std::to_string(size - off) + " remain");
    }
    float score = 0;
    int32_t len = 0;
    std::memcpy(&score, data + off, 4);
    std::memcpy(&len, data + off + 4, 4);
    off += 8;
    if (len < 0) return fail(at + " has negative length " + std::to_string(len));
    if (len > max_len)
      return fail(at + " has length " + std::to_string(len) + ", more than max_token_length " +
                  std::to_string(max_len));
    if (static_cast<size_t>(len) > size - off)
      return fail("truncated: " + at + " needs " + std::to_string(len) + " bytes, " +
                  std::to_string(size - off) + " remain");
    if (std::isnan(score)) return fail(at + " has a NaN score");
    std::string piece(reinterpret_cast<const char*>(data + off), static_cast<size_t>(len));
    off += static_cast<size_t>(len);
    v.pieces.push_back(std::move(piece));
    v.scores.push_back(score);
  }
  if (v.pieces.empty()) return fail("contains no tokens");

  const int n = static_cast<int>(v.pieces.size());
  v.bos_id = n > 1 ? 1 : -1;
  v.eos_id = n > 2 ? 2 : -1;
  v.unk_id = v.pieces[0] == "<unk>" ? 0 : -1;
  if (v.bos_id >= 0 && v.pieces[1] == "\n<s>\n") v.pieces[1] = "<s>";
  if (v.eos_id >= 0 && v.pieces[2] == "\n</s>\n") v.pieces[2] = "</s>";
  for (int i = 0; i < n; ++i) {
    if (i == v.bos_id || i == v.eos_id) continue;
    std::string& p = v.pieces[static_cast<size_t>(i)];
    if (p.find(' ') == std::string::npos) continue;
    std::string fixed;
    for (char c : p) {
      if (c == ' ')
        fixed.append(kSpaceSymbol);
      else
        fixed.push_back(c);
    }
    p = std::move(fixed);
  }
  v.types = spm_infer_types(v.pieces, v.unk_id, v.bos_id, v.eos_id);
  v.add_dummy_prefix = true;
  v.add_bos = true;
  v.add_eos = false;
  auto tok = SpmTokenizer::create(std::move(v), path);
  if (!tok) return tok.status();
  return std::unique_ptr<Tokenizer>(std::move(tok.value()));
}

// An optional token id: absent -> `def`; UINT32_MAX (how converters write "none") -> -1.
Result<int> optional_token_id(const GgufFile& g, const std::string& key, int def, size_t n_vocab) {
  if (!g.find(key)) return def;
  auto v = g.get_uint(key);
  if (!v) return v.status();
  if (*v == std::numeric_limits<uint32_t>::max() || *v == std::numeric_limits<uint64_t>::max()) return -1;
  if (*v >= n_vocab)
    return error(g.path() + ": key '" + key + "' is " + std::to_string(*v) + ", outside the vocabulary of " +
                 std::to_string(n_vocab) + " tokens");
  return static_cast<int>(*v);
}

Result<bool> optional_bool(const GgufFile& g, const std::string& key, bool def) {
  if (!g.find(key)) return def;
  return g.get_bool(key);
}

bool is_signed_int(GgufType t) {
  return t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64;
}

// tokenizer.ggml.token_type (which must be present): one type per token, 1 normal .. 6 byte.
Result<std::vector<SpmPieceType>> token_types(const GgufFile& g, size_t n) {
  auto fail = [&](const std::string& msg) { return error(g.path() + ": " + msg); };
  const GgufValue* tt = g.find("tokenizer.ggml.token_type");
  const std::string key = "key 'tokenizer.ggml.token_type'";
  if (tt->type != GgufType::ARRAY || tt->elem_type == GgufType::ARRAY || tt->elem_type == GgufType::STRING ||
      tt->elem_type == GgufType::BOOL || tt->elem_type == GgufType::FLOAT32 || tt->elem_type == GgufType::FLOAT64)
    return fail(key + " is " + tt->to_string(0) + ", expected an array of integers");
  if (tt->arr.size() != n)
    return fail(key + " has " + std::to_string(tt->arr.size()) + " entries but there are " + std::to_string(n) +
                " tokens");
  std::vector<SpmPieceType> types;
  types.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const GgufValue& e = tt->arr[i];
    const int64_t t = is_signed_int(e.type) ? e.i : static_cast<int64_t>(std::min<uint64_t>(e.u, 1000));
    if (t < 1 || t > 6)
      return fail(key + ": token " + std::to_string(i) + " has type " + std::to_string(t) +
                  " (expected 1 normal .. 6 byte)");
    types.push_back(static_cast<SpmPieceType>(t));
  }
  return types;
}

// tokenizer.ggml.tokens as strings (both tokenizer models store them so); returns how many.
Result<size_t> read_gguf_tokens(const GgufFile& g, std::vector<std::string>& out) {
  auto tokens = g.get_array("tokenizer.ggml.tokens", GgufType::STRING);
  if (!tokens) return tokens.status();
  const size_t n = (*tokens)->size();
  if (n == 0) return error(g.path() + ": key 'tokenizer.ggml.tokens' is an empty array");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return error(g.path() + ": key 'tokenizer.ggml.tokens' has too many entries (" + std::to_string(n) + ")");
  out.reserve(n);
  for (const GgufValue& t : **tokens) out.push_back(t.str);
  return n;
}

// tokenizer.ggml.model = gpt2: byte-level BPE. Tokens are stored spelled with GPT-2's byte map, merges as
// "left right" strings in rank order, and tokenizer.ggml.pre names the pre-tokenizer (pretokenize.h).
Result<std::unique_ptr<Tokenizer>> load_bpe_gguf(const GgufFile& g) {
  const std::string& path = g.path();
  auto fail = [&](const std::string& msg) { return error(path + ": " + msg); };
  BpeVocab v;
  auto n_tokens = read_gguf_tokens(g, v.tokens);
  if (!n_tokens) return n_tokens.status();
  const size_t n = *n_tokens;

  auto merges = g.get_array("tokenizer.ggml.merges", GgufType::STRING);
  if (!merges) return merges.status();
  v.merges.reserve((*merges)->size());
  for (size_t i = 0; i < (*merges)->size(); ++i) {
    const std::string& m = (**merges)[i].str;
    // Spelled tokens hold no plain space (the byte map turns it into 'Ġ'); search from 1 so that a first
    // part that is itself " " still splits right.
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos)
      return fail("key 'tokenizer.ggml.merges': merge " + std::to_string(i) + " '" + m +
                  "' is not two tokens separated by a space");
    v.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }

  std::string pre_name = "default";
  if (g.find("tokenizer.ggml.pre")) {
    auto p = g.get_string("tokenizer.ggml.pre");
    if (!p) return p.status();
    pre_name = *p;
  }
  auto pre = gguf_pre(pre_name);
  if (!pre) return fail("key 'tokenizer.ggml.pre': " + pre.message());
  v.pre_patterns = pre->patterns;
  v.ignore_merges = pre->ignore_merges;

  auto bos = optional_token_id(g, "tokenizer.ggml.bos_token_id", -1, n);
  if (!bos) return bos.status();
  auto eos = optional_token_id(g, "tokenizer.ggml.eos_token_id", -1, n);
  if (!eos) return eos.status();
  v.bos_id = *bos;
  v.eos_id = *eos;
  // tokenizer.ggml.unknown_token_id is not used: llama.cpp drops a byte that has no token rather than
  // emitting the unknown token (SmolLM2 has no token for 21 bytes, among them 0x1D, 0xF1 and 0xF2).
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    auto id = optional_token_id(g, key, -1, n);
    if (!id) return id.status();
    if (*id >= 0) v.eog_ids.push_back(*id);
  }

  if (g.find("tokenizer.ggml.token_type")) {
    auto types = token_types(g, n);
    if (!types) return types.status();
    v.types = std::move(types.value());
  } else {
    v.types.assign(n, SpmPieceType::kNormal);
    for (int id : {v.bos_id, v.eos_id})
      if (id >= 0) v.types[static_cast<size_t>(id)] = SpmPieceType::kControl;
  }
  // Control and unknown tokens are matched in text only when asked; user-defined ones always (llama.cpp).
  for (size_t i = 0; i < n; ++i) {
    const SpmPieceType t = v.types[i];
    if (t == SpmPieceType::kControl || t == SpmPieceType::kUnknown || t == SpmPieceType::kUserDefined)
      v.added.push_back({static_cast<int>(i), v.tokens[i], t != SpmPieceType::kUserDefined});
  }

  auto add_bos = optional_bool(g, "tokenizer.ggml.add_bos_token", pre->add_bos);
  if (!add_bos) return add_bos.status();
  auto add_eos = optional_bool(g, "tokenizer.ggml.add_eos_token", false);
  if (!add_eos) return add_eos.status();
  v.add_bos = *add_bos;
  v.add_eos = *add_eos;

  auto tok = BpeTokenizer::create(std::move(v), path);
  if (!tok) return tok.status();
  return std::unique_ptr<Tokenizer>(std::move(tok.value()));
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> load_tokenizer_bin(const std::string& path, int vocab_size) {
  auto f = MappedFile::open(path);
  if (!f) return f.status();
  return parse_tokenizer_bin(*f.value(), vocab_size);
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer_gguf(const GgufFile& g) {
  const std::string& path = g.path();
  auto fail = [&](const std::string& msg) { return error(path + ": " + msg); };
  auto model = g.get_string("tokenizer.ggml.model");
  if (!model) return model.status();
  if (*model == "gpt2") return load_bpe_gguf(g);
  if (*model != "llama")
    return fail("key 'tokenizer.ggml.model': tokenizer model '" + *model +
                "' is not supported (tern reads 'llama' and 'gpt2')");

  SpmVocab v;
  auto n_tokens = read_gguf_tokens(g, v.pieces);
  if (!n_tokens) return n_tokens.status();
  const size_t n = *n_tokens;

  // Score BPE needs the scores: without them every merge would tie.
  auto scores = g.get_array("tokenizer.ggml.scores", GgufType::FLOAT32);
  if (!scores) return scores.status();
  if ((*scores)->size() != n)
    return fail("key 'tokenizer.ggml.scores' has " + std::to_string((*scores)->size()) +
                " entries but there are " + std::to_string(n) + " tokens");
  v.scores.reserve(n);
  for (const GgufValue& s : **scores) v.scores.push_back(static_cast<float>(s.f));

  auto bos = optional_token_id(g, "tokenizer.ggml.bos_token_id", n > 1 ? 1 : -1, n);
  if (!bos) return bos.status();
  auto eos = optional_token_id(g, "tokenizer.ggml.eos_token_id", n > 2 ? 2 : -1, n);
  if (!eos) return eos.status();
  auto unk = optional_token_id(g, "tokenizer.ggml.unknown_token_id", -1, n);
  if (!unk) return unk.status();
  v.bos_id = *bos;
  v.eos_id = *eos;
  v.unk_id = *unk;

  if (g.find("tokenizer.ggml.token_type")) {
    auto types = token_types(g, n);
    if (!types) return types.status();
    v.types = std::move(types.value());
  } else {
    const int unk_guess = v.unk_id >= 0 ? v.unk_id : (v.pieces[0] == "<unk>" ? 0 : -1);
    v.types = spm_infer_types(v.pieces, unk_guess, v.bos_id, v.eos_id);
  }

  auto add_space = optional_bool(g, "tokenizer.ggml.add_space_prefix", true);
  if (!add_space) return add_space.status();
  auto add_bos = optional_bool(g, "tokenizer.ggml.add_bos_token", true);
  if (!add_bos) return add_bos.status();
  auto add_eos = optional_bool(g, "tokenizer.ggml.add_eos_token", false);
  if (!add_eos) return add_eos.status();
  v.add_dummy_prefix = *add_space;
  v.add_bos = *add_bos;
  v.add_eos = *add_eos;

  auto tok = SpmTokenizer::create(std::move(v), path);
  if (!tok) return tok.status();
  return std::unique_ptr<Tokenizer>(std::move(tok.value()));
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    const std::string json = path + "/tokenizer.json";
    if (::stat(json.c_str(), &st) != 0)
      return error(path + ": a folder without a tokenizer.json (tern reads Hugging Face model folders)");
    return load_tokenizer_json(json);
  }
  auto f = MappedFile::open(path);
  if (!f) return f.status();
  std::shared_ptr<MappedFile> file = std::move(f.value());
  if (file->size() >= 4 && std::memcmp(file->data(), "GGUF", 4) == 0) {
    auto g = GgufFile::parse(file);
    if (!g) return g.status();
    return load_tokenizer_gguf(*g);
  }
  // A JSON object with a key: tokenizer.json (after optional whitespace and a UTF-8 byte order mark). The
  // key's quote tells it from a tokenizer.bin whose max_token_length happens to be 123 ('{').
  size_t i = 0;
  const uint8_t* d = file->data();
  const size_t n = file->size();
  auto skip_space = [&] {
    while (i < n && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t')) ++i;
  };
  if (n >= 3 && d[0] == 0xEF && d[1] == 0xBB && d[2] == 0xBF) i = 3;
  skip_space();
  if (i < n && d[i] == '{') {
    ++i;
    skip_space();
    if (i < n && (d[i] == '"' || d[i] == '}')) return load_tokenizer_json(path);
  }
  return parse_tokenizer_bin(*file, 0);
}

}  // namespace tern
