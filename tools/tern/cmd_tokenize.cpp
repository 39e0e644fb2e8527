// tern tokenize: text -> token ids on one line.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "tokenizer/tokenizer.h"

namespace tern::cli {

int cmd_tokenize(const Args& a) {
  if (!a.has("model")) return fail("tokenize", "--model (-m) is required");
  if (a.has("prompt") && a.has("file")) return fail("tokenize", "give either --prompt or --file, not both");
  std::string text = a.str("prompt");
  if (a.has("file")) {
    std::ifstream f(a.str("file"), std::ios::binary);
    if (!f) return fail("tokenize", "--file: cannot open '" + a.str("file") + "'");
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  auto tok = load_tokenizer(a.str("model"));
  if (!tok) return fail("tokenize", tok.message());
  const Tokenizer& t = *tok.value();
  const std::vector<int> ids = t.encode(text, t.add_bos_by_default() && !a.flag("no-bos"), /*add_eos=*/false,
                                        /*parse_special=*/a.flag("special"));
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
  std::printf("%s\n", line.c_str());
  return 0;
}

}  // namespace tern::cli
