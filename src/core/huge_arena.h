// Memory for data that lives as long as its owner and is streamed through often: the CPU backend's repacked
// weights. It comes from large anonymous maps aligned to 2 MiB and marked for transparent huge pages
// (madvise MADV_HUGEPAGE, which works where /sys/kernel/mm/transparent_hugepage/enabled says "madvise" or
// "always"). A decode step reads hundreds of MB of weights once each; in 4 KiB pages that is a TLB miss and a
// page walk every 64 cache lines, which on the development machine cost 11-33% of the decode rate
// (docs/performance.md). Allocations are carved one after another out of slabs and freed all at once with the
// arena; a slab's unused tail is never touched and so never becomes resident.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tern {

class HugePageArena {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;
  static constexpr size_t kAlign = 64;

  // slab_bytes: the size of each map (rounded up to whole huge pages); a larger allocation gets a map of its
  // own.
  explicit HugePageArena(size_t slab_bytes = size_t{64} << 20);
  ~HugePageArena();
  HugePageArena(const HugePageArena&) = delete;
  HugePageArena& operator=(const HugePageArena&) = delete;

  // `bytes` of zeroed memory, 64-byte aligned, valid until the arena is destroyed; nullptr when the system
  // has no memory for another slab.
  uint8_t* allocate(size_t bytes);

  size_t allocated() const { return allocated_; }  // bytes handed out (each rounded up to 64)
  size_t mapped() const { return mapped_; }        // bytes of address space reserved in slabs

 private:
  struct Slab {
    void* map;  // as mmap returned it
    size_t map_bytes;
  };
  std::vector<Slab> slabs_;
  uint8_t* next_ = nullptr;  // the free part of the newest slab
  size_t left_ = 0;
  size_t slab_bytes_;
  size_t allocated_ = 0, mapped_ = 0;
};

}  // namespace tern
