// Added and special tokens written in text ("<|im_start|>", "<s>", "<think>"): found before the text is
// normalised or pre-tokenized, and emitted as their own ids. Tokens marked special are matched only when the
// caller asks (Tokenizer::encode's parse_special, `tern tokenize --special`); the others (Hugging Face added
// tokens with "special": false, GGUF user-defined tokens) always are, as the reference libraries do.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tern {

class SpecialTokenMatcher {
 public:
  struct Fragment {
    size_t offset = 0;      // byte offset of the fragment in the text
    std::string_view text;  // the text of a plain fragment, or the matched token's text
    int id = -1;            // >= 0: an added/special token; -1: plain text to tokenize
  };

  // `lstrip` / `rstrip`: whitespace to the left / right of a match belongs to it (Hugging Face's flags).
  // A text added twice keeps its first id.
  void add(std::string text, int id, bool special, bool lstrip = false, bool rstrip = false);
  bool empty() const { return tokens_.empty(); }
  size_t size() const { return tokens_.size(); }

  // Splits `text` into plain fragments and tokens, scanning left to right and taking the longest token that
  // starts at each position (Hugging Face's leftmost-longest). Empty plain fragments are left out.
  void split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

 private:
  struct Token {
    std::string text;
    int id;
    bool special, lstrip, rstrip;
  };
  std::vector<Token> tokens_;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, size_t, Hash, std::equal_to<>> index_;  // text -> position in tokens_
  // For each first byte, the distinct lengths of the tokens starting with it, longest first.
  std::array<std::vector<size_t>, 256> lengths_;
};

}  // namespace tern
