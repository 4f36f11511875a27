#include "backend/meta_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <mutex>
#include <cstring>
#include <cstdio>
#include <cstdarg>
#include <span>

#include "backend/meta_keys.h"

namespace lanefs::backend {
namespace {

using namespace meta_keys;

constexpr size_t kBlockCacheBytes = 16u << 20;

rocksdb::Slice slice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string dirent_value(const DirentValue& v) {
  std::vector<uint8_t> buf;
  Encoder e(&buf);
  e.u64(v.ino);
  e.u32(v.type);
  e.u64(v.cookie);
  return std::string(buf.begin(), buf.end());
}

bool decode_dirent_value(const std::string& raw, DirentValue* v) {
  Decoder d(bytes_of(raw));
  v->ino = d.u64();
  v->type = d.u32();
  v->cookie = d.u64();
  return d.done();
}

Error db_error(std::string_view what, const rocksdb::Status& s) {
  return make_error(Errc::kIo, std::string("rocksdb ") + std::string(what) + ": " + s.ToString());
}

Result<std::string> get_raw(rocksdb::DB* db, const rocksdb::ReadOptions& ro, const std::string& key,
                            std::string_view what) {
  std::string value;
  rocksdb::Status s = db->Get(ro, key, &value);
  if (s.IsNotFound()) return make_error(Errc::kNotFound, std::string(what));
  if (!s.ok()) return db_error("get " + std::string(what), s);
  return value;
}

std::string ino_text(std::string_view what, uint64_t ino) {
  return std::string(what) + " " + std::to_string(ino);
}

// RocksDB's own LOG, with the lines that name a damaged file kept: a
// corruption Status says what is wrong but not where.
class DamageWitness final : public rocksdb::Logger {
 public:
  explicit DamageWitness(std::shared_ptr<rocksdb::Logger> log)
      : rocksdb::Logger(log->GetInfoLogLevel()), log_(std::move(log)) {}
  using rocksdb::Logger::Logv;
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    va_list copy;
    va_copy(copy, ap);
    char line[512];
    std::vsnprintf(line, sizeof line, format, copy);
    va_end(copy);
    // "[db_impl_open.cc:982] <dir>/000004.log: dropping 123 bytes; Corruption: checksum mismatch"
    if (std::strstr(line, "dropping") != nullptr && std::strstr(line, "Corruption") != nullptr) {
      const char* from = line[0] == '[' && std::strstr(line, "] ") ? std::strstr(line, "] ") + 2 : line;
      std::lock_guard lk(mu_);
      if (first_.empty()) first_ = from;
    }
    log_->Logv(level, format, ap);
  }
  void Flush() override { log_->Flush(); }
  std::string first() {
    std::lock_guard lk(mu_);
    return first_;
  }

 private:
  std::shared_ptr<rocksdb::Logger> log_;
  std::mutex mu_;
  std::string first_;
};

}  // namespace

Result<std::unique_ptr<MetaStore>> MetaStore::open(const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  // Metadata records are small and hot; a modest cache keeps lookups off the
  // disk without competing with the page cache used by the chunk store.
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  table.cache_index_and_filter_blocks = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.max_background_jobs = 2;
  options.keep_log_file_num = 4;
  // Damage is an error, never silently skipped: every file is checked as it
  // is opened and read, and the WAL is replayed whole or not at all. Only
  // a last record torn by a crash while it was written is dropped (it was
  // never acknowledged: an acknowledged batch is synced). The default
  // (point-in-time recovery) would replay up to the damage and drop every
  // acknowledged batch after it without a word.
  options.paranoid_checks = true;
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  std::shared_ptr<DamageWitness> witness;
  if (std::shared_ptr<rocksdb::Logger> log; rocksdb::CreateLoggerFromOptions(path, options, &log).ok() && log) {
    witness = std::make_shared<DamageWitness>(std::move(log));
    options.info_log = witness;
  }

  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &db);
  if (s.IsCorruption()) {
    std::string what = witness && !witness->first().empty() ? witness->first() : s.ToString();
    std::replace(what.begin(), what.end(), '\n', ' ');
    return make_error(Errc::kCorrupt, "metadata store " + path + " is damaged (" + what +
                                          "); refusing to start rather than lose acknowledged metadata");
  }
  if (!s.ok()) return make_error(Errc::kIo, "rocksdb open " + path + ": " + s.ToString());
  std::unique_ptr<rocksdb::DB> owned(db);
  LANEFS_ASSIGN_OR_RETURN(InoCipher::Key key, load_ino_key(db, path));
  return std::unique_ptr<MetaStore>(new MetaStore(owned.release(), key));
}

