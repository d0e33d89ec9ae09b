#include "usdt/notes.h"

#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace schedscope::usdt {

namespace {

constexpr uint32_t kNtStapsdt = 3;

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// "%rax" / "%eax" / ... -> "rax"; "" when not a register operand.
std::string reg_of(const std::string& s) {
  if (s.size() < 2 || s[0] != '%') return "";
  return s.substr(1);
}

bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 0);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  *out = v;
  return true;
}

Arg parse_one(const std::string& tok) {
  Arg a;
  a.spec = tok;
  std::string op = tok;
  if (auto at = tok.find('@'); at != std::string::npos) {
    int64_t sz = 0;
    if (parse_int(tok.substr(0, at), &sz) && sz != 0 && sz >= -8 && sz <= 8) {
      a.is_signed = sz < 0;
      a.size = int(sz < 0 ? -sz : sz);
    }
    op = tok.substr(at + 1);
  }
  if (op.empty()) return a;
  if (op[0] == '$') {
    if (parse_int(op.substr(1), &a.value)) a.kind = Arg::kConst;
    return a;
  }
  if (op[0] == '%') {
    a.reg = reg_of(op);
    a.kind = a.reg.empty() ? Arg::kUnknown : Arg::kReg;
    return a;
  }
  // disp(%reg) or (%reg); an index register (disp(%b,%i,s)) is not supported by libbpf.
  auto lp = op.find('('), rp = op.find(')');
  if (lp == std::string::npos || rp == std::string::npos || rp < lp) return a;
  std::string inner = op.substr(lp + 1, rp - lp - 1);
  if (inner.find(',') != std::string::npos) return a;
  int64_t disp = 0;
  if (lp > 0 && !parse_int(op.substr(0, lp), &disp)) return a;
  a.reg = reg_of(inner);
  if (a.reg.empty()) return a;
  a.value = disp;
  a.kind = Arg::kMem;
  return a;
}

