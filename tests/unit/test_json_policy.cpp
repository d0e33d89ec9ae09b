// The product's JSON policy (util/json_out.h): target strings are data (invalid UTF-8 is
// replaced, never an exception), JSON read from files has a bounded depth, and no code in
// userspace/ dumps or parses JSON around the two helpers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "model/frame_json.h"
#include "model/model.h"
#include "util/json_out.h"

namespace ss = schedscope;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST(JsonPolicy, InvalidUtf8IsReplacedNotThrown) {
  nlohmann::json j = {{"name", std::string("ab\xff\xfe"
                                           "c")},
                      {"ok", "\xe2\x82\xac"}};
  EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);  // the library default
  std::string out;
  ASSERT_NO_THROW(out = ss::dump_json(j));
  EXPECT_NE(out.find("ab\xef\xbf\xbd"), std::string::npos) << out;  // U+FFFD
  EXPECT_NE(out.find("\xe2\x82\xac"), std::string::npos) << out;    // valid UTF-8 kept
  EXPECT_TRUE(nlohmann::json::accept(out));
  ASSERT_NO_THROW(out = ss::dump_json(j, 2));
  EXPECT_TRUE(nlohmann::json::accept(out));
}

TEST(JsonPolicy, FrameWithHostileThreadNameDumps) {
  ss::model::Frame f;
  ss::model::ThreadRow t;
  t.tid = 7;
  t.name = std::string("\xc3(\x1b[2J\xff", 7);
  t.go_func = "main.\xfe";
  f.threads.push_back(t);
  f.target.exe = "/tmp/\x80\x81";
  std::string out;
  ASSERT_NO_THROW(out = ss::dump_json(ss::model::frame_to_json(f)));
  auto back = nlohmann::json::parse(out);
  EXPECT_EQ(back["threads"][0]["name"].get<std::string>().find('\x1b'), 1 + 3u);
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "control byte must be escaped";
}

TEST(JsonPolicy, DepthIsBounded) {
  auto nest = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  auto parse = [](const std::string& s, std::string* why) {
    return ss::parse_json_bounded(reinterpret_cast<const uint8_t*>(s.data()), s.size(), why);
  };
  std::string why;
  EXPECT_TRUE(parse(nest(ss::kMaxJsonDepth), &why));
  EXPECT_FALSE(parse(nest(ss::kMaxJsonDepth + 1), &why));
  EXPECT_NE(why.find("nested deeper"), std::string::npos) << why;
  // A million levels: rejected by the pre-scan, quickly, without touching the stack.
  EXPECT_FALSE(parse(std::string(1 << 20, '{'), &why));
  EXPECT_FALSE(parse(nest(1 << 20), &why));
  // Brackets in strings (with escaped quotes) do not count.
  std::string s = "{\"a\":\"" + std::string(500, '[') + "\\\"" + std::string(500, '{') + "\"}";
  auto j = parse(s, &why);
  ASSERT_TRUE(j) << why;
  EXPECT_EQ((*j)["a"].get<std::string>().size(), 1001u);
  EXPECT_FALSE(parse("{\"a\":", &why));
  EXPECT_EQ(why, "not valid JSON");
  EXPECT_FALSE(
      ss::parse_json_bounded(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &why, 10));
  EXPECT_NE(why.find("more than the 10"), std::string::npos) << why;
}

// The rule itself: every JSON text in the product is written by dump_json() and read by
// parse_json_bounded(). (A json .dump() has no argument or one indent argument; other
// dump(...) methods take several.)
TEST(JsonPolicy, NoRawDumpOrParseInTheProduct) {
  const std::filesystem::path root = std::filesystem::path(SCHEDSCOPE_SOURCE_DIR) / "userspace";
  const std::regex raw_dump(R"(\.dump\(\s*[A-Za-z0-9_]*\s*\))");
  const std::regex raw_parse(
      R"(json::(parse|from_cbor|from_msgpack|from_bson|from_ubjson)\s*\(|>>\s*\w*json)");
  std::vector<std::string> offenders;
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    const auto ext = e.path().extension();
    if (!e.is_regular_file() || (ext != ".cpp" && ext != ".h")) continue;
    if (e.path().filename() == "json_out.cpp") continue;
    ++files;
    std::istringstream in(slurp(e.path()));
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.find("//") != std::string::npos) line = line.substr(0, line.find("//"));
      if (std::regex_search(line, raw_dump) || std::regex_search(line, raw_parse))
        offenders.push_back(e.path().lexically_relative(root).string() + ":" + std::to_string(n) +
                            ": " + line);
    }
  }
  EXPECT_GT(files, 50u) << "source tree not found under " << root;
  std::string all;
  for (const auto& o : offenders) all += o + "\n";
  EXPECT_TRUE(offenders.empty()) << "use dump_json()/parse_json_bounded() (util/json_out.h):\n"
                                 << all;
}