MetaStore::MetaStore(rocksdb::DB* db, const InoCipher::Key& ino_key) : db_(db), ino_cipher_(ino_key) {}

MetaStore::~MetaStore() {
  if (db_ == nullptr) return;
  // Close() reports background errors; on this path there is nobody to tell.
  // Acknowledged batches are already in the synced WAL; the sync covers
  // batches applied by ops that never got to make_durable().
  (void)db_->SyncWAL();
  (void)db_->Close();
  delete db_;
}

Result<proto::InodeAttr> MetaStore::get_inode(uint64_t ino) const {
  LANEFS_ASSIGN_OR_RETURN(std::string raw, get_raw(db_, rocksdb::ReadOptions(), key1(kInode, ino),
                                                   ino_text("inode", ino)));
  proto::InodeAttr a;
  Decoder d(bytes_of(raw));
  if (!a.decode(d) || !d.done()) return make_error(Errc::kCorrupt, ino_text("inode record", ino));
  return a;
}

Result<std::string> MetaStore::get_symlink(uint64_t ino) const {
  return get_raw(db_, rocksdb::ReadOptions(), key1(kSymlink, ino), ino_text("symlink", ino));
}

Result<DirentValue> MetaStore::get_dirent(uint64_t parent, std::string_view name) const {
  LANEFS_ASSIGN_OR_RETURN(std::string raw,
                          get_raw(db_, rocksdb::ReadOptions(), key_name(kDirent, parent, name),
                                  ino_text("dirent in", parent)));
  DirentValue v;
  if (!decode_dirent_value(raw, &v))
    return make_error(Errc::kCorrupt, ino_text("dirent in", parent));
  return v;
}

Result<std::vector<proto::Dirent>> MetaStore::list_dirents(uint64_t parent, uint64_t after_cookie,
                                                           size_t max, bool* eof) const {
  std::vector<proto::Dirent> out;
  if (eof != nullptr) *eof = true;
  if (after_cookie == UINT64_MAX) return out;

  PrefixScan scan(db_, key1(kCookie, parent));
  rocksdb::Iterator* it = scan.it();
  for (it->Seek(key2(kCookie, parent, after_cookie + 1)); it->Valid() && out.size() < max;
       it->Next()) {
    rocksdb::Slice k = it->key();
    if (k.size() != 17) return make_error(Errc::kCorrupt, ino_text("cookie key in", parent));
    uint64_t cookie = get_be64(k.data() + 9);
    std::string name = it->value().ToString();
    std::string raw;
    rocksdb::Status s = db_->Get(scan.opts(), key_name(kDirent, parent, name), &raw);
    // A cookie whose dirent is gone or now carries another cookie is a stale
    // index entry (a caller overwrote a name without deleting it): skip it
    // so every name is listed once, at its current cookie.
    if (s.IsNotFound()) continue;
    if (!s.ok()) return db_error("get dirent", s);
    DirentValue v;
    if (!decode_dirent_value(raw, &v))
      return make_error(Errc::kCorrupt, ino_text("dirent in", parent));
    if (v.cookie != cookie) continue;
    out.push_back(proto::Dirent{std::move(name), v.ino, v.type, cookie});
  }
  if (!it->status().ok()) return db_error("iterate dirents", it->status());
  if (eof != nullptr) *eof = !it->Valid();
  return out;
}

bool MetaStore::dir_empty(uint64_t parent) const {
  PrefixScan scan(db_, key1(kDirent, parent));
  scan.it()->SeekToFirst();
  // Treat a read error as "not empty": the safe answer for rmdir/rename.
  return !scan.it()->Valid() && scan.it()->status().ok();
}

Result<std::string> MetaStore::get_xattr(uint64_t ino, std::string_view name) const {
  return get_raw(db_, rocksdb::ReadOptions(), key_name(kXattr, ino, name),
                 ino_text("xattr of", ino));
}

Result<std::vector<std::string>> MetaStore::list_xattrs(uint64_t ino) const {
  std::vector<std::string> names;
  PrefixScan scan(db_, key1(kXattr, ino));
  rocksdb::Iterator* it = scan.it();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    names.emplace_back(k.data() + scan.prefix_len(), k.size() - scan.prefix_len());
  }
  if (!it->status().ok()) return db_error("iterate xattrs", it->status());
  return names;
}

