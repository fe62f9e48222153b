// Files: read-only memory maps, whole-file reads, and atomic writes (temporary file, fsync, rename).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace dseek {

// A read-only view of a whole file (a memory map or a resident copy); shared so tensors can keep it alive.
struct MappedFile {
  std::string path;
  const uint8_t* data = nullptr;
  size_t size = 0;
  bool resident = false;  // read into anonymous (huge-page) memory rather than mapped
  void* region = nullptr;  // what to munmap
  size_t region_size = 0;
  ~MappedFile();
};

enum class FileAccess {
  Map,             // mmap the file (pages fault in on first touch)
  ResidentIfFits,  // read into 2 MiB-aligned anonymous memory advised for transparent huge pages when the file
                   // takes at most half of MemAvailable (else Map); DSEEK_MMAP=1 forces Map
};
std::shared_ptr<MappedFile> map_file(const std::string& path, FileAccess access = FileAccess::Map);

std::string read_file(const std::string& path);

// Writes a file so that readers see either the old or the complete new content: `write` fills a
// temporary file next to `path`, which is flushed to disk and renamed over `path`.
class FileWriter {
 public:
  explicit FileWriter(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  size_t written() const { return written_; }

 private:
  int fd_;
  std::string path_;
  size_t written_ = 0;
};
void write_file_atomic(const std::string& path, const std::function<void(FileWriter&)>& write);
void write_file_atomic(const std::string& path, std::string_view content);

bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
void make_dirs(const std::string& path);
std::string path_join(const std::string& a, const std::string& b);

}  // namespace dseek
