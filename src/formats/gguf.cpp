#include "formats/gguf.h"

#include <cstring>
#include <limits>

#include "core/quant.h"

namespace tern {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr int kMaxArrayDepth = 8;            // nested arrays deeper than this are treated as hostile
constexpr uint64_t kMaxDims = 4;             // ggml tensors have at most 4 dimensions
// Each parsed array element costs a GgufValue (~100 bytes), so a hostile file of small elements could
// demand ~100x its size in memory. Real files stay far below this (a 256k vocabulary with scores, types and
// merges is ~1M elements); past it the file is rejected instead of exhausting memory.
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 24;

// A bounds-checked little-endian reader over the mapped file. Every read fails cleanly past the end.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), size_(size) {}

  size_t pos() const { return pos_; }
  bool failed() const { return failed_; }
  const std::string& what() const { return what_; }

  template <class T>
  bool read(T& out, const char* what) {
    if (size_ - pos_ < sizeof(T)) return fail(what);
    std::memcpy(&out, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool read_string(std::string& out, const char* what) {
    uint64_t len = 0;
    if (!read(len, what)) return false;
    if (len > size_ - pos_) return fail(what);
    out.assign(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return true;
  }
  bool fail(const char* what) {
    if (!failed_) {
      failed_ = true;
      what_ = std::string("file is truncated while reading ") + what + " at byte " + std::to_string(pos_) +
              " (file size " + std::to_string(size_) + ")";
    }
    return false;
  }
  size_t remaining() const { return size_ - pos_; }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  bool failed_ = false;
  std::string what_;
};

// Smallest number of bytes one value of `t` can occupy: bounds array lengths before any allocation.
uint64_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    case GgufType::STRING: return 8;   // the length prefix
    case GgufType::ARRAY: return 12;   // element type + count
  }
  return 1;
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

Status read_value(Reader& r, GgufType type, GgufValue& v, const std::string& key, int depth, uint64_t& budget) {
  v.type = type;
  auto trunc = [&]() { return error(r.what() + " (key '" + key + "')"); };
  switch (type) {
    case GgufType::UINT8: { uint8_t x{}; if (!r.read(x, "a metadata value")) return trunc(); v.u = x; break; }
    case GgufType::INT8: { int8_t x{}; if (!r.read(x, "a metadata value")) return trunc(); v.i = x; break; }
    case GgufType::UINT16: { uint16_t x{}; if (!r.read(x, "a metadata value")) return trunc(); v.u = x; break; }
    case GgufType::INT16: { int16_t x{}; if (!r.read(x, "a metadata value")) return trunc(); v.i = x; break; }
    case GgufType::UINT32: { uint32_t x{}; if (!r.read(x, "a metadata value")) return trunc(); v.u = x; break; }
    case GgufType::INT32: { int32_t x{}; if (!r.read(x, "a metadata value")) return trunc(); v.i = x; break; }
    case GgufType::UINT64: { uint64_t x{}; if (!r.read(x, "a metadata value")) return trunc(); v.u = x; break; }
    case GgufType::INT64: { int64_t x{}; if (!r.read(x, "a metadata value")) return trunc(); v.i = x; break; }
    case GgufType::FLOAT32: { float x{}; if (!r.read(x, "a metadata value")) return trunc(); v.f = x; break; }
    case GgufType::FLOAT64: { double x{}; if (!r.read(x, "a metadata value")) return trunc(); v.f = x; break; }
    case GgufType::BOOL: {
      uint8_t x{};
      if (!r.read(x, "a metadata value")) return trunc();
      if (x > 1) return error("key '" + key + "': bool value " + std::to_string(x) + " is neither 0 nor 1");
      v.u = x;
      break;
    }
    case GgufType::STRING:
      if (!r.read_string(v.str, "a metadata string")) return trunc();
      break;
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayDepth) return error("key '" + key + "': arrays nested too deeply");
      uint32_t et = 0;
      uint64_t n = 0;
      if (!r.read(et, "an array element type") || !r.read(n, "an array length")) return trunc();
      if (!valid_type(et)) return error("key '" + key + "': unknown array element type " + std::to_string(et));
      v.elem_type = static_cast<GgufType>(et);
      if (n > r.remaining() / min_value_bytes(v.elem_type))
        return error("key '" + key + "': array length " + std::to_string(n) + " exceeds the file size");
      if (n > budget)
        return error("key '" + key + "': metadata arrays hold more than " + std::to_string(kMaxArrayElements) +
                     " elements in total");
      budget -= n;
      v.arr.resize(static_cast<size_t>(n));
      for (auto& e : v.arr) TERN_TRY(read_value(r, v.elem_type, e, key, depth + 1, budget));
      break;
    }
  }
  return Status();
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  static const char* names[] = {"uint8", "int8",   "uint16", "int16", "uint32", "int32",  "float32",
                                "bool",  "string", "array",  "uint64", "int64", "float64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "?";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
    case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64:
      return true;
    default: return false;
  }
}

