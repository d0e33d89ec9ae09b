// scripts/install-deps.sh --backports-source: the apt source of the optional go1.23
// toolchain (bookworm-backports) comes from the mirror the machine already uses, read from
// fake apt directories (SCHEDSCOPE_APT_DIR) in one-line and deb822 formats.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {

class AptDir {
 public:
  AptDir() {
    char tmpl[] = "/tmp/schedscope-aptdir-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    fs::create_directories(dir_ / "sources.list.d");
  }
  ~AptDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void write(const std::string& rel, const std::string& text) const {
    std::ofstream(dir_ / rel) << text;
  }
  // {exit status, stdout + stderr} of the script on this directory.
  std::pair<int, std::string> backports_source(const std::string& codename = "bookworm") const {
    const std::string cmd =
        "SCHEDSCOPE_APT_DIR='" + dir_.string() + "' SCHEDSCOPE_OS_CODENAME=" + codename +
        " bash '" + SCHEDSCOPE_SOURCE_DIR + "/scripts/install-deps.sh' --backports-source 2>&1";
    FILE* f = popen(cmd.c_str(), "r");
    std::string out;
    char buf[256];
    while (f != nullptr && fgets(buf, sizeof buf, f) != nullptr) out += buf;
    const int rc = f != nullptr ? pclose(f) : -1;
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
  }

 private:
  fs::path dir_;
};

std::string stanza(const std::string& uri, const std::string& suite, const std::string& key) {
  return "Types: deb\nURIs: " + uri + "\nSuites: " + suite +
         "\nComponents: main\nSigned-By: " + key + "\n";
}

}  // namespace

TEST(InstallDepsBackports, Deb822MirrorAndKeyOfTheMainSuite) {
  AptDir d;
  d.write("sources.list.d/debian.sources",
          "Types: deb\n# comment\nURIs: http://mirror.example.internal/debian\n"
          "Suites: bookworm bookworm-updates\nComponents: main\n"
          "Signed-By: /usr/share/keyrings/example.gpg\n\n"
          "Types: deb\nURIs: http://security.example.internal/debian-security\n"
          "Suites: bookworm-security\nComponents: main\n");
  // Disabled stanzas and files apt does not read are ignored.
  d.write("sources.list.d/old.sources",
          "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm-backports\n"
          "Enabled: no\n");
  d.write("sources.list.d/x.list.disabled",
          "deb http://x.example/debian bookworm-backports main\n");
  auto [rc, out] = d.backports_source();
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, stanza("http://mirror.example.internal/debian", "bookworm-backports",
                        "/usr/share/keyrings/example.gpg"));
}

TEST(InstallDepsBackports, OneLineFormatWithOptionsSkipsComments) {
  AptDir d;
  d.write("sources.list",
          "# deb http://commented.example/debian bookworm main\n"
          "deb-src http://src.example/debian bookworm main\n"
          "deb [arch=amd64 signed-by=/etc/apt/k.gpg] https://apt.corp.example/debian bookworm "
          "main contrib\n"
          "deb http://second.example/debian bookworm main\n");
  auto [rc, out] = d.backports_source();
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, stanza("https://apt.corp.example/debian", "bookworm-backports", "/etc/apt/k.gpg"));
  // The codename decides which entries count.
  d.write("sources.list", "deb http://tr.example/debian trixie main\n");
  auto [rc2, out2] = d.backports_source("trixie");
  EXPECT_EQ(rc2, 0) << out2;
  EXPECT_EQ(out2, stanza("http://tr.example/debian", "trixie-backports",
                         "/usr/share/keyrings/debian-archive-keyring.gpg"));
}

TEST(InstallDepsBackports, NothingWhenConfiguredFallbackWhenNoDebianEntry) {
  AptDir d;
  d.write("sources.list.d/a.list",
          "deb http://x.example/debian bookworm main\n"
          "deb http://x.example/debian bookworm-backports main\n");
  auto [rc, out] = d.backports_source();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "");
  AptDir e;
  e.write("sources.list", "deb http://x.example/ubuntu jammy main\n");
  auto [rc2, out2] = e.backports_source();
  EXPECT_EQ(rc2, 0);
  EXPECT_NE(out2.find("no \"deb URI bookworm\" entry"), std::string::npos) << out2;
  EXPECT_NE(out2.find(stanza("http://deb.debian.org/debian", "bookworm-backports",
                             "/usr/share/keyrings/debian-archive-keyring.gpg")),
            std::string::npos)
      << out2;
}
