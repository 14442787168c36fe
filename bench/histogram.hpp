#pragma once
// A log-linear latency histogram in the spirit of HdrHistogram: every power
// of two is split into 128 equal sub-buckets, so a recorded value is known
// to within 1/128 (< 0.8 %) from 1 ns to 2^36 ns (~69 s). Values above that
// land in the last bucket; min, max and the sum are kept exactly.
//
// Owner: one thread (billing-bench's io thread records, the main thread
// reads after the run). Not thread-safe; merge() combines histograms.
// Fixed size (~4.5 k counters), no allocation after construction.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace billing::bench {

class histogram {
public:
  static constexpr int sub_bits = 7;                   // 128 sub-buckets per octave
  static constexpr uint64_t sub_count = 1u << sub_bits;
  static constexpr int max_bits = 36;                  // 2^36 ns ~ 68.7 s
  static constexpr uint64_t max_trackable = (uint64_t{1} << max_bits) - 1;

  histogram() : counts_(index_of(max_trackable) + 1, 0) {}

  void record(uint64_t ns) noexcept {
    ++counts_[index_of(std::min(ns, max_trackable))];
    ++total_;
    sum_ += ns;
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
  }

  void merge(const histogram& o) noexcept {
    for (size_t i = 0; i < counts_.size(); ++i)
      counts_[i] += o.counts_[i];
    total_ += o.total_;
    sum_ += o.sum_;
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
  }

  uint64_t count() const noexcept { return total_; }
  uint64_t max() const noexcept { return total_ ? max_ : 0; }
  uint64_t min() const noexcept { return total_ ? min_ : 0; }
  double mean() const noexcept { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0; }

  // The value at quantile q (0..1): the upper end of the bucket holding the
  // ceil(q * count)-th smallest value, clamped to the exact max.
  uint64_t quantile(double q) const noexcept {
    if (total_ == 0)
      return 0;
    auto rank = static_cast<uint64_t>(q * static_cast<double>(total_) + 0.999999);
    rank = std::clamp<uint64_t>(rank, 1, total_);
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank)
        return std::min(upper_of(i), max_);
    }
    return max_;
  }

  // Bucket index of a value: exact below 2 * sub_count, then 128 sub-buckets
  // per octave.
  static size_t index_of(uint64_t v) noexcept {
    if (v < 2 * sub_count)
      return static_cast<size_t>(v);
    int shift = std::bit_width(v) - (sub_bits + 1); // v >> shift in [128, 256)
    return static_cast<size_t>(2 * sub_count + static_cast<uint64_t>(shift - 1) * sub_count
                               + ((v >> shift) - sub_count));
  }

  // Largest value that maps to bucket i.
  static uint64_t upper_of(size_t i) noexcept {
    if (i < 2 * sub_count)
      return i;
    uint64_t rest = i - 2 * sub_count;
    uint64_t shift = rest / sub_count + 1;
    uint64_t sub = rest % sub_count + sub_count;
    return ((sub + 1) << shift) - 1;
  }

private:
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
};

} // namespace billing::bench