static bool is_signed(GgufType t) {
  return t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64;
}

std::string GgufValue::to_string(size_t max_items) const {
  switch (type) {
    case GgufType::STRING: return "\"" + str + "\"";
    case GgufType::BOOL: return u ? "true" : "false";
    case GgufType::FLOAT32: case GgufType::FLOAT64: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", f);
      return buf;
    }
    case GgufType::ARRAY: {
      std::string s = std::string("[") + gguf_type_name(elem_type) + " x " + std::to_string(arr.size()) + ": ";
      for (size_t k = 0; k < arr.size() && k < max_items; ++k) s += (k ? ", " : "") + arr[k].to_string(max_items);
      if (arr.size() > max_items) s += ", ...";
      return s + "]";
    }
    default: return is_signed(type) ? std::to_string(i) : std::to_string(u);
  }
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  auto f = MappedFile::open(path);
  if (!f) return f.status();
  return parse(std::move(f.value()));
}

Result<GgufFile> GgufFile::parse(std::shared_ptr<MappedFile> file) {
  GgufFile g;
  g.file_ = file;
  const std::string& path = file->path();
  Reader r(file->data(), file->size());
  auto fail = [&](const std::string& msg) { return error(path + ": " + msg); };

  uint32_t magic = 0;
  if (!r.read(magic, "the magic")) return fail("too small to be a GGUF file (" + std::to_string(file->size()) + " bytes)");
  if (magic != kGgufMagic) return fail("not a GGUF file (bad magic)");
  if (!r.read(g.version_, "the version")) return fail(r.what());
  if (g.version_ != 2 && g.version_ != 3)
    return fail("unsupported GGUF version " + std::to_string(g.version_) + " (supported: 2, 3)");
  uint64_t n_tensors = 0, n_kv = 0;
  if (!r.read(n_tensors, "the tensor count") || !r.read(n_kv, "the metadata count")) return fail(r.what());
  // Each key-value pair takes at least 12 bytes and each tensor info at least 24: a bound before allocating.
  if (n_kv > r.remaining() / 12) return fail("metadata count " + std::to_string(n_kv) + " exceeds the file size");
  if (n_tensors > r.remaining() / 24)
    return fail("tensor count " + std::to_string(n_tensors) + " exceeds the file size");

  g.kv_.reserve(static_cast<size_t>(n_kv));
  uint64_t array_budget = kMaxArrayElements;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key;
    uint32_t type = 0;
    if (!r.read_string(key, "a metadata key")) return fail(r.what());
    if (!r.read(type, "a metadata type")) return fail(r.what() + " (key '" + key + "')");
    if (!valid_type(type)) return fail("key '" + key + "': unknown metadata value type " + std::to_string(type));
    GgufValue v;
    Status s = read_value(r, static_cast<GgufType>(type), v, key, 0, array_budget);
    if (!s) return fail(s.message());
    if (g.kv_index_.count(key)) return fail("duplicate metadata key '" + key + "'");
    g.kv_index_[key] = g.kv_.size();
    g.kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = g.find("general.alignment")) {
    auto al = g.get_uint("general.alignment");
    if (!al || al.value() == 0 || (al.value() & (al.value() - 1)) != 0 || al.value() > 65536)
      return fail("key 'general.alignment' must be a power of two up to 65536, got " + a->to_string());
    g.alignment_ = al.value();
  }

  g.tensors_.resize(static_cast<size_t>(n_tensors));
  std::map<std::string, int> seen;
  for (auto& t : g.tensors_) {
    uint32_t n_dims = 0;
    if (!r.read_string(t.name, "a tensor name")) return fail(r.what());
    if (!r.read(n_dims, "a tensor's dimension count")) return fail(r.what() + " (tensor '" + t.name + "')");
    if (n_dims == 0 || n_dims > kMaxDims)
      return fail("tensor '" + t.name + "': " + std::to_string(n_dims) + " dimensions (expected 1 to 4)");
    t.ne.resize(n_dims);
    for (auto& d : t.ne)
      if (!r.read(d, "a tensor dimension")) return fail(r.what() + " (tensor '" + t.name + "')");
    if (!r.read(t.ggml_type, "a tensor type") || !r.read(t.offset, "a tensor offset"))
      return fail(r.what() + " (tensor '" + t.name + "')");
    if (seen[t.name]++) return fail("duplicate tensor '" + t.name + "'");
  }

  size_t pos = r.pos();
  g.data_offset_ = static_cast<size_t>((pos + g.alignment_ - 1) / g.alignment_ * g.alignment_);
  if (n_tensors > 0 && g.data_offset_ > file->size())
    return fail("file is truncated before its tensor data section");

  // Validate every tensor's extent now, so later views cannot point outside the map.
  const uint64_t data_size = file->size() > g.data_offset_ ? file->size() - g.data_offset_ : 0;
  for (const auto& t : g.tensors_) {
    auto info = dtype_info(t.ggml_type);
    if (!info) return fail("tensor '" + t.name + "': unknown tensor type " + std::to_string(t.ggml_type));
    uint64_t n = 1;
    for (uint64_t d : t.ne) {
      if (d == 0 || d > (uint64_t{1} << 40) || n > std::numeric_limits<uint64_t>::max() / d / 8)
        return fail("tensor '" + t.name + "': dimension " + std::to_string(d) + " is invalid or overflows");
      n *= d;
    }
    if (t.ne[0] % info->block_elems != 0)
      return fail("tensor '" + t.name + "': row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                  std::string(info->name) + " block size " + std::to_string(info->block_elems));
    uint64_t bytes = n / info->block_elems * info->block_bytes;
    if (t.offset % g.alignment_ != 0)
      return fail("tensor '" + t.name + "': offset " + std::to_string(t.offset) + " is not aligned to " +
                  std::to_string(g.alignment_));
    if (t.offset > data_size || bytes > data_size - t.offset)
      return fail("tensor '" + t.name + "': data (offset " + std::to_string(t.offset) + ", " + std::to_string(bytes) +
                  " bytes) lies past the end of the file");
  }
  return g;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

Result<uint64_t> GgufFile::get_uint(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return error(path() + ": missing key '" + key + "'");
  if (!v->is_integer()) return error(path() + ": key '" + key + "' is " + gguf_type_name(v->type) + ", expected an integer");
  if (is_signed(v->type)) {
    if (v->i < 0) return error(path() + ": key '" + key + "' is negative (" + std::to_string(v->i) + ")");
    return static_cast<uint64_t>(v->i);
  }
  return v->u;
}

Result<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return error(path() + ": missing key '" + key + "'");
  if (v->is_float()) return v->f;
  if (v->is_integer()) return is_signed(v->type) ? static_cast<double>(v->i) : static_cast<double>(v->u);
  return error(path() + ": key '" + key + "' is " + gguf_type_name(v->type) + ", expected a number");
}

