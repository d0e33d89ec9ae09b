// Counts by key, most first (ties keep the key order): the "top N" lines of alerts,
// evidence and text output.
#pragma once
#include <algorithm>
#include <utility>
#include <vector>

namespace schedscope {

template <class Pairs>
void sort_most_first(Pairs& v) {
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
}

template <class Map>
std::vector<std::pair<typename Map::key_type, typename Map::mapped_type>> most_first(const Map& m) {
  std::vector<std::pair<typename Map::key_type, typename Map::mapped_type>> v(m.begin(), m.end());
  sort_most_first(v);
  return v;
}

}  // namespace schedscope
