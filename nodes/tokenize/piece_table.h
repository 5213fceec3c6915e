// PieceTable: an immutable hash table from vocabulary pieces to ids, built
// once and then read by many threads.
//
// Why not std::unordered_map: WordPiece's greedy match looks up several
// slices of every word, most of them absent, so lookups dominate encoding.
// std::unordered_map chases a pointer per bucket node; this table keeps
// hash, key pointer and id in one flat array with linear probing (load factor
// at most 1/2), so a lookup is usually one cache line plus the key compare.
// Most lookups miss, and the slot array of a 30k vocabulary (1.5 MB) does not
// stay in cache, so a one-hash filter of 8 bits per key (32 KB for 30k keys,
// about 12% false positives) answers most misses without touching it.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace nlpflow {

class PieceTable {
 public:
  // Builds the table. The bytes the keys view must outlive it and not move.
  // For a key given twice the later id wins.
  void Build(const std::vector<std::pair<std::string_view, int32_t>>& entries) {
    size_t capacity = 16;
    while (capacity < 2 * entries.size()) capacity *= 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    filter_shift_ = 64 - 6;  // 64 bits, the filter's minimum
    while ((uint64_t{1} << (64 - filter_shift_)) < 8 * entries.size()) --filter_shift_;
    filter_.assign((size_t{1} << (64 - filter_shift_)) / 64, 0);
    max_key_bytes_ = 0;
    for (const auto& [key, id] : entries) {
      const uint64_t hash = Hash(key);
      const uint64_t bit = hash >> filter_shift_;
      filter_[bit / 64] |= uint64_t{1} << (bit % 64);
      size_t i = hash & mask_;
      while (slots_[i].id >= 0 && !Equal(slots_[i], hash, key)) i = (i + 1) & mask_;
      slots_[i] = Slot{hash, key.data(), static_cast<uint32_t>(key.size()), id};
      if (key.size() > max_key_bytes_) max_key_bytes_ = key.size();
    }
  }

  // The id of key, or -1.
  int32_t Find(std::string_view key) const {
    if (slots_.empty()) return -1;
    const uint64_t hash = Hash(key);
    const uint64_t bit = hash >> filter_shift_;
    if (!(filter_[bit / 64] >> (bit % 64) & 1)) return -1;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (Equal(s, hash, key)) return s.id;
    }
  }

  // The longest key, in bytes: longer slices cannot match.
  size_t max_key_bytes() const { return max_key_bytes_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    const char* data = nullptr;
    uint32_t size = 0;
    int32_t id = -1;  // -1: empty slot
  };

  static bool Equal(const Slot& s, uint64_t hash, std::string_view key) {
    return s.hash == hash && s.size == key.size() &&
           (key.empty() || std::memcmp(s.data, key.data(), key.size()) == 0);
  }

  // 8 bytes at a time with a multiply-xorshift mix; pieces are short.
  static uint64_t Hash(std::string_view key) {
    constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
    uint64_t h = key.size() * kMul;
    const char* p = key.data();
    size_t n = key.size();
    for (; n >= 8; p += 8, n -= 8) {
      uint64_t chunk;
      std::memcpy(&chunk, p, 8);
      h = (h ^ chunk) * kMul;
      h ^= h >> 32;
    }
    if (n > 0) {
      uint64_t chunk = 0;
      std::memcpy(&chunk, p, n);
      h = (h ^ chunk) * kMul;
    }
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  // Bit (hash >> filter_shift_) is set for every key. Slot indexes use the
  // low bits of the hash, the filter the high bits.
  std::vector<uint64_t> filter_;
  int filter_shift_ = 58;
  size_t max_key_bytes_ = 0;
};

}  // namespace nlpflow
