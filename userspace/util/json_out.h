// The one JSON policy of the product. Strings in our JSON come from the target (thread
// names, the executable path, function names of its pclntab, USDT notes) and from
// recordings made elsewhere: they are data, never a reason to fail. Every JSON text the
// product writes goes through dump_json() (invalid UTF-8 becomes U+FFFD; control bytes are
// escaped by JSON itself), and every JSON text it reads from a file goes through
// parse_json_bounded() (nesting depth bounded before the parser sees it, so a hostile file
// cannot exhaust the stack). A unit test (tests/unit/test_json_policy.cpp) rejects any
// other .dump( or json::parse in userspace/.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>

namespace schedscope {

// Deeper than anything the product writes (its deepest documents nest about 6 levels).
inline constexpr int kMaxJsonDepth = 128;

// j as text: compact when indent < 0, else pretty with `indent` spaces. Never throws on
// invalid UTF-8 (replaced by U+FFFD).
std::string dump_json(const nlohmann::json& j, int indent = -1);

// Parses untrusted JSON text. nullopt (with *why, one line) when it is not JSON, nests
// deeper than kMaxJsonDepth, or is larger than max_bytes.
std::optional<nlohmann::json> parse_json_bounded(const uint8_t* data, size_t size,
                                                 std::string* why = nullptr,
                                                 size_t max_bytes = size_t{64} << 20);

// Deepest [ / { nesting of a JSON text (brackets inside strings do not count); stops
// counting as soon as `limit` is exceeded and returns limit + 1.
int json_nesting_depth(const uint8_t* data, size_t size, int limit = kMaxJsonDepth);

// Reads j[k] into v when it is a finite number that fits T; leaves v as it was otherwise
// (recordings made elsewhere may hold anything).
template <typename T>
void json_get_num(const nlohmann::json& j, const char* k, T& v) {
  auto it = j.find(k);
  if (it == j.end() || !it->is_number()) return;
  double d = it->get<double>();
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isfinite(d)) v = T(d);
  } else {
    if (d >= double(std::numeric_limits<T>::min()) && d <= double(std::numeric_limits<T>::max()))
      v = it->is_number_unsigned() ? T(it->get<uint64_t>()) : T(it->get<int64_t>());
  }
}

}  // namespace schedscope
