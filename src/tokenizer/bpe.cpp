#include "tokenizer/bpe.h"

#include <algorithm>
#include <queue>

namespace tern {

namespace {

struct ByteMap {
  std::array<std::string, 256> spelled;
  std::array<int16_t, 512> byte_of;  // by code point; -1 where the map has no entry (all are below 0x144)

  ByteMap() {
    byte_of.fill(-1);
    auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); };
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const int cp = printable(b) ? b : next++;
      // Every code point here is below U+0800: one or two UTF-8 bytes.
      std::string& s = spelled[static_cast<size_t>(b)];
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      byte_of[static_cast<size_t>(cp)] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

// Decodes one well-formed UTF-8 character at s[i..), advancing i; returns -1 (and advances one byte) when the
// bytes there are not one.
int32_t next_code_point(std::string_view s, size_t& i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t len = utf8_valid_char_len(p + i, s.size() - i);
  if (len == 0) {
    ++i;
    return -1;
  }
  int32_t cp = len == 1 ? p[i] : len == 2 ? p[i] & 0x1F : len == 3 ? p[i] & 0x0F : p[i] & 0x07;
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
  i += len;
  return cp;
}

// The bytes a spelled token stands for; a token with a character outside the byte map is taken as raw text
// (what Hugging Face's ByteLevel decoder does).
std::string unspell(std::string_view spelled) {
  std::string out;
  out.reserve(spelled.size());
  for (size_t i = 0; i < spelled.size();) {
    const int32_t cp = next_code_point(spelled, i);
    const int b = cp < 0 ? -1 : gpt2_unicode_to_byte(static_cast<uint32_t>(cp));
    if (b < 0) return std::string(spelled);
    out.push_back(static_cast<char>(b));
  }
  return out;
}

bool is_special_type(SpmPieceType t) {
  return t == SpmPieceType::kControl || t == SpmPieceType::kUnknown;
}

}  // namespace

const std::string& gpt2_byte_to_unicode(uint8_t b) {
  return byte_map().spelled[b];
}

int gpt2_unicode_to_byte(uint32_t cp) {
  return cp < 512 ? byte_map().byte_of[cp] : -1;
}

std::string gpt2_spell(std::string_view bytes) {
  const ByteMap& m = byte_map();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += m.spelled[static_cast<unsigned char>(c)];
  return out;
}

// ---------------------------------------------------------------------------------------------------------

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::create(BpeVocab v, const std::string& source) {
  auto fail = [&](const std::string& msg) { return error(source + ": " + msg); };
  const size_t n = v.tokens.size();
  if (n == 0) return fail("the vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX)) return fail("too many tokens (" + std::to_string(n) + ")");
  if (v.types.size() != n)
    return fail("the vocabulary has " + std::to_string(n) + " tokens but " + std::to_string(v.types.size()) +
                " token types");
  const int n_int = static_cast<int>(n);
  auto in_range = [&](int id) { return id >= -1 && id < n_int; };
  for (auto [name, id] :
       {std::pair<const char*, int>{"BOS", v.bos_id}, {"EOS", v.eos_id}, {"unknown", v.unk_id}}) {
    if (!in_range(id))
      return fail(std::string(name) + " token id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(n) + " tokens");
  }
  for (size_t i = 0; i < n; ++i) {
    const auto t = static_cast<int>(v.types[i]);
    if (t < 1 || t > 6) return fail("token " + std::to_string(i) + " has unknown type " + std::to_string(t));
  }
  for (const BpeAddedToken& a : v.added) {
    if (a.id < 0 || a.id >= n_int)
      return fail("added token '" + a.text + "' has id " + std::to_string(a.id) +
                  ", outside the vocabulary of " + std::to_string(n) + " tokens");
    if (a.text.empty()) return fail("added token " + std::to_string(a.id) + " has empty text");
  }
  for (int id : v.eog_ids)
    if (id < 0 || id >= n_int)
      return fail("end-of-generation token id " + std::to_string(id) + " is out of range");

  auto pre = PreTokenizer::create(v.pre_patterns, v.normalization, source);
  if (!pre) return pre.status();
  std::unique_ptr<BpeTokenizer> tok(new BpeTokenizer(std::move(v), std::move(pre.value())));

  // Merges: both parts and the result must be tokens (Hugging Face refuses such files too).
  const auto& merges = tok->v_.merges;
  tok->merges_.reserve(merges.size());
  std::string joined;
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    joined.assign(a).append(b);
    const int ia = tok->token_id(a);
    const int ib = tok->token_id(b);
    const int im = tok->token_id(joined);
    const char* missing = ia < 0   ? "its left part"
                          : ib < 0 ? "its right part"
                          : im < 0 ? "its result"
                                   : nullptr;
    if (missing)
      return fail("merge " + std::to_string(r) + " ('" + a + "' '" + b + "'): " + missing +
                  " is not a token");
    // A pair listed twice keeps its first (lowest) rank.
    tok->merges_.emplace(pair_key(ia, ib), Merge{static_cast<int32_t>(r), im});
  }
  return tok;
}

BpeTokenizer::BpeTokenizer(BpeVocab vocab, PreTokenizer pre) : v_(std::move(vocab)), pre_(std::move(pre)) {
  const size_t n = v_.tokens.size();
  ids_.reserve(n);
  for (size_t i = 0; i < n; ++i)
    if (!v_.tokens[i].empty()) ids_.emplace(std::string_view(v_.tokens[i]), static_cast<int>(i));

  byte_ids_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    auto it = ids_.find(gpt2_byte_to_unicode(static_cast<uint8_t>(b)));
    if (it != ids_.end() && v_.types[static_cast<size_t>(it->second)] == SpmPieceType::kNormal)
      byte_ids_[static_cast<size_t>(b)] = it->second;
  }

  std::vector<bool> is_added(n, false);
  for (const BpeAddedToken& a : v_.added) {
    added_.add(a.text, a.id, a.special, a.lstrip, a.rstrip);
    is_added[static_cast<size_t>(a.id)] = true;
  }

  surface_.resize(n);
  eog_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const SpmPieceType t = v_.types[i];
    const bool plain = is_added[i] || t == SpmPieceType::kControl || t == SpmPieceType::kUserDefined ||
                       t == SpmPieceType::kUnknown;
    surface_[i] = plain ? v_.tokens[i] : unspell(v_.tokens[i]);
    if (plain && is_end_of_generation_text(v_.tokens[i])) eog_[i] = 1;
  }
  if (v_.eos_id >= 0) eog_[static_cast<size_t>(v_.eos_id)] = 1;
  for (int id : v_.eog_ids) eog_[static_cast<size_t>(id)] = 1;
}

