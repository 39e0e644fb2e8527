#include "core/huge_arena.h"

#include <sys/mman.h>

namespace tern {

namespace {

size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

}  // namespace

HugePageArena::HugePageArena(size_t slab_bytes)
    : slab_bytes_(round_up(slab_bytes > 0 ? slab_bytes : 1, kHugePage)) {}

HugePageArena::~HugePageArena() {
  for (const Slab& s : slabs_) munmap(s.map, s.map_bytes);
}

uint8_t* HugePageArena::allocate(size_t bytes) {
  bytes = round_up(bytes > 0 ? bytes : 1, kAlign);
  if (bytes > left_) {
    const size_t usable = bytes > slab_bytes_ ? round_up(bytes, kHugePage) : slab_bytes_;
    // One huge page more than needed, so that an aligned run of `usable` bytes lies inside.
    const size_t map_bytes = usable + kHugePage;
    void* map = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return nullptr;
    slabs_.push_back({map, map_bytes});
    mapped_ += map_bytes;
    uint8_t* start = reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(map), kHugePage));
#ifdef MADV_HUGEPAGE
    // Advice only: without transparent huge pages the slab is ordinary memory.
    madvise(start, usable, MADV_HUGEPAGE);
#endif
    next_ = start;
    left_ = usable;
  }
  uint8_t* p = next_;
  next_ += bytes;
  left_ -= bytes;
  allocated_ += bytes;
  return p;
}

}  // namespace tern