Result<std::string> MetaStore::get_kv(std::string_view key) const {
  return get_raw(db_, rocksdb::ReadOptions(), kv_key(key), "kv " + std::string(key));
}

Result<std::vector<uint64_t>> MetaStore::inodes_of_fs(uint32_t fs_id) const {
  std::vector<uint64_t> inos;
  PrefixScan scan(db_, std::string(1, kInode));
  rocksdb::Iterator* it = scan.it();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    rocksdb::Slice v = it->value();
    proto::InodeAttr a;
    Decoder d({reinterpret_cast<const uint8_t*>(v.data()), v.size()});
    if (!a.decode(d) || !d.done()) {
      uint64_t ino = it->key().size() == 9 ? get_be64(it->key().data() + 1) : 0;
      return make_error(Errc::kCorrupt, ino_text("inode record", ino));
    }
    if (a.fs_id == fs_id) inos.push_back(a.ino);
  }
  if (!it->status().ok()) return db_error("iterate inodes", it->status());
  return inos;
}

Result<std::vector<uint64_t>> MetaStore::orphans() const {
  std::vector<uint64_t> inos;
  PrefixScan scan(db_, std::string(1, kOrphan));
  rocksdb::Iterator* it = scan.it();
  for (it->SeekToFirst(); it->Valid(); it->Next())
    if (it->key().size() == 9) inos.push_back(get_be64(it->key().data() + 1));
  if (!it->status().ok()) return db_error("iterate orphans", it->status());
  return inos;
}

Result<std::vector<MetaStore::HandleRecord>> MetaStore::handles() const {
  std::vector<HandleRecord> out;
  PrefixScan scan(db_, std::string(1, kHandle));
  rocksdb::Iterator* it = scan.it();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 17 || it->value().size() != 8) return make_error(Errc::kCorrupt, "open handle record");
    out.push_back({get_be64(it->key().data() + 1), get_be64(it->key().data() + 9), get_be64(it->value().data())});
  }
  if (!it->status().ok()) return db_error("iterate open handles", it->status());
  return out;
}

Result<MetaStore::DoneRecord> MetaStore::get_done(uint64_t client, uint64_t request) const {
  LANEFS_ASSIGN_OR_RETURN(auto raw, get_raw(db_, rocksdb::ReadOptions(), key2(kDone, client, request), "request record"));
  if (raw.size() != 16) return make_error(Errc::kCorrupt, "request record");
  return DoneRecord{get_be64(raw.data()), get_be64(raw.data() + 8)};
}

Result<uint64_t> MetaStore::prune_done(uint64_t before_wall_secs) {
  rocksdb::WriteBatch wb;
  uint64_t n = 0;
  {
    PrefixScan scan(db_, std::string(1, kDone));
    rocksdb::Iterator* it = scan.it();
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->value().size() == 16 && get_be64(it->value().data()) >= before_wall_secs) continue;
      wb.Delete(it->key());
      ++n;
    }
    if (!it->status().ok()) return db_error("iterate request records", it->status());
  }
  if (n == 0) return n;
  // No sync: a record that comes back after a crash is pruned again.
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!s.ok()) return db_error("prune request records", s);
  return n;
}

uint64_t MetaStore::inode_count() const {
  // Exact count by key scan (values are not read). A cached counter would
  // need to know whether each put_inode creates or overwrites a record.
  uint64_t n = 0;
  PrefixScan scan(db_, std::string(1, kInode));
  for (scan.it()->SeekToFirst(); scan.it()->Valid(); scan.it()->Next()) ++n;
  return n;
}

Result<MetaStore::Ticket> MetaStore::apply(Batch& batch) {
  if (batch.empty()) return Ticket{};
  // sync=false: visible at once; durability is make_durable()'s job, shared
  // by every batch applied before its SyncWAL starts.
  rocksdb::WriteOptions wo;
  wo.sync = false;
  rocksdb::Status s = db_->Write(wo, batch.wb_.get());
  if (!s.ok()) return db_error("write", s);
  // Taken after the Write returned: a sync that reads a count >= this ticket
  // started after this batch was in the WAL.
  return Ticket{applied_.fetch_add(1, std::memory_order_acq_rel) + 1};
}

