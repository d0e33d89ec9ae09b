// The layer check the build runs first (scripts/check-layers.py over userspace/): the real
// tree passes, and an include that reaches up, from a source or from a header, fails with
// the file, the line and the layer.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {

struct CheckRun {
  int rc = -1;
  std::string out;
};

CheckRun check(const fs::path& userspace) {
  std::string cmd = "python3 " SCHEDSCOPE_SOURCE_DIR "/scripts/check-layers.py '" +
                    userspace.string() + "' 2>&1";
  CheckRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// A copy of the layer table and one file per layer directory, with the given extra file.
fs::path tree(const std::string& name, const std::string& rel, const std::string& text) {
  fs::path root = fs::temp_directory_path() / ("ss-layers-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  fs::copy_file(fs::path(SCHEDSCOPE_SOURCE_DIR) / "userspace/layers.txt", root / "layers.txt");
  for (const char* d : {"util", "model", "detect", "ui"}) {
    fs::create_directories(root / d);
    std::ofstream(root / d / "a.h") << "#pragma once\n#include \"util/a.h\"\n";
  }
  fs::create_directories((root / rel).parent_path());
  std::ofstream(root / rel) << text;
  return root;
}

}  // namespace

TEST(Layers, TheTreeIncludesOnlyDownwards) {
  CheckRun r = check(fs::path(SCHEDSCOPE_SOURCE_DIR) / "userspace");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, "");
}

TEST(Layers, ASourceIncludingAHigherLayerFails) {
  fs::path root = tree("src", "detect/detectors.cpp",
                       "#include \"detect/a.h\"\n#include \"model/a.h\"\n#include \"ui/a.h\"\n");
  CheckRun r = check(root);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("detect/detectors.cpp:3: error: layer \"detect\" includes \"ui/a.h\" of "
                       "layer \"ui\", which is not below it"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find(":1:"), std::string::npos) << r.out;  // its own layer is fine
  EXPECT_EQ(r.out.find(":2:"), std::string::npos) << r.out;  // model is below detect
  fs::remove_all(root);
}

TEST(Layers, AHeaderReachingUpFailsToo) {
  // Never compiled in model's own library, so only the check sees it.
  fs::path root = tree("hdr", "model/frame.h", "#pragma once\n#include \"../ui/a.h\"\n");
  CheckRun r = check(root);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("model/frame.h:2: error: layer \"model\" includes \"../ui/a.h\" of layer "
                       "\"ui\""),
            std::string::npos)
      << r.out;
  fs::remove_all(root);
}

TEST(Layers, AGeneratedHeaderOfAnotherLayerAndAnUnlistedDirectoryFail) {
  fs::path root = tree("gen", "ui/live.cpp", "#include \"schedscope.skel.h\"\n");
  fs::create_directories(root / "newthing");
  CheckRun r = check(root);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("ui/live.cpp:1: error: layer \"ui\" includes \"schedscope.skel.h\", a "
                       "generated header only layer \"probe\" may include"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("newthing/: a directory that is not a layer"), std::string::npos) << r.out;
  fs::remove_all(root);
}