int BpeTokenizer::token_id(std::string_view piece) const {
  auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

bool BpeTokenizer::is_special(int token) const {
  return token >= 0 && token < vocab_size() && is_special_type(type(token));
}

bool BpeTokenizer::is_eog(int token) const {
  return token >= 0 && token < vocab_size() && eog_[token];
}

std::string BpeTokenizer::piece(int token) const {
  if (token < 0 || token >= vocab_size()) return {};
  return v_.tokens[static_cast<size_t>(token)];
}

std::string BpeTokenizer::decode_piece(int /*prev*/, int token, bool special) const {
  if (token < 0 || token >= vocab_size()) return {};
  if (!special && is_special_type(type(token))) return {};
  return surface_[static_cast<size_t>(token)];
}

// ---------------------------------------------------------------------------------------------------------

struct BpeTokenizer::Scratch {
  std::string work;
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  struct Symbol {
    int32_t id;  // -1 once merged into its left neighbour
    int32_t prev, next;
  };
  std::vector<Symbol> syms;
  struct Candidate {
    int32_t rank, left, right, left_id, right_id, merged;
  };
  std::vector<Candidate> heap;
  std::string spelled;
  std::vector<SpecialTokenMatcher::Fragment> fragments;
};

std::vector<int> BpeTokenizer::encode(std::string_view text, bool add_bos, bool add_eos,
                                      bool parse_special) const {
  std::vector<int> out;
  if (add_bos && v_.bos_id >= 0) out.push_back(v_.bos_id);
  Scratch s;
  added_.split(text, parse_special, s.fragments);
  for (const auto& f : s.fragments) {
    if (f.id >= 0)
      out.push_back(f.id);
    else
      encode_text(f.text, s, out);
  }
  if (add_eos && v_.eos_id >= 0) out.push_back(v_.eos_id);
  return out;
}

void BpeTokenizer::encode_text(std::string_view text, Scratch& s, std::vector<int>& out) const {
  s.pieces.clear();
  const std::string_view t = pre_.split(text, s.work, s.pieces);
  out.reserve(out.size() + t.size() / 3);
  for (const auto& [a, b] : s.pieces) encode_word(t.substr(a, b - a), s, out);
}

void BpeTokenizer::encode_word(std::string_view bytes, Scratch& s, std::vector<int>& out) const {
  if (bytes.empty()) return;
  if (v_.ignore_merges) {
    s.spelled = gpt2_spell(bytes);
    auto it = ids_.find(s.spelled);
    if (it != ids_.end() && type(it->second) == SpmPieceType::kNormal) {
      out.push_back(it->second);
      return;
    }
  }
  auto& syms = s.syms;
  syms.clear();
  for (char c : bytes) {
    int id = byte_ids_[static_cast<unsigned char>(c)];
    if (id < 0) id = v_.unk_id;
    if (id < 0) continue;  // no token for this byte and no unknown token: dropped, as Hugging Face does
    const auto i = static_cast<int32_t>(syms.size());
    syms.push_back({id, i - 1, i + 1});
  }
  if (syms.empty()) return;
  syms.back().next = -1;
  if (syms.size() == 1) {
    out.push_back(syms[0].id);
    return;
  }

  // Lowest rank first, then leftmost. An entry is stale once either symbol changed (merged away, or grown
  // into another token): checked by comparing the ids it was made from.
  using Candidate = Scratch::Candidate;
  auto worse = [](const Candidate& a, const Candidate& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  };
  auto& heap = s.heap;
  heap.clear();
  auto consider = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    auto it = merges_.find(pair_key(syms[l].id, syms[r].id));
    if (it == merges_.end()) return;
    heap.push_back({it->second.rank, l, r, syms[l].id, syms[r].id, it->second.id});
    std::push_heap(heap.begin(), heap.end(), worse);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) consider(i, i + 1);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    const Candidate c = heap.back();
    heap.pop_back();
    auto& l = syms[c.left];
    if (l.id != c.left_id || l.next != c.right || syms[c.right].id != c.right_id) continue;
    auto& r = syms[c.right];
    l.id = c.merged;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    r.id = -1;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

}  // namespace tern