Status MetaStore::make_durable(Ticket t) {
  if (t.seq == 0) return ok_status();
  std::unique_lock lk(sync_mu_);
  for (;;) {
    if (synced_ >= t.seq) return ok_status();
    if (!sync_failed_.empty()) return make_error(Errc::kIo, sync_failed_);
    if (syncing_) {
      sync_cv_.wait(lk);
      continue;
    }
    // Leader: one SyncWAL for every batch applied so far (ours included);
    // batches applied while it runs wait for the next one.
    syncing_ = true;
    uint64_t cover = applied_.load(std::memory_order_acquire);
    lk.unlock();
    rocksdb::Status s = db_->SyncWAL();
    wal_syncs_.fetch_add(1, std::memory_order_relaxed);
    lk.lock();
    syncing_ = false;
    if (s.ok())
      synced_ = std::max(synced_, cover);
    else
      sync_failed_ = "rocksdb SyncWAL: " + s.ToString();
    sync_cv_.notify_all();
  }
}

Status MetaStore::commit(Batch& batch, std::unique_lock<std::mutex>& held) {
  auto t = apply(batch);
  if (held.owns_lock()) held.unlock();
  if (!t.ok()) return std::move(t).error();
  return make_durable(*t);
}

Status MetaStore::commit(Batch& batch) {
  LANEFS_ASSIGN_OR_RETURN(Ticket t, apply(batch));
  return make_durable(t);
}

MetaStore::Stats MetaStore::stats() const {
  Stats st;
  st.commits = applied_.load(std::memory_order_relaxed);
  st.wal_syncs = wal_syncs_.load(std::memory_order_relaxed);
  return st;
}

MetaStore::Batch::Batch() : wb_(std::make_unique<rocksdb::WriteBatch>()) {}
MetaStore::Batch::~Batch() = default;

void MetaStore::Batch::put_inode(const proto::InodeAttr& a) {
  std::vector<uint8_t> buf;
  Encoder e(&buf);
  a.encode(e);
  wb_->Put(key1(kInode, a.ino),
           rocksdb::Slice(reinterpret_cast<const char*>(buf.data()), buf.size()));
}

void MetaStore::Batch::delete_inode(uint64_t ino) { wb_->Delete(key1(kInode, ino)); }

void MetaStore::Batch::put_symlink(uint64_t ino, std::string_view target) {
  wb_->Put(key1(kSymlink, ino), slice(target));
}

void MetaStore::Batch::delete_symlink(uint64_t ino) { wb_->Delete(key1(kSymlink, ino)); }

void MetaStore::Batch::put_dirent(uint64_t parent, std::string_view name, const DirentValue& v) {
  wb_->Put(key_name(kDirent, parent, name), dirent_value(v));
  wb_->Put(key2(kCookie, parent, v.cookie), slice(name));
}

void MetaStore::Batch::delete_dirent(uint64_t parent, std::string_view name, uint64_t cookie) {
  wb_->Delete(key_name(kDirent, parent, name));
  wb_->Delete(key2(kCookie, parent, cookie));
}

void MetaStore::Batch::put_xattr(uint64_t ino, std::string_view name, std::string_view value) {
  wb_->Put(key_name(kXattr, ino, name), slice(value));
}

void MetaStore::Batch::delete_xattr(uint64_t ino, std::string_view name) {
  wb_->Delete(key_name(kXattr, ino, name));
}

void MetaStore::Batch::put_orphan(uint64_t ino) { wb_->Put(key1(kOrphan, ino), rocksdb::Slice()); }

void MetaStore::Batch::delete_orphan(uint64_t ino) { wb_->Delete(key1(kOrphan, ino)); }

void MetaStore::Batch::put_handle(uint64_t client, uint64_t ino, uint64_t seq) {
  std::string v;
  put_be64(&v, seq);
  wb_->Put(key2(kHandle, client, ino), slice(v));
}

void MetaStore::Batch::put_done(uint64_t client, uint64_t request, const DoneRecord& d) {
  std::string v;
  put_be64(&v, d.wall_secs);
  put_be64(&v, d.ino);
  wb_->Put(key2(kDone, client, request), v);
}

void MetaStore::Batch::delete_handle(uint64_t client, uint64_t ino) { wb_->Delete(key2(kHandle, client, ino)); }

void MetaStore::Batch::put_kv(std::string_view key, std::string_view value) {
  wb_->Put(kv_key(key), slice(value));
}

void MetaStore::Batch::delete_kv(std::string_view key) { wb_->Delete(kv_key(key)); }

bool MetaStore::Batch::empty() const { return wb_->Count() == 0; }

}  // namespace lanefs::backend
