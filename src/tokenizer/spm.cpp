#include "tokenizer/spm.h"
#include "tokenizer/pretokenize.h"

#include <algorithm>
#include <cmath>
#include <queue>

namespace tern {

namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space
// What sentencepiece decodes the unknown piece to (" ⁇ ", U+2047), so unknown text stays visible.
constexpr std::string_view kUnknownSurface = " \xE2\x81\x87 ";

// Length of the UTF-8 character at s[0..n), or 1 for a byte that does not start a well-formed sequence.
// Treating a stray byte as a one-byte character sends it to byte fallback, so invalid input still round-trips.
size_t utf8_char_len(const unsigned char* s, size_t n) {
  const size_t len = utf8_valid_char_len(s, n);
  return len ? len : 1;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The byte a "<0xXX>" piece stands for, or -1.
int parse_byte_piece(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  const int hi = hex_digit(p[3]);
  const int lo = hex_digit(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(s.substr(pos, hit - pos));
    out.append(to);
  }
  out.append(s.substr(pos));
  return out;
}

}  // namespace

const char* spm_piece_type_name(SpmPieceType t) {
  switch (t) {
    case SpmPieceType::kNormal: return "normal";
    case SpmPieceType::kUnknown: return "unknown";
    case SpmPieceType::kControl: return "control";
    case SpmPieceType::kUserDefined: return "user-defined";
    case SpmPieceType::kUnused: return "unused";
    case SpmPieceType::kByte: return "byte";
  }
  return "?";
}

std::vector<SpmPieceType> spm_infer_types(const std::vector<std::string>& pieces, int unk_id, int bos_id,
                                          int eos_id) {
  std::vector<SpmPieceType> types(pieces.size(), SpmPieceType::kNormal);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const int id = static_cast<int>(i);
    if (id == unk_id)
      types[i] = SpmPieceType::kUnknown;
    else if (id == bos_id || id == eos_id)
      types[i] = SpmPieceType::kControl;
    else if (parse_byte_piece(pieces[i]) >= 0)
      types[i] = SpmPieceType::kByte;
  }
  return types;
}

struct SpmTokenizer::Symbol {
  uint32_t start = 0;  // byte range in the normalized text; len == 0 once merged into its left neighbour
  uint32_t len = 0;
  int32_t prev = -1;  // linked list over live symbols
  int32_t next = -1;
  bool freeze = false;  // user-defined pieces never merge further
};

Result<std::unique_ptr<SpmTokenizer>> SpmTokenizer::create(SpmVocab vocab, const std::string& source) {
  auto fail = [&](const std::string& msg) { return error(source + ": " + msg); };
  const size_t n = vocab.pieces.size();
  if (n == 0) return fail("the vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX)) return fail("too many tokens (" + std::to_string(n) + ")");
  if (vocab.scores.size() != n)
    return fail("the vocabulary has " + std::to_string(n) + " pieces but " +
                std::to_string(vocab.scores.size()) + " scores");
  if (vocab.types.size() != n)
    return fail("the vocabulary has " + std::to_string(n) + " pieces but " +
                std::to_string(vocab.types.size()) + " token types");
  const int n_int = static_cast<int>(n);
  for (auto [name, id] :
       {std::pair<const char*, int>{"BOS", vocab.bos_id}, {"EOS", vocab.eos_id}, {"unknown", vocab.unk_id}}) {
    if (id < -1 || id >= n_int)
      return fail(std::string(name) + " token id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(n) + " tokens");
  }
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(vocab.scores[i])) return fail("token " + std::to_string(i) + " has a NaN score");
    const auto t = static_cast<int>(vocab.types[i]);
    if (t < 1 || t > 6) return fail("token " + std::to_string(i) + " has unknown type " + std::to_string(t));
    if (vocab.types[i] == SpmPieceType::kByte && parse_byte_piece(vocab.pieces[i]) < 0)
      return fail("token " + std::to_string(i) + " has type byte but its piece '" + vocab.pieces[i] +
                  "' is not of the form <0xXX>");
  }
  if (vocab.unk_id < 0) {
    auto it = std::find(vocab.types.begin(), vocab.types.end(), SpmPieceType::kUnknown);
    if (it != vocab.types.end()) vocab.unk_id = static_cast<int>(it - vocab.types.begin());
  }
  return std::unique_ptr<SpmTokenizer>(new SpmTokenizer(std::move(vocab)));
}

