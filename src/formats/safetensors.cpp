#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dseek {

using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path, FileAccess access) {
  SafetensorsFile f;
  f.path_ = path;
  f.file_ = map_file(path, access);
  const size_t size = f.file_->size;
  if (size < 8) fail("{}: file too small for a safetensors header ({} bytes)", path, size);
  uint64_t n;
  std::memcpy(&n, f.file_->data, 8);
  if (n > size - 8) fail("{}: header length {} exceeds the file size {}", path, n, size);
  if (n > kMaxHeaderBytes) fail("{}: header length {} is implausibly large", path, n);
  f.data_start_ = 8 + size_t(n);
  const size_t data_size = size - f.data_start_;

  json header = json::parse(f.file_->data + 8, f.file_->data + 8 + n, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) fail("{}: header is not valid JSON", path);
  if (!header.is_object()) fail("{}: header is not a JSON object", path);

  std::vector<std::pair<size_t, size_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail("{}: __metadata__ is not an object", path);
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail("{}: __metadata__ value '{}' is not a string", path, m.key());
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) fail("{}: tensor '{}': entry is not an object", path, name);
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail("{}: tensor '{}': missing or invalid dtype", path, name);
    auto dt = dtype_from_name(v["dtype"].get<std::string>());
    if (!dt) fail("{}: tensor '{}': unknown dtype '{}'", path, name, v["dtype"].get<std::string>());
    if (!v.contains("shape") || !v["shape"].is_array()) fail("{}: tensor '{}': missing or invalid shape", path, name);
    Entry e;
    e.dtype = *dt;
    uint64_t numel = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned()) fail("{}: tensor '{}': shape has a non-integer or negative dimension", path, name);
      uint64_t dim = d.get<uint64_t>();
      if (dim > (1ull << 48) || !checked_mul(numel, dim, numel))
        fail("{}: tensor '{}': shape is too large", path, name);
      e.shape.push_back(int64_t(dim));
    }
    const json& off = v.contains("data_offsets") ? v["data_offsets"] : json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail("{}: tensor '{}': missing or invalid data_offsets", path, name);
    uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en) fail("{}: tensor '{}': data_offsets begin {} > end {}", path, name, b, en);
    if (en > data_size)
      fail("{}: tensor '{}': data_offsets end {} exceeds the data section ({} bytes); file truncated?", path, name,
           en, data_size);
    uint64_t bytes;
    if (!checked_mul(numel, dtype_size(e.dtype), bytes) || bytes != en - b)
      fail("{}: tensor '{}': {} bytes at data_offsets, but dtype {} and shape {} need {}", path, name, en - b,
           dtype_name(e.dtype), shape_str(e.shape), numel * dtype_size(e.dtype));
    e.begin = size_t(b);
    e.end = size_t(en);
    ranges.emplace_back(e.begin, e.end);
    f.entries_.emplace(name, std::move(e));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); i++)
    if (ranges[i].first < ranges[i - 1].second) fail("{}: tensors overlap in the data section", path);
  return f;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : entries_) out.push_back(k);
  return out;
}

std::pair<DType, Shape> SafetensorsFile::info(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail("{}: no tensor named '{}'", path_, name);
  return {it->second.dtype, it->second.shape};
}

Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail("{}: no tensor named '{}'", path_, name);
  const Entry& e = it->second;
  void* p = const_cast<uint8_t*>(file_->data + data_start_ + e.begin);
  Tensor t = Tensor::view(e.dtype, e.shape, p, file_);
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(e.dtype) != 0) t = t.clone();
  return t;
}

