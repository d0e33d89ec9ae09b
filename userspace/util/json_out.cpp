#include "util/json_out.h"

namespace schedscope {

std::string dump_json(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

int json_nesting_depth(const uint8_t* data, size_t size, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < size; ++i) {
    const uint8_t c = data[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) {
          return limit + 1;
        }
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::optional<nlohmann::json> parse_json_bounded(const uint8_t* data, size_t size, std::string* why,
                                                 size_t max_bytes) {
  auto fail = [&](std::string w) -> std::optional<nlohmann::json> {
    if (why != nullptr) {
      *why = std::move(w);
    }
    return std::nullopt;
  };
  if (size > max_bytes) {
    return fail("JSON text of " + std::to_string(size) + " bytes, more than the " +
                std::to_string(max_bytes) + " accepted");
  }
  if (json_nesting_depth(data, size) > kMaxJsonDepth) {
    return fail("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) {
    return fail("not valid JSON");
  }
  return j;
}

}  // namespace schedscope
