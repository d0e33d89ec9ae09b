// The parsers and range checks behind every duration and size flag (util/units.h) and
// the CLI validators built on them (app/cli_checks.h).
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cmath>

#include "app/cli_checks.h"
#include "util/units.h"

using namespace schedscope;

TEST(UnitsParse, DurationUnits) {
  EXPECT_DOUBLE_EQ(*parse_duration("250ns"), 250e-9);
  EXPECT_DOUBLE_EQ(*parse_duration("3us"), 3e-6);
  EXPECT_DOUBLE_EQ(*parse_duration("10ms"), 0.01);
  EXPECT_DOUBLE_EQ(*parse_duration("1.5"), 1.5);
  EXPECT_DOUBLE_EQ(*parse_duration(".5s"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_duration("2min"), 120.0);
  EXPECT_DOUBLE_EQ(*parse_duration("2h"), 7200.0);
  EXPECT_DOUBLE_EQ(*parse_duration("0"), 0.0);
}

TEST(UnitsParse, DurationRejectsSignsExponentsAndJunk) {
  for (const char* s : {"-1", "-0.5s", "+1s", "1e3", "1e400", "inf", "nan", "0x10", " 1s", "1s ",
                        "1 s", "1..2s", ".", "s", "1ss", "1S", "1d"})
    EXPECT_FALSE(parse_duration(s)) << s;
}

TEST(UnitsParse, DurationRejectsOverflow) {
  // Every accepted duration converts to 64-bit nanoseconds.
  EXPECT_TRUE(parse_duration("277777h"));  // ~1e9 s
  EXPECT_FALSE(parse_duration("277778h"));
  EXPECT_FALSE(parse_duration("99999999999999999999999999h"));
  EXPECT_FALSE(parse_duration(std::string(400, '9')));
  auto v = parse_duration("277777h");
  EXPECT_LT(*v * 1e9, 9.2e18);
}

TEST(UnitsParse, SizeUnitsAndOverflow) {
  EXPECT_EQ(*parse_size("4K"), 4096u);
  EXPECT_EQ(*parse_size("1.5K"), 1536u);
  EXPECT_EQ(*parse_size("4G"), 4ull << 30);  // 64 bits: no wrap to 0
  EXPECT_EQ(*parse_size("8mb"), 8u << 20);
  EXPECT_EQ(*parse_size("1048576G"), kMaxSizeBytes);
  EXPECT_FALSE(parse_size("1048577G"));
  EXPECT_FALSE(parse_size("99999999999999999999G"));
  for (const char* s : {"-1", "-4K", "+4K", "1e9", "inf", "0x1000", " 4K", "4 K", "4KK", "4P"})
    EXPECT_FALSE(parse_size(s)) << s;
}

TEST(UnitsCheck, DurationRange) {
  EXPECT_EQ(check_duration("10ms", 0.01, 3600), "");
  EXPECT_EQ(check_duration("1h", 0.01, 3600), "");
  EXPECT_EQ(check_duration("0.01", 0.01, 3600), "");
  auto below = check_duration("0.5ns", 0.01, 3600);
  EXPECT_NE(below.find("below the minimum of 10ms"), std::string::npos) << below;
  EXPECT_NE(below.find("10ms to 1h"), std::string::npos) << below;
  EXPECT_NE(check_duration("0", 0.01, 3600).find("below"), std::string::npos);
  EXPECT_NE(check_duration("61m", 0.01, 3600).find("above the maximum of 1h"), std::string::npos);
  // Too large for parse_duration: still reported as too long, not as garbage.
  EXPECT_NE(check_duration("99999999999999h", 0.01, 3600).find("above"), std::string::npos);
  EXPECT_NE(check_duration("soon", 0.01, 3600).find("not a duration"), std::string::npos);
  EXPECT_EQ(check_duration("soon", 0.01, 3600).find('\n'), std::string::npos);
}

TEST(UnitsCheck, SizeRange) {
  EXPECT_EQ(check_size("1K", 1024, 1ull << 30), "");
  EXPECT_NE(check_size("1023", 1024, 1ull << 30).find("below the minimum of 1K"),
            std::string::npos);
  EXPECT_NE(check_size("2G", 1024, 1ull << 30).find("above the maximum of 1G"), std::string::npos);
  EXPECT_NE(check_size("-1", 1024, 1ull << 30).find("not a size"), std::string::npos);
}

TEST(UnitsCheck, RingbufIsAPowerOfTwoMultipleOfThePage) {
  for (const char* ok : {"4K", "64K", "8M", "1G", "4096"})
    EXPECT_EQ(check_ringbuf_size(ok), "") << ok;
  // 4G wrapped to 0 in the 32-bit max_entries; 3 and 12K were rounded silently.
  for (const char* bad : {"4G", "2G", "3", "0", "2K", "12K", "1.5M", "4097"}) {
    auto e = check_ringbuf_size(bad);
    EXPECT_NE(e.find("power of two multiple of the page size"), std::string::npos)
        << bad << ": " << e;
    EXPECT_NE(e.find("4K to 1G"), std::string::npos) << e;
  }
}

TEST(UnitsFormat, Durations) {
  EXPECT_EQ(format_duration(0.01), "10ms");
  EXPECT_EQ(format_duration(3600), "1h");
  EXPECT_EQ(format_duration(8760 * 3600.0), "8760h");
  EXPECT_EQ(format_duration(1e-6), "1us");
  EXPECT_EQ(format_duration(90), "90s");
  EXPECT_EQ(format_duration(1.5), "1500ms");
  EXPECT_EQ(format_duration(1.25e-4), "125us");
  EXPECT_EQ(format_size(64 << 10), "64K");
  EXPECT_EQ(format_size(1ull << 30), "1G");
  EXPECT_EQ(format_size(4097), "4097");
}

namespace {
// Parses `top`-like flags with the validators main() uses; returns the CLI11 error or "".
std::string parse(CLI::Validator v, const std::string& value) {
  CLI::App app;
  std::string s;
  app.add_option("--x", s)->check(v);
  std::vector<std::string> args = {value, "--x"};  // CLI11 takes them reversed
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(CliChecks, EveryFlagHasItsRange) {
  using namespace schedscope::app;
  EXPECT_NE(parse(duration_flag(kIntervalRange), "0.5ns"), "");
  EXPECT_NE(parse(duration_flag(kIntervalRange), "9ms"), "");
  EXPECT_EQ(parse(duration_flag(kIntervalRange), "10ms"), "");
  EXPECT_NE(parse(duration_flag(kDurationRange), "0"), "");
  EXPECT_NE(parse(duration_flag(kEveryRange), "0.5s"), "");
  EXPECT_NE(parse(duration_flag(kFlightWindowRange), "0s"), "");
  EXPECT_NE(parse(duration_flag(kThresholdRange), "0"), "");
  EXPECT_EQ(parse(duration_flag(kThresholdRange), "1ms"), "");
  EXPECT_NE(parse(size_flag(kMaxBytesRange), "0"), "");
  EXPECT_NE(parse(size_flag(kFlightMemoryRange), "100K"), "");
  EXPECT_NE(parse(ringbuf_flag(), "4G"), "");
  EXPECT_EQ(parse(ringbuf_flag(), "8M"), "");
}

TEST(CliChecks, PidAndCount) {
  using namespace schedscope::app;
  EXPECT_NE(parse(pid_flag(), "0").find("positive"), std::string::npos);
  EXPECT_NE(parse(pid_flag(), "-5"), "");
  EXPECT_NE(parse(pid_flag(), "12abc"), "");
  EXPECT_NE(parse(pid_flag(), "99999999999999999999"), "");
  EXPECT_EQ(parse(pid_flag(), "4242"), "");
  EXPECT_NE(parse(count_flag(), "-1").find("0 (until the target exits"), std::string::npos);
  EXPECT_NE(parse(count_flag(), "3000000000"), "");
  EXPECT_EQ(parse(count_flag(), "0"), "");
  EXPECT_EQ(parse(count_flag(), "10"), "");
}