SpmTokenizer::SpmTokenizer(SpmVocab vocab) : v_(std::move(vocab)) {
  byte_ids_.fill(-1);
  const size_t n = v_.pieces.size();
  mergeable_.reserve(n);
  surface_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = v_.pieces[i];
    const int id = static_cast<int>(i);
    switch (v_.types[i]) {
      case SpmPieceType::kNormal:
      case SpmPieceType::kUserDefined:
      case SpmPieceType::kUnused:
        // First occurrence wins, as a duplicate piece could never be produced under its later id anyway.
        if (!p.empty()) mergeable_.emplace(std::string_view(p), id);
        if (piece_joins_before_space(p)) words_are_independent_ = false;
        if (v_.types[i] == SpmPieceType::kUserDefined)
          max_user_defined_len_ = std::max(max_user_defined_len_, p.size());
        if (v_.types[i] == SpmPieceType::kUnused) has_unused_ = true;
        surface_[i] = replace_all(p, kSpaceSymbol, " ");
        break;
      case SpmPieceType::kByte: {
        const int b = parse_byte_piece(p);
        if (byte_ids_[static_cast<size_t>(b)] < 0) byte_ids_[static_cast<size_t>(b)] = id;
        has_byte_pieces_ = true;
        surface_[i] = std::string(1, static_cast<char>(b));
        break;
      }
      case SpmPieceType::kUnknown: surface_[i] = std::string(kUnknownSurface); break;
      case SpmPieceType::kControl: break;
    }
  }
  piece_ids_.reserve(n);
  eog_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = v_.pieces[i];
    piece_ids_.emplace(std::string_view(p), static_cast<int>(i));
    const SpmPieceType t = v_.types[i];
    if (t == SpmPieceType::kControl || t == SpmPieceType::kUnknown) specials_.add(p, static_cast<int>(i), true);
    if (t == SpmPieceType::kControl && is_end_of_generation_text(p)) eog_[i] = 1;
  }
  if (v_.eos_id >= 0) eog_[static_cast<size_t>(v_.eos_id)] = 1;
}

int SpmTokenizer::token_id(std::string_view piece) const {
  auto it = piece_ids_.find(piece);
  return it == piece_ids_.end() ? -1 : it->second;
}

bool SpmTokenizer::is_special(int token) const {
  return token >= 0 && token < vocab_size() && type(token) == SpmPieceType::kControl;
}

bool SpmTokenizer::is_eog(int token) const { return token >= 0 && token < vocab_size() && eog_[token]; }

bool SpmTokenizer::piece_joins_before_space(std::string_view p) {
  for (size_t k = p.find(kSpaceSymbol, 1); k != std::string_view::npos; k = p.find(kSpaceSymbol, k + 1)) {
    if (k < kSpaceSymbol.size() || p.substr(k - kSpaceSymbol.size(), kSpaceSymbol.size()) != kSpaceSymbol)
      return true;
  }
  return false;
}

int SpmTokenizer::find_mergeable(std::string_view piece) const {
  auto it = mergeable_.find(piece);
  return it == mergeable_.end() ? -1 : it->second;
}

void SpmTokenizer::split(std::string_view text, std::vector<Symbol>& symbols) const {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  symbols.reserve(n);
  for (size_t i = 0; i < n;) {
    Symbol sym;
    sym.start = static_cast<uint32_t>(i);
    for (size_t l = std::min(max_user_defined_len_, n - i); l > 0; --l) {
      const int id = find_mergeable(text.substr(i, l));
      if (id >= 0 && type(id) == SpmPieceType::kUserDefined) {
        sym.len = static_cast<uint32_t>(l);
        sym.freeze = true;
        break;
      }
    }
    if (sym.len == 0) sym.len = static_cast<uint32_t>(utf8_char_len(s + i, n - i));
    i += sym.len;
    const auto index = static_cast<int32_t>(symbols.size());
    sym.prev = index - 1;
    sym.next = i < n ? index + 1 : -1;
    symbols.push_back(sym);
  }
}

