// safetensors: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data.
// Reading maps the file and validates every entry against the file size before any tensor is touched.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/fileio.h"
#include "core/tensor.h"

namespace dseek {

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path, FileAccess access = FileAccess::Map);

  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  std::vector<std::string> names() const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Zero-copy view of the mapped bytes (copied only if misaligned for its dtype).
  Tensor get(const std::string& name) const;
  // Metadata of one entry without touching data.
  std::pair<DType, Shape> info(const std::string& name) const;

 private:
  struct Entry {
    DType dtype;
    Shape shape;
    size_t begin, end;
  };
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  size_t data_start_ = 0;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A set of safetensors files seen as one name space: a directory with model.safetensors.index.json,
// a directory with *.safetensors files, or a single .safetensors file.
class WeightFiles {
 public:
  static WeightFiles open(const std::string& path);
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  Tensor get(const std::string& name) const;  // error naming the tensor if absent
  std::pair<DType, Shape> info(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes one safetensors file atomically.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Writes `dir`/model.safetensors, or shards model-0000i-of-0000n.safetensors plus
// model.safetensors.index.json when the total exceeds `max_shard_bytes`.
void save_safetensors_dir(const std::string& dir, const NamedTensors& tensors, size_t max_shard_bytes,
                          const std::map<std::string, std::string>& metadata = {});

}  // namespace dseek