WeightFiles WeightFiles::open(const std::string& path) {
  namespace fs = std::filesystem;
  WeightFiles w;
  w.origin_ = path;
  std::vector<std::string> files;
  if (fs::is_directory(path)) {
    std::string index = path_join(path, "model.safetensors.index.json");
    if (fs::exists(index)) {
      json j = json::parse(read_file(index), nullptr, false);
      if (j.is_discarded() || !j.is_object()) fail("{}: not valid JSON", index);
      if (!j.contains("weight_map") || !j["weight_map"].is_object()) fail("{}: missing weight_map", index);
      std::map<std::string, size_t> file_ids;
      std::vector<std::pair<std::string, std::string>> mapping;
      for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        if (!it.value().is_string()) fail("{}: weight_map['{}'] is not a string", index, it.key());
        std::string file = it.value().get<std::string>();
        if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
          fail("{}: weight_map['{}'] names a file outside the folder: {}", index, it.key(), file);
        if (!file_ids.count(file)) {
          file_ids[file] = w.files_.size();
          w.files_.push_back(SafetensorsFile::open(path_join(path, file), FileAccess::ResidentIfFits));
        }
        mapping.emplace_back(it.key(), file);
      }
      for (auto& [name, file] : mapping) {
        const SafetensorsFile& sf = w.files_[file_ids[file]];
        if (!sf.contains(name)) fail("{}: index maps '{}' to {}, which does not contain it", index, name, file);
        w.where_[name] = file_ids[file];
      }
      return w;
    }
    // As transformers: model.safetensors when present (other *.safetensors beside it, e.g. reference outputs,
    // are not weights); otherwise every *.safetensors file in the folder.
    if (fs::exists(path_join(path, "model.safetensors"))) files.push_back(path_join(path, "model.safetensors"));
    else
      for (const auto& ent : fs::directory_iterator(path))
        if (ent.path().extension() == ".safetensors") files.push_back(ent.path().string());
    std::sort(files.begin(), files.end());
    if (files.empty()) fail("{}: no model.safetensors.index.json or *.safetensors files", path);
  } else {
    files.push_back(path);
  }
  for (const auto& file : files) {
    w.files_.push_back(SafetensorsFile::open(file, FileAccess::ResidentIfFits));
    for (const auto& name : w.files_.back().names()) {
      if (w.where_.count(name)) fail("{}: tensor '{}' appears in more than one file", path, name);
      w.where_[name] = w.files_.size() - 1;
    }
  }
  return w;
}

Tensor WeightFiles::get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail("{}: missing tensor '{}'", origin_, name);
  return files_[it->second].get(name);
}

std::pair<DType, Shape> WeightFiles::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail("{}: missing tensor '{}'", origin_, name);
  return files_[it->second].info(name);
}

std::vector<std::string> WeightFiles::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : where_) out.push_back(k);
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    DSEEK_CHECK(!header.contains(name), "{}: duplicate tensor name '{}'", path, name);
    header[name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  write_file_atomic(path, [&](FileWriter& w) {
    uint64_t n = h.size();
    w.write(&n, 8);
    w.write(h);
    for (const auto& [name, t] : tensors) w.write(t.data, t.nbytes());
  });
}

void save_safetensors_dir(const std::string& dir, const NamedTensors& tensors, size_t max_shard_bytes,
                          const std::map<std::string, std::string>& metadata) {
  make_dirs(dir);
  std::vector<NamedTensors> shards(1);
  size_t current = 0, total = 0;
  for (const auto& nt : tensors) {
    if (current > 0 && current + nt.second.nbytes() > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(nt);
    current += nt.second.nbytes();
    total += nt.second.nbytes();
  }
  if (shards.size() == 1) {
    save_safetensors(path_join(dir, "model.safetensors"), tensors, metadata);
    return;
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", json::object()}};
  for (size_t i = 0; i < shards.size(); i++) {
    std::string file = fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    save_safetensors(path_join(dir, file), shards[i], metadata);
    for (const auto& [name, t] : shards[i]) index["weight_map"][name] = file;
  }
  write_file_atomic(path_join(dir, "model.safetensors.index.json"), index.dump(2) + "\n");
}

}  // namespace dseek
