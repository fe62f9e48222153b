#include "core/fileio.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace dseek {

MappedFile::~MappedFile() {
  if (region && region_size) munmap(region, region_size);
}

namespace {

// MemAvailable of /proc/meminfo in bytes (0 if unknown).
size_t mem_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

// Reads the file into anonymous memory aligned to 2 MiB and advised for huge pages: decode streams expert
// matrices of a few hundred KB from all over the weights, and with 4 KiB file pages every step pays TLB
// misses, prefetchers stopping at page ends and (until every page was touched once) page faults.
bool read_resident(int fd, MappedFile& m) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t len = (m.size + kHuge - 1) / kHuge * kHuge + kHuge;
  void* base = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return false;
  uint8_t* p = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + kHuge - 1) & ~uintptr_t(kHuge - 1));
  madvise(p, len - size_t(p - static_cast<uint8_t*>(base)), MADV_HUGEPAGE);
  for (size_t done = 0; done < m.size;) {
    const ssize_t r = ::pread(fd, p + done, std::min<size_t>(m.size - done, size_t(64) << 20), off_t(done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int e = r < 0 ? errno : EIO;
      munmap(base, len);
      fail("{}: read failed: {}", m.path, std::strerror(e));
    }
    done += size_t(r);
  }
  mprotect(base, len, PROT_READ);
  m.data = p;
  m.region = base;
  m.region_size = len;
  m.resident = true;
  return true;
}

}  // namespace

std::shared_ptr<MappedFile> map_file(const std::string& path, FileAccess access) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("{}: cannot stat: {}", path, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{}: not a regular file", path);
  }
  auto m = std::make_shared<MappedFile>();
  m->path = path;
  m->size = size_t(st.st_size);
  const char* force_map = std::getenv("DSEEK_MMAP");
  if (m->size > 0 && access == FileAccess::ResidentIfFits && !(force_map && std::string(force_map) == "1") &&
      m->size <= mem_available() / 2) {
    try {
      if (read_resident(fd, *m)) {
        ::close(fd);
        return m;
      }
    } catch (...) {
      ::close(fd);
      throw;
    }
  }
  if (m->size > 0) {
    void* p = mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail("{}: cannot map: {}", path, std::strerror(e));
    }
    m->data = static_cast<const uint8_t*>(p);
    m->region = p;
    m->region_size = m->size;
  }
  ::close(fd);
  return m;
}

std::string read_file(const std::string& path) {
  if (is_directory(path)) fail("{}: is a folder, not a file", path);  // (an ifstream reads a folder as empty)
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void FileWriter::write(const void* data, size_t n) {
  auto p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("{}: write failed: {}", path_, std::strerror(errno));
    }
    p += w;
    n -= size_t(w);
    written_ += size_t(w);
  }
}

void write_file_atomic(const std::string& path, const std::function<void(FileWriter&)>& write) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create: {}", tmp, std::strerror(errno));
  try {
    FileWriter w(fd, tmp);
    write(w);
    if (::fsync(fd) != 0) fail("{}: fsync failed: {}", tmp, std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail("{}: close failed: {}", tmp, std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    fail("{}: cannot rename into place: {}", path, std::strerror(e));
  }
}

void write_file_atomic(const std::string& path, std::string_view content) {
  write_file_atomic(path, [&](FileWriter& w) { w.write(content); });
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }
bool is_directory(const std::string& path) { return std::filesystem::is_directory(path); }

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) fail("{}: cannot create directory: {}", path, ec.message());
}

std::string path_join(const std::string& a, const std::string& b) {
  return (std::filesystem::path(a) / b).string();
}

}  // namespace dseek