void SpmTokenizer::emit(std::string_view piece, const RevMerge& rev_merge, std::vector<int>& out) const {
  const int id = find_mergeable(piece);
  if (id >= 0) {
    // An unused piece may serve as a merge step but is never output: split it back into what made it.
    if (type(id) == SpmPieceType::kUnused) {
      auto it = rev_merge.find(piece);
      if (it != rev_merge.end()) {
        emit(it->second.first, rev_merge, out);
        emit(it->second.second, rev_merge, out);
        return;
      }
    }
    out.push_back(id);
    return;
  }
  if (has_byte_pieces_) {
    for (char c : piece) {
      const int b = byte_ids_[static_cast<unsigned char>(c)];
      if (b >= 0)
        out.push_back(b);
      else if (v_.unk_id >= 0)
        out.push_back(v_.unk_id);
    }
  } else if (v_.unk_id >= 0) {
    out.push_back(v_.unk_id);
  }
}

std::vector<int> SpmTokenizer::encode(std::string_view text, bool add_bos, bool add_eos, bool parse_special) const {
  std::vector<int> out;
  if (add_bos && v_.bos_id >= 0) out.push_back(v_.bos_id);
  std::vector<SpecialTokenMatcher::Fragment> fragments;
  if (parse_special)
    specials_.split(text, true, fragments);
  else
    fragments.push_back({0, text, -1});
  for (const auto& f : fragments) {
    if (f.id >= 0) {
      out.push_back(f.id);
      continue;
    }
    // Hugging Face's Metaspace checks for a leading "▁" after spaces became "▁", so a literal "▁" counts too.
    const bool starts_with_space = !f.text.empty() && (f.text[0] == ' ' || f.text.substr(0, 3) == kSpaceSymbol);
    const bool prefix = v_.add_dummy_prefix && (v_.dummy_prefix_every_fragment || f.offset == 0) &&
                        !(v_.dummy_prefix_unless_space && starts_with_space);
    encode_fragment(f.text, prefix, out);
  }
  if (add_eos && v_.eos_id >= 0) out.push_back(v_.eos_id);
  return out;
}

