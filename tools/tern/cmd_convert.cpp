// tern convert IN OUT [--type f32|f16|bf16]: write any model tern reads (Hugging Face folder, GGUF, llama2.c)
// as a GGUF llama file (the library does the work: formats/convert.h).
#include <cstdio>

#include "commands.h"
#include "core/quant.h"
#include "formats/convert.h"
#include "formats/model_file.h"

namespace tern::cli {

int cmd_convert(const Args& a) {
  const auto& pos = a.positional();
  if (pos.size() != 2) return fail("convert", "expected IN OUT, got " + std::to_string(pos.size()) + " argument(s)");
  const std::string &in = pos[0], &out = pos[1];
  ConvertOptions opt;
  if (a.has("type")) {
    auto t = dtype_from_name(a.str("type"));
    if (!t || (*t != DType::F32 && *t != DType::F16 && *t != DType::BF16))
      return fail("convert", "--type: '" + a.str("type") + "' is not one of f32, f16, bf16");
    opt.type = *t;
  }
  auto m = load_model_file(in);
  if (!m) return fail("convert", m.message());
  auto st = convert_to_gguf(*m.value(), out, opt);
  if (!st) return fail("convert", st.message());
  for (const auto& n : st->notes) std::printf("note: %s\n", n.c_str());
  std::printf("converted %s (%s) -> %s: %d tensors (%d with Q/K rows permuted, %d converted), %.2f MiB\n",
              in.c_str(), model_format_name(m.value()->format), out.c_str(), st->tensors, st->tensors_permuted,
              st->tensors_converted, st->bytes_out / 1048576.0);
  return 0;
}

}  // namespace tern::cli