Result<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return error(path() + ": missing key '" + key + "'");
  if (v->type != GgufType::STRING)
    return error(path() + ": key '" + key + "' is " + gguf_type_name(v->type) + ", expected a string");
  return v->str;
}

Result<bool> GgufFile::get_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return error(path() + ": missing key '" + key + "'");
  if (v->type != GgufType::BOOL)
    return error(path() + ": key '" + key + "' is " + gguf_type_name(v->type) + ", expected a bool");
  return v->u != 0;
}

Result<const std::vector<GgufValue>*> GgufFile::get_array(const std::string& key, GgufType elem) const {
  const GgufValue* v = find(key);
  if (!v) return error(path() + ": missing key '" + key + "'");
  if (v->type != GgufType::ARRAY || v->elem_type != elem)
    return error(path() + ": key '" + key + "' is " + v->to_string(0) + ", expected an array of " + gguf_type_name(elem));
  return &v->arr;
}

Result<TensorView> GgufFile::view(const GgufTensorInfo& info) const {
  auto ti = dtype_info(info.ggml_type);
  DType dt = static_cast<DType>(info.ggml_type);
  if (!ti || !dtype_is_supported(dt))
    return error(path() + ": tensor '" + info.name + "' has type " + (ti ? std::string(ti->name) : std::to_string(info.ggml_type)) +
                 ", which is not supported yet (supported: " + supported_dtypes_text() + ")");
  TensorView v;
  v.name = info.name;
  v.dtype = dt;
  for (auto it = info.ne.rbegin(); it != info.ne.rend(); ++it) v.shape.push_back(static_cast<int64_t>(*it));
  v.nbytes = static_cast<size_t>(v.numel() / ti->block_elems * ti->block_bytes);
  v.data = file_->data() + data_offset_ + info.offset;
  return v;
}

}  // namespace tern
