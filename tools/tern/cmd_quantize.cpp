// tern quantize IN OUT TYPE: convert a model's weight matrices to another type (the library does the work).
#include <cstdio>
#include <algorithm>

#include "commands.h"
#include "core/quant.h"
#include "formats/quantize_model.h"

namespace tern::cli {

int cmd_quantize(const Args& a) {
  const auto& pos = a.positional();
  if (pos.size() != 3)
    return fail("quantize", "expected IN OUT TYPE, got " + std::to_string(pos.size()) + " argument(s) (TYPE: " +
                                quantize_targets_text() + ")");
  const std::string &in = pos[0], &out = pos[1], &type_name = pos[2];
  auto type = dtype_from_name(type_name);
  if (!type || !is_quantize_target(*type))
    return fail("quantize", "unknown TYPE '" + type_name + "' (valid: " + quantize_targets_text() + ")");
  const int64_t threads = a.integer("threads");
  if (threads < 0 || threads > 1024) return fail("quantize", "--threads: " + std::to_string(threads) + " is out of range");

  auto st = quantize_model(in, out, *type, static_cast<int>(threads));
  if (!st) return fail("quantize", st.message());
  // One line per reason, listing the tensors it applies to, in file order.
  std::vector<std::pair<std::string, std::string>> kept;  // reason -> names
  for (const auto& k : st->kept) {
    auto it = std::find_if(kept.begin(), kept.end(), [&](const auto& p) { return p.first == k.reason; });
    if (it == kept.end()) {
      kept.emplace_back(k.reason, k.name);
    } else {
      it->second += ", " + k.name;
    }
  }
  for (const auto& [reason, names] : kept) std::printf("kept (%s): %s\n", reason.c_str(), names.c_str());
  for (const auto& n : st->notes) std::printf("note: %s\n", n.c_str());
  std::printf("quantized %s -> %s (%s): %d tensors converted, %d copied, %d kept, %d 1-D as F32; "
              "%.2f MiB -> %.2f MiB in %.2f s\n",
              in.c_str(), out.c_str(), std::string(dtype_name(*type)).c_str(), st->tensors_converted,
              st->tensors_copied, static_cast<int>(st->kept.size()), st->tensors_f32, st->bytes_in / 1048576.0,
              st->bytes_out / 1048576.0, st->seconds);
  return 0;
}

}  // namespace tern::cli
