#include "formats/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace tern {

namespace {

constexpr uint32_t kGgufVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
constexpr size_t kMaxTensorName = 63;  // ggml's GGML_MAX_NAME is 64 including the terminator
constexpr int kMaxArrayDepth = 8;      // as the reader accepts

GgufValue scalar(GgufType t) {
  GgufValue v;
  v.type = t;
  return v;
}

template <class T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

bool is_unsigned(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 || t == GgufType::UINT64 ||
         t == GgufType::BOOL;
}

// Appends the payload of `v` (what follows its type id). Errors name the key.
Status put_value(std::string& out, const GgufValue& v, const std::string& key, int depth) {
  auto range = [&](bool ok) {
    return ok ? Status() : error("metadata key '" + key + "': value does not fit its type " + gguf_type_name(v.type));
  };
  switch (v.type) {
    case GgufType::UINT8: TERN_TRY(range(v.u <= UINT8_MAX)); put<uint8_t>(out, static_cast<uint8_t>(v.u)); break;
    case GgufType::INT8: TERN_TRY(range(v.i >= INT8_MIN && v.i <= INT8_MAX)); put<int8_t>(out, static_cast<int8_t>(v.i)); break;
    case GgufType::UINT16: TERN_TRY(range(v.u <= UINT16_MAX)); put<uint16_t>(out, static_cast<uint16_t>(v.u)); break;
    case GgufType::INT16: TERN_TRY(range(v.i >= INT16_MIN && v.i <= INT16_MAX)); put<int16_t>(out, static_cast<int16_t>(v.i)); break;
    case GgufType::UINT32: TERN_TRY(range(v.u <= UINT32_MAX)); put<uint32_t>(out, static_cast<uint32_t>(v.u)); break;
    case GgufType::INT32: TERN_TRY(range(v.i >= INT32_MIN && v.i <= INT32_MAX)); put<int32_t>(out, static_cast<int32_t>(v.i)); break;
    case GgufType::UINT64: put<uint64_t>(out, v.u); break;
    case GgufType::INT64: put<int64_t>(out, v.i); break;
    case GgufType::FLOAT32: put<float>(out, static_cast<float>(v.f)); break;
    case GgufType::FLOAT64: put<double>(out, v.f); break;
    case GgufType::BOOL: TERN_TRY(range(v.u <= 1)); put<uint8_t>(out, static_cast<uint8_t>(v.u)); break;
    case GgufType::STRING: put_string(out, v.str); break;
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayDepth) return error("metadata key '" + key + "': arrays nested too deeply");
      if (static_cast<uint32_t>(v.elem_type) > static_cast<uint32_t>(GgufType::FLOAT64))
        return error("metadata key '" + key + "': unknown array element type " +
                     std::to_string(static_cast<uint32_t>(v.elem_type)));
      put<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
      put<uint64_t>(out, v.arr.size());
      for (size_t k = 0; k < v.arr.size(); ++k) {
        if (v.arr[k].type != v.elem_type)
          return error("metadata key '" + key + "': element " + std::to_string(k) + " is " +
                       gguf_type_name(v.arr[k].type) + " in an array of " + gguf_type_name(v.elem_type));
        TERN_TRY(put_value(out, v.arr[k], key, depth + 1));
      }
      break;
    }
    default:
      return error("metadata key '" + key + "': unknown value type " + std::to_string(static_cast<uint32_t>(v.type)));
  }
  return Status();
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Closes the FILE on scope exit; write() closes explicitly to see the error.
struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::set_string(const std::string& key, std::string s) {
  GgufValue v = scalar(GgufType::STRING);
  v.str = std::move(s);
  set(key, std::move(v));
}
void GgufWriter::set_bool(const std::string& key, bool b) {
  GgufValue v = scalar(GgufType::BOOL);
  v.u = b ? 1 : 0;
  set(key, std::move(v));
}
#define TERN_UNSIGNED_SETTER(fn, T, TYPE)                  \
  void GgufWriter::fn(const std::string& key, T x) {       \
    GgufValue v = scalar(GgufType::TYPE);                  \
    v.u = x;                                               \
    set(key, std::move(v));                                \
  }
#define TERN_SIGNED_SETTER(fn, T, TYPE)                    \
  void GgufWriter::fn(const std::string& key, T x) {       \
    GgufValue v = scalar(GgufType::TYPE);                  \
    v.i = x;                                               \
    set(key, std::move(v));                                \
  }
