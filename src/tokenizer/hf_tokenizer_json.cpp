#include "tokenizer/hf_tokenizer_json.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/spm.h"

namespace tern {

namespace {

using Json = nlohmann::json;

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // "▁"

// Lookups that never throw: a missing key or a value of another type gives `def`.
const Json* member(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}
std::string str_or(const Json& j, const char* key, const std::string& def = "") {
  const Json* v = member(j, key);
  return v && v->is_string() ? v->get<std::string>() : def;
}
bool bool_or(const Json& j, const char* key, bool def) {
  const Json* v = member(j, key);
  return v && v->is_boolean() ? v->get<bool>() : def;
}
bool is_null_or_empty(const Json* v) {
  return !v || v->is_null() || (v->is_string() && v->get<std::string>().empty());
}

std::string type_of(const Json& j) {
  return str_or(j, "type", "(no type)");
}

// A component and the components nested in it by Sequence, in order.
void flatten(const Json& j, const char* list_key, std::vector<const Json*>& out) {
  if (j.is_null()) return;
  if (type_of(j) == "Sequence") {
    if (const Json* list = member(j, list_key); list && list->is_array())
      for (const Json& e : *list) flatten(e, list_key, out);
    return;
  }
  out.push_back(&j);
}

// A special-token entry of tokenizer_config.json: "<s>" or {"content": "<s>", ...}.
std::optional<std::string> config_token(const Json& config, const char* key) {
  const Json* v = member(config, key);
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    std::string c = str_or(*v, "content");
    if (!c.empty()) return c;
  }
  return std::nullopt;
}

// The pre-tokenizer regex for a Split pattern {"Regex": "..."} or {"String": "..."} (quoted literally).
std::optional<std::string> split_pattern(const Json& split) {
  const Json* p = member(split, "pattern");
  if (!p) return std::nullopt;
  if (const Json* r = member(*p, "Regex"); r && r->is_string()) return r->get<std::string>();
  if (const Json* s = member(*p, "String"); s && s->is_string()) {
    std::string lit = s->get<std::string>();
    std::string out;
    for (char c : lit) {  // escape everything that is not alphanumeric
      if (!std::isalnum(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80) out += '\\';
      out += c;
    }
    return out;
  }
  return std::nullopt;
}

struct Parsed {
  std::string source;
  Json root;
  Json config;  // object, or null when there is no tokenizer_config.json
  const Json* model = nullptr;
  std::vector<std::pair<std::string, int>> vocab;  // model.vocab
  std::vector<std::pair<std::string, std::string>> merges;
  struct Added {
    int id;
    std::string content;
    bool special, lstrip, rstrip;
  };
  std::vector<Added> added;
  int n_ids = 0;  // 1 + the largest id in vocab or added tokens
};

Status fail(const Parsed& p, const std::string& msg) {
  return error(p.source + ": " + msg);
}

Status read_model(Parsed& p) {
  const Json* model = member(p.root, "model");
  if (!model || !model->is_object()) return fail(p, "no 'model' object (not a Hugging Face tokenizer.json?)");
  p.model = model;
  const std::string type = str_or(*model, "type", member(*model, "merges") ? "BPE" : "");
  if (type != "BPE")
    return fail(p, "tokenizer.json model type '" + (type.empty() ? std::string("(none)") : type) +
                       "' is not supported (tern reads BPE models: byte-level or SentencePiece-style)");
  if (const Json* d = member(*model, "dropout"); d && d->is_number() && d->get<double>() > 0)
    return fail(p, "model.dropout is set: BPE dropout (a training-time randomisation) is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!is_null_or_empty(member(*model, key)))
      return fail(p,
                  std::string("model.") + key + " is set: not supported (no Llama-family tokenizer uses it)");

  const Json* vocab = member(*model, "vocab");
  if (!vocab || !vocab->is_object()) return fail(p, "model.vocab is missing or not an object");
  p.vocab.reserve(vocab->size());
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() >= std::numeric_limits<int32_t>::max())
      return fail(p, "model.vocab: token '" + it.key() + "' has an id that is not a non-negative integer");
    const int id = static_cast<int>(it.value().get<int64_t>());
    p.vocab.emplace_back(it.key(), id);
    p.n_ids = std::max(p.n_ids, id + 1);
  }

  const Json* merges = member(*model, "merges");
  if (!merges || !merges->is_array()) return fail(p, "model.merges is missing or not an array");
  p.merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const Json& m = (*merges)[i];
    if (m.is_string()) {  // "left right" (older files)
      const std::string s = m.get<std::string>();
      const size_t sp = s.size() > 1 ? s.find(' ', 1) : std::string::npos;
      if (sp == std::string::npos)
        return fail(
            p, "model.merges[" + std::to_string(i) + "] '" + s + "' is not two tokens separated by a space");
      p.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["left", "right"]
      p.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return fail(p, "model.merges[" + std::to_string(i) + "] is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }

  if (const Json* added = member(p.root, "added_tokens"); added && added->is_array()) {
    for (size_t i = 0; i < added->size(); ++i) {
      const Json& a = (*added)[i];
      const Json* id = member(a, "id");
      const std::string content = str_or(a, "content");
      if (!id || !id->is_number_integer() || id->get<int64_t>() < 0 ||
          id->get<int64_t>() >= std::numeric_limits<int32_t>::max() || content.empty())
        return fail(
            p, "added_tokens[" + std::to_string(i) + "] needs a non-negative integer 'id' and a 'content'");
      const int idv = static_cast<int>(id->get<int64_t>());
      p.added.push_back({idv, content, bool_or(a, "special", false), bool_or(a, "lstrip", false),
                         bool_or(a, "rstrip", false)});
      p.n_ids = std::max(p.n_ids, idv + 1);
    }
  }
  if (p.n_ids == 0) return fail(p, "the vocabulary is empty");
  // Ids index dense arrays: a stray huge id must not allocate gigabytes.
  const size_t listed = p.vocab.size() + p.added.size();
  if (static_cast<size_t>(p.n_ids) > 2 * listed + 1024)
    return fail(p, "token ids run up to " + std::to_string(p.n_ids - 1) + " but only " + std::to_string(listed) +
                       " tokens are listed");
  return Status();
}

// The id of `text` among the added tokens, then the vocabulary; -1 if neither holds it.
int find_id(const Parsed& p, const std::string& text) {
  for (const auto& a : p.added)
    if (a.content == text) return a.id;
  for (const auto& [t, id] : p.vocab)
    if (t == text) return id;
  return -1;
}

struct Specials {
  int bos = -1, eos = -1;
  bool add_bos = false, add_eos = false;
};

// BOS/EOS and whether to add them: tokenizer_config.json's bos_token/eos_token/add_bos_token/add_eos_token;
// without add_bos_token, what a TemplateProcessing post-processor does, else "yes when there is a BOS".
Result<Specials> read_specials(const Parsed& p, const std::string& default_bos,
                               const std::string& default_eos) {
  Specials s;
  auto resolve = [&](const char* key, const std::string& def, int& id) -> Status {
    std::optional<std::string> text = config_token(p.config, key);
    if (!text && member(p.config, key)) return Status();  // explicitly null: none
    if (!text) text = def;
    if (text->empty()) return Status();
    id = find_id(p, *text);
    if (id < 0 && config_token(p.config, key))
      return fail(p, "tokenizer_config.json: " + std::string(key) + " '" + *text + "' is not a token");
    return Status();
  };
  TERN_TRY(resolve("bos_token", default_bos, s.bos));
  TERN_TRY(resolve("eos_token", default_eos, s.eos));

  std::optional<bool> template_bos, template_eos;
  if (const Json* post = member(p.root, "post_processor"); post && type_of(*post) == "TemplateProcessing") {
    if (const Json* single = member(*post, "single"); single && single->is_array() && !single->empty()) {
      auto special_id = [&](const Json& e) -> std::string {
        const Json* st = member(e, "SpecialToken");
        return st ? str_or(*st, "id") : "";
      };
      const std::string first = special_id(single->front());
      const std::string last = special_id(single->back());
      template_bos = !first.empty() && find_id(p, first) == s.bos;
      template_eos = !last.empty() && find_id(p, last) == s.eos;
    }
  }
  s.add_bos = bool_or(p.config, "add_bos_token", template_bos.value_or(s.bos >= 0));
  s.add_eos = bool_or(p.config, "add_eos_token", template_eos.value_or(false));
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// Byte-level BPE.

Result<BpeVocab> byte_level_vocab(const Parsed& p) {
  BpeVocab v;
  v.tokens.assign(static_cast<size_t>(p.n_ids), std::string());
  v.types.assign(static_cast<size_t>(p.n_ids), SpmPieceType::kUnused);  // ids nothing names stay unused
  for (const auto& [t, id] : p.vocab) {
    v.tokens[static_cast<size_t>(id)] = t;
    v.types[static_cast<size_t>(id)] = SpmPieceType::kNormal;
  }
  for (const auto& a : p.added) {
    auto& type = v.types[static_cast<size_t>(a.id)];
    if (type != SpmPieceType::kNormal) v.tokens[static_cast<size_t>(a.id)] = a.content;
    type = a.special ? SpmPieceType::kControl : SpmPieceType::kUserDefined;
    v.added.push_back({a.id, a.content, a.special, a.lstrip, a.rstrip});
  }
  v.merges = p.merges;
  v.ignore_merges = bool_or(*p.model, "ignore_merges", false);
  const std::string unk = str_or(*p.model, "unk_token");
  if (!unk.empty()) v.unk_id = find_id(p, unk);

  // Normalizer: Unicode normal forms only.
  std::vector<const Json*> norms;
  if (const Json* n = member(p.root, "normalizer")) flatten(*n, "normalizers", norms);
  for (const Json* n : norms) {
    const std::string t = type_of(*n);
    Normalization form;
    if (t == "NFC")
      form = Normalization::kNFC;
    else if (t == "NFD")
      form = Normalization::kNFD;
    else if (t == "NFKC")
      form = Normalization::kNFKC;
    else if (t == "NFKD")
      form = Normalization::kNFKD;
    else
      return fail(p, "normalizer '" + t +
                         "' is not supported for byte-level BPE (tern applies NFC, NFD, NFKC, NFKD)");
    if (v.normalization != Normalization::kNone && v.normalization != form)
      return fail(p, "normalizer: more than one Unicode normal form in a Sequence is not supported");
    v.normalization = form;
  }

  // Pre-tokenizer: Split regexes, Digits and ByteLevel, in order.
  std::vector<const Json*> pres;
  if (const Json* pt = member(p.root, "pre_tokenizer")) flatten(*pt, "pretokenizers", pres);
  for (const Json* pt : pres) {
    const std::string t = type_of(*pt);
    if (t == "ByteLevel") {
      if (bool_or(*pt, "add_prefix_space", false))
        return fail(p, "pre_tokenizer ByteLevel with add_prefix_space=true is not supported");
      if (bool_or(*pt, "use_regex", true)) v.pre_patterns.push_back(kGpt2Pattern);
    } else if (t == "Split") {
      auto pat = split_pattern(*pt);
      if (!pat) return fail(p, "pre_tokenizer Split without a Regex or String pattern");
      const std::string behavior = str_or(*pt, "behavior", "Isolated");
      if (behavior != "Isolated" || bool_or(*pt, "invert", false))
        return fail(p, "pre_tokenizer Split with behavior '" + behavior + "'" +
                           (bool_or(*pt, "invert", false) ? " and invert" : "") +
                           " is not supported (tern splits 'Isolated', not inverted)");
      v.pre_patterns.push_back(*pat);
    } else if (t == "Digits") {
      v.pre_patterns.push_back(bool_or(*pt, "individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
    } else {
      return fail(p, "pre_tokenizer '" + t +
                         "' is not supported for byte-level BPE (tern reads Split, Digits, ByteLevel)");
    }
  }

  auto sp = read_specials(p, "", "");
  if (!sp) return sp.status();
  v.bos_id = sp->bos;
  v.eos_id = sp->eos;
  v.add_bos = sp->add_bos;
  v.add_eos = sp->add_eos;
  return v;
}

Result<std::unique_ptr<Tokenizer>> make_byte_level(const Parsed& p) {
  auto v = byte_level_vocab(p);
  if (!v) return v.status();
  auto tok = BpeTokenizer::create(std::move(v.value()), p.source);
  if (!tok) return tok.status();
  return std::unique_ptr<Tokenizer>(std::move(tok.value()));
}

// ---------------------------------------------------------------------------------------------------------
// SentencePiece-style BPE (Llama 2, Mistral converted to tokenizer.json).

Result<SpmVocab> sentencepiece_vocab(const Parsed& p) {
  SpmVocab v;
  const size_t n = static_cast<size_t>(p.n_ids);
  v.pieces.assign(n, std::string());
  v.types.assign(n, SpmPieceType::kUnused);
  // Hugging Face merges the lowest-ranked pair first; tern's score BPE merges the highest-scoring piece
  // first. A SentencePiece conversion lists every split of a piece, with consecutive ranks, so scoring each
  // piece by minus the first rank that makes it gives the same order. A piece no merge makes gets the
  // lowest score (Hugging Face never makes it; see docs/tokenizer.md).
  const float never = -static_cast<float>(p.merges.size()) - 1.0f;
  v.scores.assign(n, never);
  for (const auto& [t, id] : p.vocab) {
    v.pieces[static_cast<size_t>(id)] = t;
    v.types[static_cast<size_t>(id)] = SpmPieceType::kNormal;
  }
  const bool byte_fallback = bool_or(*p.model, "byte_fallback", false);
  std::unordered_map<std::string, int> ids;
  for (const auto& [t, id] : p.vocab) ids.emplace(t, id);
  for (size_t r = 0; r < p.merges.size(); ++r) {
    auto it = ids.find(p.merges[r].first + p.merges[r].second);
    if (it == ids.end())
      return fail(p, "model.merges[" + std::to_string(r) + "] ('" + p.merges[r].first + "' '" +
                         p.merges[r].second + "'): its result is not in model.vocab");
    float& s = v.scores[static_cast<size_t>(it->second)];
    s = std::max(s, -static_cast<float>(r));
  }
  for (size_t i = 0; i < n; ++i) {
    const std::string& piece = v.pieces[i];
    if (byte_fallback && v.types[i] == SpmPieceType::kNormal && piece.size() == 6 &&
        piece.rfind("<0x", 0) == 0 && piece[5] == '>')
      v.types[i] = SpmPieceType::kByte;
  }
  const std::string unk = str_or(*p.model, "unk_token");
  for (const auto& a : p.added) {
    v.pieces[static_cast<size_t>(a.id)] = a.content;
    v.types[static_cast<size_t>(a.id)] = a.special ? SpmPieceType::kControl : SpmPieceType::kUserDefined;
  }
  if (!unk.empty()) {
    v.unk_id = find_id(p, unk);
    if (v.unk_id >= 0) v.types[static_cast<size_t>(v.unk_id)] = SpmPieceType::kUnknown;
  }

  // Where the dummy prefix "▁" comes from: a Metaspace pre-tokenizer, or a Prepend normalizer; spaces must
  // become "▁" (Metaspace, or a Replace normalizer).
  bool metaspace = false, prepend = false, replace = false;
  std::vector<const Json*> norms, pres;
  if (const Json* nz = member(p.root, "normalizer")) flatten(*nz, "normalizers", norms);
  if (const Json* pt = member(p.root, "pre_tokenizer")) flatten(*pt, "pretokenizers", pres);
  for (const Json* nz : norms) {
    const std::string t = type_of(*nz);
    if (t == "Prepend" && str_or(*nz, "prepend") == kSpaceSymbol) {
      prepend = true;
    } else if (t == "Replace") {
      const Json* pat = member(*nz, "pattern");
      if (!pat || str_or(*pat, "String") != " " || str_or(*nz, "content") != kSpaceSymbol)
        return fail(p, "normalizer Replace other than ' ' -> '\xE2\x96\x81' is not supported");
      replace = true;
    } else {
      return fail(p, "normalizer '" + t + "' is not supported for SentencePiece-style BPE");
    }
  }
  v.add_dummy_prefix = prepend;
  v.dummy_prefix_every_fragment = true;  // a normalizer runs on every fragment between added tokens
  v.dummy_prefix_unless_space = false;
  for (const Json* pt : pres) {
    const std::string t = type_of(*pt);
    if (t != "Metaspace")
      return fail(
          p, "pre_tokenizer '" + t + "' is not supported for SentencePiece-style BPE (tern reads Metaspace)");
    if (str_or(*pt, "replacement", std::string(kSpaceSymbol)) != kSpaceSymbol)
      return fail(p, "pre_tokenizer Metaspace with a replacement other than '\xE2\x96\x81' is not supported");
    if (bool_or(*pt, "split", false))
      return fail(p, "pre_tokenizer Metaspace with split=true is not supported");
    metaspace = true;
    std::string scheme = str_or(*pt, "prepend_scheme");
    if (scheme.empty()) scheme = bool_or(*pt, "add_prefix_space", true) ? "always" : "never";
    if (scheme != "first" && scheme != "always" && scheme != "never")
      return fail(p, "pre_tokenizer Metaspace prepend_scheme '" + scheme + "' is not supported");
    v.add_dummy_prefix = scheme != "never";
    v.dummy_prefix_every_fragment = scheme == "always";
    v.dummy_prefix_unless_space = true;
  }
  if (!metaspace && !replace)
    return fail(
        p,
        "SentencePiece-style BPE needs spaces turned into '\xE2\x96\x81' (a Metaspace pre-tokenizer or a "
        "Replace normalizer)");

  auto sp = read_specials(p, "<s>", "</s>");
  if (!sp) return sp.status();
  v.bos_id = sp->bos;
  v.eos_id = sp->eos;
  v.add_bos = sp->add_bos;
  v.add_eos = sp->add_eos;
  return v;
}

Result<std::unique_ptr<Tokenizer>> make_sentencepiece(const Parsed& p) {
  auto v = sentencepiece_vocab(p);
  if (!v) return v.status();
  auto tok = SpmTokenizer::create(std::move(v.value()), p.source);
  if (!tok) return tok.status();
  return std::unique_ptr<Tokenizer>(std::move(tok.value()));
}

bool has_type(const Json* component, const char* list_key, const char* type) {
  if (!component) return false;
  std::vector<const Json*> parts;
  flatten(*component, list_key, parts);
  return std::any_of(parts.begin(), parts.end(), [&](const Json* j) { return type_of(*j) == type; });
}

std::string read_text(const std::string& path, bool& ok) {
  std::ifstream f(path, std::ios::binary);
  ok = static_cast<bool>(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}


Status parse_files(Parsed& p, const std::string& json, const std::string& config, const std::string& source) {
  p.source = source;
  p.root = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (p.root.is_discarded() || !p.root.is_object())
    return fail(p, "not valid JSON (expected a tokenizer.json object)");
  if (!config.empty()) {
    p.config = Json::parse(config, nullptr, false);
    if (p.config.is_discarded() || !p.config.is_object())
      return fail(p, "the tokenizer_config.json beside it is not a valid JSON object");
  }
  return read_model(p);
}

enum class Kind { kByteLevel, kSentencePiece };

Result<Kind> kind_of(const Parsed& p) {
  const Json* pre = member(p.root, "pre_tokenizer");
  const Json* norm = member(p.root, "normalizer");
  if (has_type(pre, "pretokenizers", "ByteLevel")) return Kind::kByteLevel;
  if (has_type(pre, "pretokenizers", "Metaspace") || has_type(norm, "normalizers", "Replace") ||
      bool_or(*p.model, "byte_fallback", false))
    return Kind::kSentencePiece;
  return fail(p,
              "a BPE model that is neither byte-level (ByteLevel pre-tokenizer) nor SentencePiece-style "
              "(Metaspace pre-tokenizer or Replace normalizer) is not supported");
}

// ---------------------------------------------------------------------------------------------------------
// tokenizer.json -> GGUF tokenizer.ggml.* metadata.

GgufValue gv_string(std::string s) {
  GgufValue v;
  v.type = GgufType::STRING;
  v.str = std::move(s);
  return v;
}
GgufValue gv_u32(uint32_t x) {
  GgufValue v;
  v.type = GgufType::UINT32;
  v.u = x;
  return v;
}
GgufValue gv_bool(bool b) {
  GgufValue v;
  v.type = GgufType::BOOL;
  v.u = b ? 1 : 0;
  return v;
}
GgufValue gv_array(GgufType elem, std::vector<GgufValue> items) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = elem;
  v.arr = std::move(items);
  return v;
}

// Token strings (an id no entry names becomes "[PAD<id>]", as llama.cpp's converter writes it) and types.
void put_tokens(TokenizerGgufMetadata& out, const std::vector<std::string>& tokens,
                const std::vector<SpmPieceType>& types) {
  std::vector<GgufValue> t, ty;
  t.reserve(tokens.size());
  ty.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    t.push_back(gv_string(tokens[i].empty() && types[i] == SpmPieceType::kUnused ? "[PAD" + std::to_string(i) + "]"
                                                                                : tokens[i]));
    GgufValue e;
    e.type = GgufType::INT32;
    e.i = static_cast<int64_t>(types[i]);
    ty.push_back(e);
  }
  out.kv.emplace_back("tokenizer.ggml.tokens", gv_array(GgufType::STRING, std::move(t)));
  out.kv.emplace_back("tokenizer.ggml.token_type", gv_array(GgufType::INT32, std::move(ty)));
  out.n_tokens = static_cast<int>(tokens.size());
}

void put_specials(TokenizerGgufMetadata& out, const Parsed& p, int bos, int eos, int unk, bool add_bos,
                  bool add_eos) {
  if (bos >= 0) out.kv.emplace_back("tokenizer.ggml.bos_token_id", gv_u32(static_cast<uint32_t>(bos)));
  if (eos >= 0) out.kv.emplace_back("tokenizer.ggml.eos_token_id", gv_u32(static_cast<uint32_t>(eos)));
  if (unk >= 0) out.kv.emplace_back("tokenizer.ggml.unknown_token_id", gv_u32(static_cast<uint32_t>(unk)));
  if (auto pad = config_token(p.config, "pad_token"))
    if (int id = find_id(p, *pad); id >= 0)
      out.kv.emplace_back("tokenizer.ggml.padding_token_id", gv_u32(static_cast<uint32_t>(id)));
  out.kv.emplace_back("tokenizer.ggml.add_bos_token", gv_bool(add_bos));
  out.kv.emplace_back("tokenizer.ggml.add_eos_token", gv_bool(add_eos));
}

// tokenizer_config.json's chat_template: a string, or a list of {"name", "template"} (the "default" one is
// tokenizer.chat_template, the others tokenizer.chat_template.<name>, as llama.cpp's converter names them).
void put_chat_template(TokenizerGgufMetadata& out, const Parsed& p) {
  const Json* ct = member(p.config, "chat_template");
  if (!ct) return;
  if (ct->is_string()) {
    out.kv.emplace_back("tokenizer.chat_template", gv_string(ct->get<std::string>()));
  } else if (ct->is_array()) {
    for (const Json& e : *ct) {
      const std::string name = str_or(e, "name"), tmpl = str_or(e, "template");
      if (name.empty() || tmpl.empty()) continue;
      out.kv.emplace_back(name == "default" ? "tokenizer.chat_template" : "tokenizer.chat_template." + name,
                          gv_string(tmpl));
    }
  }
}

// The tokenizer.ggml.pre name whose regexes (as llama.cpp applies them: gguf_pre()) split text as this
// tokenizer.json's pre-tokenizer chain does.
Result<std::string> pre_name(const Parsed& p, const BpeVocab& v) {
  struct Known {
    const char* name;
    std::vector<std::string> patterns;
    bool ignore_merges;
  };
  const Known known[] = {
      {"llama-bpe", {kLlama3Pattern}, true},
      {"qwen2", {kQwen2Pattern}, false},
      {"smollm", {R"(\p{N})", kGpt2Pattern}, false},
      {"gpt-2", {kGpt2Pattern}, false},
  };
  for (const Known& k : known)
    if (v.pre_patterns == k.patterns && v.ignore_merges == k.ignore_merges) return std::string(k.name);
  return fail(p, "its pre-tokenizer (" + std::to_string(v.pre_patterns.size()) + " regex(es)" +
                     (v.ignore_merges ? ", ignore_merges" : "") +
                     ") matches none of the tokenizer.ggml.pre names tern writes (llama-bpe, qwen2, smollm, "
                     "gpt-2)");
}

Result<TokenizerGgufMetadata> byte_level_metadata(const Parsed& p) {
  auto vr = byte_level_vocab(p);
  if (!vr) return vr.status();
  const BpeVocab& v = vr.value();
  auto pre = pre_name(p, v);
  if (!pre) return pre.status();
  TokenizerGgufMetadata out;
  // GGUF has no normalizer key and llama.cpp applies none (its converter drops Qwen2's NFC, for one).
  if (v.normalization != Normalization::kNone)
    out.notes.push_back(std::string("the ") + normalization_name(v.normalization) +
                        " normalizer is not kept (GGUF has none): text not already in that form tokenizes "
                        "differently, as in llama.cpp");
  out.kv.emplace_back("tokenizer.ggml.model", gv_string("gpt2"));
  out.kv.emplace_back("tokenizer.ggml.pre", gv_string(pre.value()));
  put_tokens(out, v.tokens, v.types);
  std::vector<GgufValue> merges;
  merges.reserve(v.merges.size());
  for (const auto& [a, b] : v.merges) merges.push_back(gv_string(a + " " + b));
  out.kv.emplace_back("tokenizer.ggml.merges", gv_array(GgufType::STRING, std::move(merges)));
  put_specials(out, p, v.bos_id, v.eos_id, -1, v.add_bos, v.add_eos);
  put_chat_template(out, p);
  for (const auto& a : p.added)
    if (a.lstrip || a.rstrip) {
      out.notes.push_back("added tokens with lstrip/rstrip (e.g. '" + a.content +
                          "') match without the neighbouring whitespace in GGUF");
      break;
    }
  return out;
}

Result<TokenizerGgufMetadata> sentencepiece_metadata(const Parsed& p) {
  auto vr = sentencepiece_vocab(p);
  if (!vr) return vr.status();
  const SpmVocab& v = vr.value();
  TokenizerGgufMetadata out;
  out.kv.emplace_back("tokenizer.ggml.model", gv_string("llama"));
  put_tokens(out, v.pieces, v.types);
  std::vector<GgufValue> scores;
  scores.reserve(v.scores.size());
  for (float sc : v.scores) {
    GgufValue e;
    e.type = GgufType::FLOAT32;
    e.f = sc;
    scores.push_back(e);
  }
  out.kv.emplace_back("tokenizer.ggml.scores", gv_array(GgufType::FLOAT32, std::move(scores)));
  put_specials(out, p, v.bos_id, v.eos_id, v.unk_id, v.add_bos, v.add_eos);
  out.kv.emplace_back("tokenizer.ggml.add_space_prefix", gv_bool(v.add_dummy_prefix));
  put_chat_template(out, p);
  if (v.add_dummy_prefix && (v.dummy_prefix_unless_space || !v.dummy_prefix_every_fragment))
    out.notes.push_back(
        "tokenizer.json's Metaspace adds the '\xE2\x96\x81' prefix only at the start and not before a space; "
        "GGUF's llama tokenizer adds it as sentencepiece does (also before a leading space and after each "
        "special token)");
  return out;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> parse_tokenizer_json(const std::string& json, const std::string& config,
                                                        const std::string& source) {
  Parsed p;
  TERN_TRY(parse_files(p, json, config, source));
  auto kind = kind_of(p);
  if (!kind) return kind.status();
  return kind.value() == Kind::kByteLevel ? make_byte_level(p) : make_sentencepiece(p);
}

Result<TokenizerGgufMetadata> tokenizer_json_gguf_metadata(const std::string& json, const std::string& config,
                                                           const std::string& source) {
  Parsed p;
  TERN_TRY(parse_files(p, json, config, source));
  auto kind = kind_of(p);
  if (!kind) return kind.status();
  return kind.value() == Kind::kByteLevel ? byte_level_metadata(p) : sentencepiece_metadata(p);
}

namespace {

// tokenizer.json's text and that of the tokenizer_config.json beside it ("" when there is none).
Status read_json_files(const std::string& path, std::string& json, std::string& config) {
  bool ok = false;
  json = read_text(path, ok);
  if (!ok) return error(path + ": cannot open");
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const std::string config_path = dir + "/tokenizer_config.json";
  struct stat st {};
  if (::stat(config_path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    config = read_text(config_path, ok);
    if (!ok) return error(config_path + ": cannot open");
  }
  return Status();
}

}  // namespace

Result<TokenizerGgufMetadata> load_tokenizer_json_gguf_metadata(const std::string& path) {
  std::string json, config;
  TERN_TRY(read_json_files(path, json, config));
  return tokenizer_json_gguf_metadata(json, config, path);
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer_json(const std::string& path) {
  std::string json, config;
  TERN_TRY(read_json_files(path, json, config));
  return parse_tokenizer_json(json, config, path);
}

}  // namespace tern