uint64_t vaddr_to_offset(const elf::ElfFile& f, uint64_t addr) {
  for (const auto& s : f.segments()) {
    if (s.type != PT_LOAD) continue;
    if (addr >= s.vaddr && addr < s.vaddr + s.filesz) return addr - s.vaddr + s.offset;
  }
  // No program headers (relocatable objects): through the sections.
  for (const auto& s : f.sections()) {
    if (!(s.flags & SHF_ALLOC) || s.type == SHT_NOBITS) continue;
    if (addr >= s.addr && addr < s.addr + s.size) return addr - s.addr + s.offset;
  }
  return 0;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

std::string Arg::describe() const {
  std::string t = size ? (std::string(is_signed ? "s" : "u") + std::to_string(size * 8)) : "?";
  char buf[96];
  switch (kind) {
    case kConst:
      snprintf(buf, sizeof buf, "%s const %lld", t.c_str(), static_cast<long long>(value));
      break;
    case kReg:
      snprintf(buf, sizeof buf, "%s reg %%%s", t.c_str(), reg.c_str());
      break;
    case kMem:
      snprintf(buf, sizeof buf, "%s mem %lld(%%%s)", t.c_str(), static_cast<long long>(value),
               reg.c_str());
      break;
    default:
      snprintf(buf, sizeof buf, "%s unsupported %s", t.c_str(), spec.c_str());
  }
  return buf;
}

std::vector<Arg> parse_args(const std::string& spec) {
  std::vector<Arg> out;
  std::istringstream in(spec);
  std::string tok;
  while (in >> tok && out.size() < 64) out.push_back(parse_one(tok));
  return out;
}

Expected<std::vector<Probe>> parse_notes(const elf::ElfFile& f) {
  std::vector<Probe> out;
  const elf::Section* sec = f.section(".note.stapsdt");
  if (!sec) return out;
  if (sec->type != SHT_NOTE) return make_error(".note.stapsdt is not a note section");
  auto data = f.section_data(*sec);
  if (data.size() != sec->size) return make_error(".note.stapsdt is out of the file's bounds");
  // .stapsdt.base: its link-time address vs. the base recorded in each note tells how far
  // prelink moved the file.
  const elf::Section* base_sec = f.section(".stapsdt.base");
  const size_t asz = f.is_64() ? 8 : 4;
  auto rd = [&](size_t off) -> uint64_t {
    uint64_t v = 0;
    std::memcpy(&v, data.data() + off, asz);
    return v;
  };
  auto rd32 = [&](size_t off) {
    uint32_t v = 0;
    std::memcpy(&v, data.data() + off, 4);
    return v;
  };
  size_t off = 0;
  while (off + 12 <= data.size()) {
    uint32_t namesz = rd32(off), descsz = rd32(off + 4), type = rd32(off + 8);
    size_t name_off = off + 12;
    size_t name_len = (size_t(namesz) + 3) & ~size_t(3);
    if (namesz > data.size() || name_len > data.size() - name_off)
      return make_error("malformed note header at offset " + std::to_string(off));
    size_t desc_off = name_off + name_len;
    size_t desc_len = (size_t(descsz) + 3) & ~size_t(3);
    if (descsz > data.size() || desc_len > data.size() - desc_off)
      return make_error("malformed note descriptor at offset " + std::to_string(off));
    off = desc_off + desc_len;
    bool is_stapsdt = namesz == 8 &&
                      std::memcmp(data.data() + name_off, "stapsdt", 8) == 0 &&
                      type == kNtStapsdt;
    if (!is_stapsdt) continue;
    if (descsz < 3 * asz + 3) return make_error("stapsdt note descriptor too short");
    Probe p;
    p.pc = rd(desc_off);
    uint64_t base = rd(desc_off + asz);
    p.semaphore = rd(desc_off + 2 * asz);
    // Three NUL-terminated strings: provider, name, args.
    const char* s = reinterpret_cast<const char*>(data.data() + desc_off + 3 * asz);
    size_t left = descsz - 3 * asz;
    std::string strs[3];
    for (auto& str : strs) {
      const void* nul = std::memchr(s, 0, left);
      if (!nul) return make_error("stapsdt note strings are not terminated");
      size_t n = size_t(static_cast<const char*>(nul) - s);
      str.assign(s, n);
      s += n + 1;
      left -= n + 1;
    }
    p.provider = strs[0];
    p.name = strs[1];
    p.args_spec = trim(strs[2]);
    if (base_sec && base != 0) {
      uint64_t delta = base_sec->addr - base;
      p.pc += delta;
      if (p.semaphore) p.semaphore += delta;
    }
    p.file_offset = vaddr_to_offset(f, p.pc);
    if (p.semaphore) p.semaphore_offset = vaddr_to_offset(f, p.semaphore);
    p.args = parse_args(p.args_spec);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<std::string> mapped_files(int pid) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  char exe[4096];
  ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    out.emplace_back(exe);
    seen.insert(exe);
  }
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(in, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (path.size() > 10 && path.compare(path.size() - 10, 10, " (deleted)") == 0) continue;
    if (starts_with(path, "/dev/") || starts_with(path, "/memfd:") ||
        starts_with(path, "/SYSV"))
      continue;
    if (seen.insert(path).second) out.push_back(path);
  }
  return out;
}

FileProbes probes_of_file(const std::string& path) {
  FileProbes fp;
  fp.path = path;
  fp.open_path = path;
  auto f = elf::ElfFile::open(path);
  if (!f) {
    fp.error = f.error().message;
    return fp;
  }
  auto p = parse_notes(**f);
  if (!p) {
    fp.error = p.error().message;
    return fp;
  }
  fp.probes = std::move(*p);
  return fp;
}

std::vector<FileProbes> discover(int pid, bool keep_empty) {
  std::vector<FileProbes> out;
  auto files = mapped_files(pid);
  std::string root = "/proc/" + std::to_string(pid) + "/root";
  for (size_t i = 0; i < files.size(); i++) {
    // Through the process's root, so a containerised target's files are the ones read.
    std::string open_path = i == 0 ? "/proc/" + std::to_string(pid) + "/exe" : root + files[i];
    FileProbes fp = probes_of_file(open_path);
    fp.path = files[i];
    fp.open_path = open_path;
    fp.is_exe = i == 0;
    // Mapped non-ELF files (locale archives, class data sharing) are not worth a line.
    if (!fp.error.empty() && !keep_empty) continue;
    if (fp.probes.empty() && fp.error.empty() && !keep_empty) continue;
    out.push_back(std::move(fp));
  }
  return out;
}

nlohmann::json probe_to_json(const Probe& p) {
  nlohmann::json args = nlohmann::json::array();
  for (const auto& a : p.args) {
    const char* kind = a.kind == Arg::kConst ? "const"
                       : a.kind == Arg::kReg ? "reg"
                       : a.kind == Arg::kMem ? "mem"
                                             : "unsupported";
    nlohmann::json j = {{"spec", a.spec}, {"size", a.size}, {"signed", a.is_signed},
                        {"kind", kind}};
    if (!a.reg.empty()) j["reg"] = a.reg;
    if (a.kind == Arg::kConst) j["value"] = a.value;
    if (a.kind == Arg::kMem) j["offset"] = a.value;
    args.push_back(j);
  }
  return {{"provider", p.provider},
          {"name", p.name},
          {"pc", p.pc},
          {"file_offset", p.file_offset},
          {"semaphore", p.semaphore},
          {"semaphore_offset", p.semaphore_offset},
          {"args_spec", p.args_spec},
          {"args", args}};
}

nlohmann::json files_to_json(const std::vector<FileProbes>& files) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : files) {
    nlohmann::json probes = nlohmann::json::array();
    for (const auto& p : f.probes) probes.push_back(probe_to_json(p));
    nlohmann::json j = {{"file", f.path}, {"executable", f.is_exe}, {"probes", probes}};
    if (!f.error.empty()) j["error"] = f.error;
    out.push_back(j);
  }
  return out;
}

std::string detect_runtime(bool is_go, const std::vector<std::string>& files,
                           const std::vector<FileProbes>& probes) {
  if (is_go) return "go";
  auto base = [](const std::string& p) {
    auto s = p.rfind('/');
    return s == std::string::npos ? p : p.substr(s + 1);
  };
  for (const auto& f : files)
    if (base(f) == "libjvm.so") return "hotspot";
  for (const auto& fp : probes)
    for (const auto& p : fp.probes) {
      if (p.provider == "hotspot" || p.provider == "hs_private") return "hotspot";
      if (p.provider == "python") return "cpython";
    }
  for (const auto& f : files) {
    std::string b = base(f);
    if (starts_with(b, "libpython")) return "cpython";
  }
  return "unknown";
}

}  // namespace schedscope::usdt
