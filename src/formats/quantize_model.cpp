#include "formats/quantize_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include "core/quant.h"
#include "formats/gguf_writer.h"
#include "formats/model_file.h"

namespace tern {

namespace {

// One input tensor: its bytes stay in the input's memory map (held by quantize_model until written).
struct Source {
  std::string name;
  DType type;
  std::vector<int64_t> shape;  // row-major
  const uint8_t* data;
  size_t nbytes;
};

enum class Plan { Copy, Convert };

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool is_block_quantized(DType t) {
  auto info = dtype_info(static_cast<uint32_t>(t));
  return info && info->block_elems > 1;
}

// Tensors of a GGUF input in file order, including types tern cannot dequantize (those can only be copied).
Status gguf_sources(const GgufFile& g, std::vector<Source>& out) {
  for (const auto& info : g.tensors()) {
    auto ti = dtype_info(info.ggml_type);  // GgufFile::open already rejected unknown types
    Source s{info.name, static_cast<DType>(info.ggml_type), {}, nullptr, 0};
    for (auto it = info.ne.rbegin(); it != info.ne.rend(); ++it) s.shape.push_back(static_cast<int64_t>(*it));
    s.nbytes = static_cast<size_t>(numel(s.shape) / ti->block_elems * ti->block_bytes);
    s.data = g.file()->data() + g.data_offset() + info.offset;
    out.push_back(std::move(s));
  }
  return Status();
}

// Tensors of a llama2.c model in llama.cpp's usual order: embeddings, final norm, classifier, then layers.
void model_sources(const ModelFile& m, std::vector<Source>& out) {
  std::vector<std::string> order = {"token_embd.weight", "output_norm.weight", "output.weight"};
  for (int l = 0; l < m.config.n_layers; ++l)
    for (const char* part : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                             "ffn_up", "ffn_down"})
      order.push_back("blk." + std::to_string(l) + "." + part + ".weight");
  auto add = [&](const TensorView& t) {
    out.push_back({t.name, t.dtype, t.shape, static_cast<const uint8_t*>(t.data), t.nbytes});
  };
  for (const auto& name : order)
    if (const TensorView* t = m.weights.find(name)) add(*t);
  for (const auto& [name, t] : m.weights.all()) {  // anything else, by name
    bool listed = false;
    for (const auto& o : order) listed = listed || o == name;
    if (!listed) add(t);
  }
}


// Writes `src` as type `to` into dst, one row at a time through fp32, rows split over n_threads threads.
Status convert_rows(const Source& src, DType to, uint8_t* dst, const std::string& in_path, int n_threads) {
  const int64_t cols = src.shape.back(), rows = numel(src.shape) / cols;
  const size_t in_row = row_bytes(src.type, static_cast<uint64_t>(cols));
  const size_t out_row = row_bytes(to, static_cast<uint64_t>(cols));
  const bool check_finite = is_block_quantized(to);
  // Each worker converts rows [r0, r1) and records the first row it could not quantize (or -1).
  auto work = [&](int64_t r0, int64_t r1, int64_t& bad_row) {
    std::vector<float> row(static_cast<size_t>(cols));
    bad_row = -1;
    for (int64_t r = r0; r < r1; ++r) {
      dequantize_row(src.type, src.data + static_cast<size_t>(r) * in_row, row.data(), cols);
      if (check_finite && !std::all_of(row.begin(), row.end(), [](float v) { return std::isfinite(v); })) {
        bad_row = r;
        return;
      }
      quantize_row(to, row.data(), dst + static_cast<size_t>(r) * out_row, cols);
    }
  };
  // Threads only pay off for big tensors; small ones (norms, tiny models) stay on this thread.
  const int64_t min_rows_per_thread = std::max<int64_t>(1, (int64_t{1} << 16) / cols);
  const int n = static_cast<int>(std::clamp<int64_t>(rows / min_rows_per_thread, 1, std::max(1, n_threads)));
  std::vector<int64_t> bad(static_cast<size_t>(n), -1);
  if (n == 1) {
    work(0, rows, bad[0]);
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < n; ++t)
      pool.emplace_back(work, rows * t / n, rows * (t + 1) / n, std::ref(bad[static_cast<size_t>(t)]));
    for (auto& th : pool) th.join();
  }
  for (int64_t r : bad)
    if (r >= 0)
      return error("row " + std::to_string(r) + " of " + in_path +
                   " holds a non-finite value (nan or inf), which cannot be quantized");
  return Status();
}

}  // namespace

