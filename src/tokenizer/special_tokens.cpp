#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace tern {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

void SpecialTokenMatcher::add(std::string text, int id, bool special, bool lstrip, bool rstrip) {
  if (text.empty() || index_.count(text)) return;
  std::vector<size_t>& lens = lengths_[static_cast<unsigned char>(text[0])];
  if (std::find(lens.begin(), lens.end(), text.size()) == lens.end()) {
    lens.push_back(text.size());
    std::sort(lens.begin(), lens.end(), std::greater<>());
  }
  index_.emplace(text, tokens_.size());
  tokens_.push_back({std::move(text), id, special, lstrip, rstrip});
}

void SpecialTokenMatcher::split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const {
  const size_t n = text.size();
  size_t plain = 0;  // start of the pending plain fragment
  for (size_t i = 0; i < n;) {
    const Token* hit = nullptr;
    for (size_t len : lengths_[static_cast<unsigned char>(text[i])]) {
      if (len > n - i) continue;
      auto it = index_.find(text.substr(i, len));
      if (it == index_.end()) continue;
      const Token& t = tokens_[it->second];
      if (t.special && !parse_special) continue;
      hit = &t;
      break;
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t start = i;
    size_t stop = i + hit->text.size();
    if (hit->lstrip)
      while (start > plain && is_space(text[start - 1])) --start;
    if (hit->rstrip)
      while (stop < n && is_space(text[stop])) ++stop;
    if (start > plain) out.push_back({plain, text.substr(plain, start - plain), -1});
    out.push_back({start, text.substr(start, stop - start), hit->id});
    plain = i = stop;
  }
  if (plain < n) out.push_back({plain, text.substr(plain), -1});
}

}  // namespace tern