TERN_UNSIGNED_SETTER(set_u8, uint8_t, UINT8)
TERN_UNSIGNED_SETTER(set_u16, uint16_t, UINT16)
TERN_UNSIGNED_SETTER(set_u32, uint32_t, UINT32)
TERN_UNSIGNED_SETTER(set_u64, uint64_t, UINT64)
TERN_SIGNED_SETTER(set_i8, int8_t, INT8)
TERN_SIGNED_SETTER(set_i16, int16_t, INT16)
TERN_SIGNED_SETTER(set_i32, int32_t, INT32)
TERN_SIGNED_SETTER(set_i64, int64_t, INT64)
#undef TERN_UNSIGNED_SETTER
#undef TERN_SIGNED_SETTER

void GgufWriter::set_f32(const std::string& key, float x) {
  GgufValue v = scalar(GgufType::FLOAT32);
  v.f = x;
  set(key, std::move(v));
}
void GgufWriter::set_f64(const std::string& key, double x) {
  GgufValue v = scalar(GgufType::FLOAT64);
  v.f = x;
  set(key, std::move(v));
}

void GgufWriter::set_array(const std::string& key, GgufType elem, std::vector<GgufValue> items) {
  GgufValue v = scalar(GgufType::ARRAY);
  v.elem_type = elem;
  v.arr = std::move(items);
  set(key, std::move(v));
}
void GgufWriter::set_string_array(const std::string& key, const std::vector<std::string>& items) {
  std::vector<GgufValue> a(items.size(), scalar(GgufType::STRING));
  for (size_t k = 0; k < items.size(); ++k) a[k].str = items[k];
  set_array(key, GgufType::STRING, std::move(a));
}
void GgufWriter::set_i32_array(const std::string& key, const std::vector<int32_t>& items) {
  std::vector<GgufValue> a(items.size(), scalar(GgufType::INT32));
  for (size_t k = 0; k < items.size(); ++k) a[k].i = items[k];
  set_array(key, GgufType::INT32, std::move(a));
}
void GgufWriter::set_f32_array(const std::string& key, const std::vector<float>& items) {
  std::vector<GgufValue> a(items.size(), scalar(GgufType::FLOAT32));
  for (size_t k = 0; k < items.size(); ++k) a[k].f = items[k];
  set_array(key, GgufType::FLOAT32, std::move(a));
}

bool GgufWriter::remove(const std::string& key) {
  for (auto it = kv_.begin(); it != kv_.end(); ++it) {
    if (it->first == key) {
      kv_.erase(it);
      return true;
    }
  }
  return false;
}

const GgufValue* GgufWriter::find(const std::string& key) const {
  for (const auto& [k, v] : kv_)
    if (k == key) return &v;
  return nullptr;
}

Status GgufWriter::check_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape,
                                size_t& nbytes, std::vector<uint64_t>& ne) const {
  auto fail = [&](const std::string& msg) { return error("tensor '" + name + "': " + msg); };
  if (name.empty()) return error("a tensor has an empty name");
  if (name.size() > kMaxTensorName)
    return fail("name is " + std::to_string(name.size()) + " bytes, longer than " + std::to_string(kMaxTensorName));
  for (const auto& t : tensors_)
    if (t.name == name) return fail("added twice");
  auto info = dtype_info(static_cast<uint32_t>(type));
  if (!info) return fail("unknown type " + std::to_string(static_cast<uint32_t>(type)));
  if (shape.empty() || shape.size() > 4) return fail(std::to_string(shape.size()) + " dimensions (expected 1 to 4)");
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d <= 0 || d > (int64_t{1} << 40)) return fail("dimension " + std::to_string(d) + " is invalid");
    n *= static_cast<uint64_t>(d);
    if (n > (uint64_t{1} << 50)) return fail("has too many elements");
  }
  if (shape.back() % info->block_elems != 0)
    return fail("row length " + std::to_string(shape.back()) + " is not a multiple of the " + std::string(info->name) +
                " block size " + std::to_string(info->block_elems));
  nbytes = static_cast<size_t>(n / info->block_elems * info->block_bytes);
  ne.assign(shape.rbegin(), shape.rend());
  return Status();
}

Status GgufWriter::add_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape,
                              const void* data, size_t nbytes) {
  size_t want = 0;
  std::vector<uint64_t> ne;
  TERN_TRY(check_tensor(name, type, shape, want, ne));
  if (nbytes != want)
    return error("tensor '" + name + "': " + std::to_string(nbytes) + " bytes given, its type and shape need " +
                 std::to_string(want));
  if (!data && want) return error("tensor '" + name + "': no data");
  tensors_.push_back({name, type, std::move(ne), want, data, nullptr});
  return Status();
}

Status GgufWriter::add_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape, FillFn fill) {
  size_t want = 0;
  std::vector<uint64_t> ne;
  TERN_TRY(check_tensor(name, type, shape, want, ne));
  if (!fill) return error("tensor '" + name + "': no data");
  tensors_.push_back({name, type, std::move(ne), want, nullptr, std::move(fill)});
  return Status();
}