bool is_quantize_target(DType t) { return t != DType::F32 && can_quantize(t); }

int llama_file_type(DType t) {
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q4_1: return 3;
    case DType::Q8_0: return 7;
    case DType::Q4_K: return 14;
    case DType::BF16: return 32;
    default: return -1;
  }
}

Result<QuantizeStats> quantize_model(const std::string& in_path, const std::string& out_path, DType target,
                                     int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const auto t0 = std::chrono::steady_clock::now();
  if (!is_quantize_target(target))
    return error("cannot quantize to " + std::string(dtype_name(target)) + " (valid: " + quantize_targets_text() + ")");
  std::error_code ec;
  if (std::filesystem::exists(out_path, ec) && std::filesystem::equivalent(in_path, out_path, ec))
    return error(out_path + ": the output would overwrite the input");

  QuantizeStats st;
  GgufWriter w;
  std::vector<Source> sources;
  // Whatever keeps the input's bytes mapped until the output is written.
  std::optional<GgufFile> gguf_in;
  std::shared_ptr<ModelFile> model_in;

  auto mapped = MappedFile::open(in_path);
  if (!mapped) return mapped.status();
  const bool is_gguf = mapped.value()->size() >= 4 && std::memcmp(mapped.value()->data(), "GGUF", 4) == 0;
  st.bytes_in = mapped.value()->size();
  if (is_gguf) {
    auto g = GgufFile::parse(mapped.value());
    if (!g) return g.status();
    gguf_in = std::move(g.value());
    for (const auto& [key, v] : gguf_in->metadata()) w.set(key, v);
    TERN_TRY(gguf_sources(*gguf_in, sources));
  } else {
    mapped.value().reset();
    auto m = load_model_file(in_path);
    if (!m) return m.status();
    model_in = m.value();
    if (model_in->config.rope_style != RopeStyle::Adjacent)
      return error(in_path + ": Q/K rows in half-split RoPE order cannot be written as a GGUF llama model yet");
    set_llama_metadata(model_in->config, w);
    model_sources(*model_in, sources);
    st.notes.push_back("no tokenizer in the output: llama2.c checkpoints keep it in a separate tokenizer.bin");
  }
  w.set_u32("general.alignment", 32);
  w.set_u32("general.file_type", static_cast<uint32_t>(llama_file_type(target)));
  if (is_block_quantized(target)) w.set_u32("general.quantization_version", 2);

  const uint32_t block = dtype_info(static_cast<uint32_t>(target))->block_elems;
  for (const Source& s : sources) {
    DType to = target;
    Plan plan = Plan::Convert;
    if (s.shape.size() < 2) {
      to = DType::F32;
      if (!can_dequantize(s.type)) {
        to = s.type;
        st.kept.push_back({s.name, "type " + std::string(dtype_name(s.type)) + " cannot be converted; stays as is"});
      }
      ++st.tensors_f32;
    } else if (!can_dequantize(s.type)) {
      to = s.type;
      st.kept.push_back({s.name, "type " + std::string(dtype_name(s.type)) + " cannot be converted; stays " +
                                     std::string(dtype_name(s.type))});
    } else if (s.shape.back() % block != 0) {
      to = s.type;
      st.kept.push_back({s.name, "row length " + std::to_string(s.shape.back()) + " is not a multiple of the " +
                                     std::string(dtype_name(target)) + " block size " + std::to_string(block) +
                                     "; stays " + std::string(dtype_name(s.type))});
    } else if (s.type == target) {
      ++st.tensors_copied;
    } else {
      ++st.tensors_converted;
    }
    if (to == s.type) plan = Plan::Copy;
    const std::string in = in_path;
    Status added = w.add_tensor(s.name, to, s.shape, [s, to, plan, in, n_threads](uint8_t* dst, size_t n) -> Status {
      if (plan == Plan::Copy) {
        std::memcpy(dst, s.data, n);
        return Status();
      }
      return convert_rows(s, to, dst, in, n_threads);
    });
    if (!added) return error(out_path + ": " + added.message());
  }

  TERN_TRY(w.write(out_path));
  st.bytes_out = std::filesystem::file_size(out_path, ec);
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

}  // namespace tern
