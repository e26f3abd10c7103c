// Where photos, snapshots and capture images live, already SM4-sealed by anju (the store
// never sees plaintext). Keys are relative paths ("snapshots/2026/12/06/<id>.jpg.sealed").
// The embedded implementation is a directory of files, each written and fsynced before the
// row that names it commits; other implementations keep the bytes on a shared path or in
// the database (docs/architecture.md, "Blobs").
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace anju::server::runtime {

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Stores every (key, sealed bytes) durably before returning (a batch can share the cost
  // of making it durable). Overwrites an existing key. Error(kStorageFull) when full.
  virtual void PutMany(
      const std::vector<std::pair<std::string, std::span<const uint8_t>>>& blobs) = 0;
  void Put(const std::string& key, std::span<const uint8_t> sealed) { PutMany({{key, sealed}}); }
  // The bytes; Error(kNotFound) when absent.
  virtual std::vector<uint8_t> Get(const std::string& key) const = 0;
  virtual bool Exists(const std::string& key) const = 0;
  // Size in bytes; nullopt when absent.
  virtual std::optional<int64_t> Size(const std::string& key) const = 0;
  // Removes KEY (true when it existed).
  virtual bool Remove(const std::string& key) = 0;
  // Calls FN for every key under PREFIX (retention's orphan sweep); FN returns false to stop.
  virtual void List(const std::string& prefix,
                    const std::function<bool(const std::string& key)>& fn) const = 0;
  // Drops what removals left empty under PREFIX (a file store's emptied directories;
  // stores without directories have nothing to do). The caller keeps PutMany under PREFIX
  // away meanwhile: a directory about to receive a file could be taken.
  virtual void Prune(const std::string& prefix) { (void)prefix; }
};

}  // namespace anju::server::runtime