uint64_t GgufWriter::tensor_data_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors_) n += t.nbytes;
  return n;
}

Status GgufWriter::write(const std::string& path) const {
  // Alignment: from the metadata when present, else the default, written as a key.
  uint64_t alignment = kDefaultAlignment;
  bool have_alignment_key = false;
  if (const GgufValue* a = find("general.alignment")) {
    const bool is_int = a->type != GgufType::STRING && a->type != GgufType::ARRAY && a->type != GgufType::BOOL &&
                        a->type != GgufType::FLOAT32 && a->type != GgufType::FLOAT64;
    const uint64_t v = is_unsigned(a->type) ? a->u : static_cast<uint64_t>(a->i);
    if (!is_int || v == 0 || (v & (v - 1)) != 0 || v > 65536)
      return error(path + ": metadata key 'general.alignment' must be a power of two up to 65536, got " + a->to_string());
    alignment = v;
    have_alignment_key = true;
  }

  // Header, metadata and tensor infos go to memory first: every check runs before the file is touched.
  std::string head;
  put<uint32_t>(head, 0x46554747u);  // "GGUF"
  put<uint32_t>(head, kGgufVersion);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, kv_.size() + (have_alignment_key ? 0 : 1));
  auto put_kv = [&](const std::string& key, const GgufValue& v) -> Status {
    put_string(head, key);
    put<uint32_t>(head, static_cast<uint32_t>(v.type));
    return put_value(head, v, key, 0);
  };
  for (const auto& [key, v] : kv_) {
    Status s = put_kv(key, v);
    if (!s) return error(path + ": " + s.message());
  }
  if (!have_alignment_key) {
    GgufValue a = scalar(GgufType::UINT32);
    a.u = alignment;
    TERN_TRY(put_kv("general.alignment", a));
  }
  std::vector<uint64_t> offsets(tensors_.size());
  uint64_t offset = 0;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const Tensor& t = tensors_[k];
    offsets[k] = offset;
    put_string(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) put<uint64_t>(head, d);
    put<uint32_t>(head, static_cast<uint32_t>(t.type));
    put<uint64_t>(head, offset);
    offset = align_up(offset + t.nbytes, alignment);
  }
  head.resize(static_cast<size_t>(align_up(head.size(), alignment)), '\0');

  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
  if (!f) return error(path + ": cannot open for writing: " + std::strerror(errno));
  auto fail = [&](const std::string& msg) {
    f.reset();
    std::remove(path.c_str());
    return error(path + ": " + msg);
  };
  auto write_bytes = [&](const void* p, size_t n) { return n == 0 || std::fwrite(p, 1, n, f.get()) == n; };
  if (!write_bytes(head.data(), head.size())) return fail(std::string("write failed: ") + std::strerror(errno));

  static const char kZeros[65536] = {};
  std::vector<uint8_t> buf;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const Tensor& t = tensors_[k];
    const void* bytes = t.data;
    if (t.fill) {
      buf.assign(t.nbytes, 0);
      Status s = t.fill(buf.data(), t.nbytes);
      if (!s) return fail("tensor '" + t.name + "': " + s.message());
      bytes = buf.data();
    }
    const size_t pad = static_cast<size_t>(align_up(t.nbytes, alignment) - t.nbytes);
    if (!write_bytes(bytes, t.nbytes) || !write_bytes(kZeros, pad))
      return fail("write failed in tensor '" + t.name + "': " + std::strerror(errno));
  }
  FILE* raw = f.release();
  if (std::fclose(raw) != 0) {
    const int e = errno;
    std::remove(path.c_str());
    return error(path + ": write failed: " + std::strerror(e));
  }
  return Status();
}

// The llama architecture keys of a ModelConfig, as llama.cpp's loader reads them.
void set_llama_metadata(const ModelConfig& c, GgufWriter& w) {
  w.set_string("general.architecture", "llama");
  if (!c.name.empty()) w.set_string("general.name", c.name);
  w.set_u32("llama.context_length", static_cast<uint32_t>(c.max_seq_len));
  w.set_u32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  w.set_u32("llama.block_count", static_cast<uint32_t>(c.n_layers));
  w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(c.hidden_dim));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  if (c.head_dim * c.n_heads != c.dim) {
    w.set_u32("llama.attention.key_length", static_cast<uint32_t>(c.head_dim));
    w.set_u32("llama.attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  w.set_f32("llama.rope.freq_base", c.rope_theta);
  w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  w.set_f32("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
  w.set_u32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
}

}  // namespace tern
