#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace tern {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The format's own limit (the reference implementation refuses larger headers).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

std::string json_type(const json& j) { return j.type_name(); }

// A non-negative integer that fits int64 (JSON numbers may be negative, fractional or huge).
bool as_index(const json& j, uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<uint64_t>();
    return out <= static_cast<uint64_t>(INT64_MAX);
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return error(path + ": read failed");
  return ss.str();
}

}  // namespace

size_t safetensors_dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto f = MappedFile::open(path);
  if (!f) return f.status();
  return parse(std::move(f.value()));
}

Result<SafetensorsFile> SafetensorsFile::parse(std::shared_ptr<MappedFile> file) {
  const std::string& path = file->path();
  const size_t size = file->size();
  if (size < 8) return error(path + ": " + std::to_string(size) + " bytes is too short for a safetensors file");
  uint64_t n = 0;
  std::memcpy(&n, file->data(), 8);  // little-endian, as every supported host is
  if (n > size - 8)
    return error(path + ": header length " + std::to_string(n) + " is larger than the file (" + std::to_string(size) +
                 " bytes); not a safetensors file, or truncated");
  if (n > kMaxHeaderBytes)
    return error(path + ": header length " + std::to_string(n) + " exceeds the format's limit of 100 MiB");
  const char* hdr = reinterpret_cast<const char*>(file->data() + 8);
  json j;
  try {
    j = json::parse(hdr, hdr + n);
  } catch (const json::exception& e) {
    return error(path + ": header is not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) return error(path + ": header is a JSON " + json_type(j) + ", expected an object");

  SafetensorsFile sf;
  sf.file_ = std::move(file);
  sf.data_offset_ = 8 + static_cast<size_t>(n);
  const uint64_t data_size = size - sf.data_offset_;
  for (const auto& [name, e] : j.items()) {
    if (name == "__metadata__") {
      if (!e.is_object()) return error(path + ": '__metadata__' is a JSON " + json_type(e) + ", expected an object");
      for (const auto& [k, v] : e.items()) {
        if (!v.is_string())
          return error(path + ": '__metadata__' key '" + k + "' is a JSON " + json_type(v) + ", expected a string");
        sf.metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    if (!e.is_object()) return error(where + " is a JSON " + json_type(e) + ", expected an object");
    SafetensorsTensor t;
    t.name = name;
    auto it = e.find("dtype");
    if (it == e.end() || !it->is_string()) return error(where + ": 'dtype' is missing or not a string");
    t.dtype = it->get<std::string>();
    const size_t esize = safetensors_dtype_size(t.dtype);
    if (esize == 0) return error(where + ": unknown dtype '" + t.dtype + "'");

    it = e.find("shape");
    if (it == e.end() || !it->is_array()) return error(where + ": 'shape' is missing or not an array");
    if (it->size() > 8) return error(where + ": shape has " + std::to_string(it->size()) + " dimensions (at most 8)");
    uint64_t numel = 1;
    bool too_big = false;
    for (const json& d : *it) {
      uint64_t v = 0;
      if (!as_index(d, v)) return error(where + ": shape entry " + d.dump() + " is not a non-negative integer");
      t.shape.push_back(static_cast<int64_t>(v));
      if (v != 0 && numel > (UINT64_MAX / 16) / v) too_big = true;
      numel *= v;
    }
    if (too_big) return error(where + ": shape " + it->dump() + " is absurdly large");

    it = e.find("data_offsets");
    if (it == e.end() || !it->is_array() || it->size() != 2)
      return error(where + ": 'data_offsets' is missing or not a [begin, end] pair");
    if (!as_index((*it)[0], t.begin) || !as_index((*it)[1], t.end))
      return error(where + ": data_offsets " + it->dump() + " are not non-negative integers");
    if (t.begin > t.end)
      return error(where + ": data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                   "] begin after they end");
    if (t.end > data_size)
      return error(where + ": data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                   "] run past the end of the data section (" + std::to_string(data_size) + " bytes)");
    if (t.end - t.begin != numel * esize)
      return error(where + ": data_offsets span " + std::to_string(t.end - t.begin) + " bytes but " + t.dtype +
                   " shape " + it->dump() + " needs " + std::to_string(numel * esize));
    sf.tensors_.push_back(std::move(t));
  }
  // No two tensors may share bytes.
  std::vector<const SafetensorsTensor*> by_begin;
  for (const auto& t : sf.tensors_)
    if (t.end > t.begin) by_begin.push_back(&t);
  std::sort(by_begin.begin(), by_begin.end(),
            [](const SafetensorsTensor* a, const SafetensorsTensor* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_begin.size(); ++i)
    if (by_begin[i]->begin < by_begin[i - 1]->end)
      return error(path + ": tensors '" + by_begin[i - 1]->name + "' and '" + by_begin[i]->name +
                   "' overlap in the data section");
  for (size_t i = 0; i < sf.tensors_.size(); ++i) sf.index_[sf.tensors_[i].name] = i;
  return sf;
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<TensorView> SafetensorsFile::view(const SafetensorsTensor& t, const std::string& name) const {
  TensorView v;
  v.name = name.empty() ? t.name : name;
  if (t.dtype == "F32") v.dtype = DType::F32;
  else if (t.dtype == "F16") v.dtype = DType::F16;
  else if (t.dtype == "BF16") v.dtype = DType::BF16;
  else
    return error(path() + ": tensor '" + t.name + "' has dtype " + t.dtype +
                 ", which is not supported (supported: F32, F16, BF16)");
  v.shape = t.shape;
  v.data = file_->data() + data_offset_ + t.begin;
  v.nbytes = static_cast<size_t>(t.end - t.begin);
  return v;
}

Result<SafetensorsSet> open_safetensors_dir(const std::string& dir) {
  SafetensorsSet set;
  std::error_code ec;
  const fs::path root(dir);
  const fs::path index = root / "model.safetensors.index.json";
  if (fs::exists(index, ec)) {
    const std::string ipath = index.string();
    auto text = read_text(ipath);
    if (!text) return text.status();
    json j;
    try {
      j = json::parse(text.value());
    } catch (const json::exception& e) {
      return error(ipath + ": not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      return error(ipath + ": has no 'weight_map' object");
    std::map<std::string, size_t> shard_index;
    for (const auto& [tensor, shard_j] : j["weight_map"].items()) {
      if (!shard_j.is_string())
        return error(ipath + ": weight_map entry for '" + tensor + "' is a JSON " + json_type(shard_j) +
                     ", expected a file name");
      const std::string shard = shard_j.get<std::string>();
      if (shard.empty() || fs::path(shard).is_absolute() || shard.find("..") != std::string::npos)
        return error(ipath + ": weight_map names shard '" + shard + "' for tensor '" + tensor +
                     "', which is not a file name inside the folder");
      auto it = shard_index.find(shard);
      if (it == shard_index.end()) {
        const fs::path sp = root / shard;
        if (!fs::exists(sp, ec))
          return error(ipath + ": shard '" + shard + "' (holding tensor '" + tensor + "') does not exist: " +
                       sp.string());
        auto f = SafetensorsFile::open(sp.string());
        if (!f) return f.status();
        set.files.push_back(std::move(f.value()));
        it = shard_index.emplace(shard, set.files.size() - 1).first;
      }
      const SafetensorsFile& sf = set.files[it->second];
      const SafetensorsTensor* t = sf.find(tensor);
      if (!t)
        return error(ipath + ": names shard '" + shard + "' for tensor '" + tensor + "', but " + sf.path() +
                     " has no such tensor");
      set.tensors[tensor] = {it->second, static_cast<size_t>(t - sf.tensors().data())};
    }
    return set;
  }

  fs::path single = root / "model.safetensors";
  if (!fs::exists(single, ec)) {
    std::vector<fs::path> found;
    for (const auto& de : fs::directory_iterator(root, ec))
      if (de.path().extension() == ".safetensors") found.push_back(de.path());
    if (found.empty())
      return error(dir + ": no model.safetensors, model.safetensors.index.json or other *.safetensors file");
    if (found.size() > 1)
      return error(dir + ": " + std::to_string(found.size()) +
                   " *.safetensors files but no model.safetensors.index.json saying which tensor is where");
    single = found[0];
  }
  auto f = SafetensorsFile::open(single.string());
  if (!f) return f.status();
  set.files.push_back(std::move(f.value()));
  const auto& ts = set.files[0].tensors();
  for (size_t i = 0; i < ts.size(); ++i) set.tensors[ts[i].name] = {0, i};
  return set;
}

}  // namespace tern
