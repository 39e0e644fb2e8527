// Read-only memory map of a whole file. Weights are used in place from the map where the layout allows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace tern {

class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Whether [p, p + n) lies inside the map.
  bool contains(const void* p, size_t n) const;
  // Hands back the pages wholly inside [p, p + n), a range of the map, that this process no longer needs
  // (madvise MADV_DONTNEED): they stop counting in its resident memory, and being a read-only private
  // map of the file, a later read finds the file's bytes again (from the page cache or the disk).
  void release(const void* p, size_t n) const;

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace tern