void SpmTokenizer::encode_fragment(std::string_view text, bool dummy_prefix, std::vector<int>& out) const {
  // Long texts are encoded in chunks, which bounds the symbol array (20 bytes per character) and keeps its
  // offsets within 32 bits. A cut just before a word start (" " after a non-space) changes nothing when
  // words are independent, so those vocabularies use small chunks; otherwise chunks are as large as the
  // offsets allow, and a merge across a cut is lost only in texts of hundreds of MiB.
  const size_t max_chunk = words_are_independent_ ? size_t{1} << 20 : size_t{1} << 28;
  constexpr size_t kCutWindow = size_t{1} << 16;  // how far back to look for a word start
  bool first = true;
  while (text.size() > max_chunk) {
    size_t cut = 0;
    for (size_t k = max_chunk; k > max_chunk - kCutWindow; --k) {
      // A literal "▁" before the space would join it like a space does, so that is no word start.
      if (text[k] == ' ' && text[k - 1] != ' ' &&
          text.substr(k - kSpaceSymbol.size(), kSpaceSymbol.size()) != kSpaceSymbol) {
        cut = k;
        break;
      }
    }
    if (cut == 0) {  // no word start nearby: cut at a character boundary
      cut = max_chunk;
      while (cut > max_chunk - 4 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    }
    encode_chunk(text.substr(0, cut), first && dummy_prefix, out);
    text.remove_prefix(cut);
    first = false;
  }
  encode_chunk(text, first && dummy_prefix, out);
}

void SpmTokenizer::encode_chunk(std::string_view text, bool dummy_prefix, std::vector<int>& out) const {
  if (!text.empty()) {
    std::string norm;
    norm.reserve(text.size() + kSpaceSymbol.size() * (1 + std::count(text.begin(), text.end(), ' ')));
    if (dummy_prefix) norm.append(kSpaceSymbol);
    for (char c : text) {
      if (c == ' ')
        norm.append(kSpaceSymbol);
      else
        norm.push_back(c);
    }

    std::vector<Symbol> sym;
    split(norm, sym);

    // Candidate merges, best first: highest score, then leftmost. An entry names only its left symbol and
    // the merged length: it is stale once the left symbol was absorbed (len 0) or either side grew (the
    // lengths only grow, so the sum with the current right neighbour no longer matches), and is skipped.
    // Entries are kept at 12 bytes because without word independence the heap holds about one entry per
    // character of the whole text.
    struct Candidate {
      float score;
      int32_t left;
      uint32_t len;
    };
    auto worse = [](const Candidate& a, const Candidate& b) {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    };
    RevMerge rev_merge;
    auto candidate = [&](int32_t left, int32_t right, Candidate& c) {
      if (left < 0 || right < 0) return false;
      const Symbol& l = sym[static_cast<size_t>(left)];
      const Symbol& r = sym[static_cast<size_t>(right)];
      if (l.freeze || r.freeze) return false;
      const std::string_view merged(norm.data() + l.start, size_t{l.len} + r.len);
      const int id = find_mergeable(merged);
      if (id < 0) return false;
      c = {v_.scores[static_cast<size_t>(id)], left, static_cast<uint32_t>(merged.size())};
      if (has_unused_ && type(id) == SpmPieceType::kUnused)
        rev_merge[merged] = {std::string_view(norm.data() + l.start, l.len),
                             std::string_view(norm.data() + r.start, r.len)};
      return true;
    };

    std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> agenda(worse);
    Candidate c{};
    auto merge_range = [&](int32_t begin, int32_t end) {
      for (int32_t i = begin + 1; i < end; ++i)
        if (candidate(i - 1, i, c)) agenda.push(c);
      while (!agenda.empty()) {
        const Candidate top = agenda.top();
        agenda.pop();
        Symbol& l = sym[static_cast<size_t>(top.left)];
        if (l.len == 0 || l.next < 0) continue;
        Symbol& r = sym[static_cast<size_t>(l.next)];
        if (l.len + r.len != top.len) continue;
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = top.left;
        if (candidate(l.prev, top.left, c)) agenda.push(c);
        if (candidate(top.left, l.next, c)) agenda.push(c);
      }
    };

    // Where no piece joins another character to a following "▁" (checked when the vocabulary is built),
    // no merge can cross the start of a word, so each word is merged on its own: the same result as one
    // pass over the whole text, with a heap that stays small and in cache.
    const auto n_sym = static_cast<int32_t>(sym.size());
    auto is_space = [&](int32_t i) {
      const Symbol& s = sym[static_cast<size_t>(i)];
      return s.len == kSpaceSymbol.size() && norm.compare(s.start, s.len, kSpaceSymbol) == 0;
    };
    int32_t word = 0;
    if (words_are_independent_) {
      for (int32_t i = 1; i < n_sym; ++i) {
        if (is_space(i) && !is_space(i - 1)) {
          merge_range(word, i);
          word = i;
        }
      }
    }
    merge_range(word, n_sym);

    out.reserve(out.size() + sym.size() + 1);
    for (int32_t i = 0; i >= 0; i = sym[static_cast<size_t>(i)].next) {
      const Symbol& s = sym[static_cast<size_t>(i)];
      emit(std::string_view(norm.data() + s.start, s.len), rev_merge, out);
    }
  }
}

std::string SpmTokenizer::decode_piece(int prev, int token, bool special) const {
  if (token < 0 || token >= vocab_size()) return {};
  const SpmPieceType t = type(token);
  if (special && t == SpmPieceType::kControl) return v_.pieces[static_cast<size_t>(token)];
  const std::string& s = surface_[static_cast<size_t>(token)];
  // The first piece after BOS carries the dummy prefix "▁" that encode added; dropping it gives the text
  // back exactly. Byte and unknown pieces never carry it.
  const bool strip = prev >= 0 && prev == v_.bos_id && v_.add_dummy_prefix && !s.empty() && s[0] == ' ' &&
                     t != SpmPieceType::kByte && t != SpmPieceType::kUnknown;
  return strip ? s.substr(1) : s;
}

std::string SpmTokenizer::piece(int token) const {
  if (token < 0 || token >= vocab_size()) return {};
  return v_.pieces[static_cast<size_t>(token)];
}

}  // namespace tern
