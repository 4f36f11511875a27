// The metadata store's inode numbers (meta_store.h next_ino,
// backend/ino_cipher.h): the persisted counter, its reserved ranges, and
// the shard's key for the permutation.
#include <openssl/rand.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>

#include "backend/meta_keys.h"
#include "backend/meta_store.h"

namespace lanefs::backend {
namespace {

constexpr std::string_view kInoSeqKey = "ino_seq";
constexpr std::string_view kInoKeyKey = "ino_key";  // InoCipher's key (16 random bytes)
constexpr uint64_t kFirstInoSeq = 16;
constexpr uint64_t kInoReserve = 1024;  // inode numbers reserved per synced counter write

}  // namespace

using namespace meta_keys;

// The shard's inode number key: made (random, synced) the first time a
// store is opened, then read at every open. Damaged: the store cannot hand
// out numbers that are sure not to repeat, so it does not start.
Result<InoCipher::Key> meta_keys::load_ino_key(rocksdb::DB* db, const std::string& path) {
  InoCipher::Key key{};
  std::string raw;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kv_key(kInoKeyKey), &raw);
  if (s.ok()) {
    if (raw.size() != key.size())
      return make_error(Errc::kCorrupt, "metadata store " + path + ": the inode number key is damaged (" +
                                            std::to_string(raw.size()) + " bytes); refusing to start");
    std::memcpy(key.data(), raw.data(), key.size());
    return key;
  }
  if (!s.IsNotFound())
    return make_error(Errc::kIo, "metadata store " + path + ": reading the inode number key: " + s.ToString());
  // No key: a new store, or one made before keyed numbers (every number it
  // gave is below InoCipher::kPermutedBit). A store holding a permuted
  // number has lost its key: a new one could repeat numbers.
  PrefixScan scan(db, std::string(1, kInode));
  for (scan.it()->SeekToFirst(); scan.it()->Valid(); scan.it()->Next())
    if (scan.it()->key().size() == 9 && (get_be64(scan.it()->key().data() + 1) & InoCipher::kPermutedBit))
      return make_error(Errc::kCorrupt, "metadata store " + path +
                                            ": the inode number key is missing; refusing to start");
  if (!scan.it()->status().ok())
    return make_error(Errc::kIo, "metadata store " + path + ": " + scan.it()->status().ToString());
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1)
    return make_error(Errc::kInternal, "no random bytes for the inode number key");
  rocksdb::WriteOptions wo;
  wo.sync = true;
  s = db->Put(wo, kv_key(kInoKeyKey), rocksdb::Slice(reinterpret_cast<const char*>(key.data()), key.size()));
  if (!s.ok())
    return make_error(Errc::kIo, "metadata store " + path + ": writing the inode number key: " + s.ToString());
  return key;
}

Result<uint64_t> MetaStore::next_ino(uint32_t shard, Batch& batch) {
  if (ino_seq_ == 0) {
    uint64_t start = kFirstInoSeq - 1;
    std::string raw;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kv_key(kInoSeqKey), &raw);
    if (s.ok() && raw.size() == 8) {
      start = std::max(start, get_be64(raw.data()));
    } else if (!s.IsNotFound()) {
      // Unreadable counter: never hand out a number already used, so start
      // above the counter of every inode record of this shard (set only
      // when the whole scan succeeded; else the next create tries again).
      LANEFS_ASSIGN_OR_RETURN(uint64_t top, top_counter());
      start = std::max(start, top);
    }
    ino_seq_ = start;
  }
  ++ino_seq_;
  if (ino_seq_ > ino_reserved_) {
    // A new inode may be read (and its number used for chunk data) before
    // its batch is durable; if the batch is then lost, its number must
    // still never be handed out again. So numbers come from a range whose
    // end is synced first (one synced write per kInoReserve creates).
    std::string v;
    put_be64(&v, ino_seq_ + kInoReserve - 1);
    rocksdb::WriteBatch wb;
    wb.Put(kv_key(kInoSeqKey), v);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (db_->Write(wo, &wb).ok()) {
      ino_reserved_ = ino_seq_ + kInoReserve - 1;
    } else {
      // Could not reserve: the counter travels with the batch that uses it.
      std::string cur;
      put_be64(&cur, ino_seq_);
      batch.put_kv(kInoSeqKey, cur);
    }
  }
  LANEFS_ASSIGN_OR_RETURN(uint64_t low, ino_cipher_.number(ino_seq_));
  return proto::make_ino(shard, low);
}

Result<uint64_t> MetaStore::top_counter() const {
  uint64_t top = 0;
  PrefixScan scan(db_, std::string(1, kInode));
  for (scan.it()->SeekToFirst(); scan.it()->Valid(); scan.it()->Next()) {
    if (scan.it()->key().size() != 9) continue;
    const uint64_t low = get_be64(scan.it()->key().data() + 1) & ((uint64_t{1} << proto::kShardShift) - 1);
    LANEFS_ASSIGN_OR_RETURN(uint64_t seq, ino_cipher_.counter(low));
    top = std::max(top, seq);
  }
  if (!scan.it()->status().ok())
    return make_error(Errc::kIo, "scanning inode records for the inode counter: " + scan.it()->status().ToString());
  return top;
}

}  // namespace lanefs::backend
