#include "proto/types.h"

#include <sys/stat.h>

#include <cctype>

#include <ctime>

namespace lanefs::proto {

uint32_t suidgid_to_kill(uint32_t mode) {
  if (S_ISDIR(mode)) return 0;
  return (mode & S_ISUID) | ((mode & S_ISGID) && (mode & S_IXGRP) ? S_ISGID : 0);
}

namespace {
void put_ts(Encoder& e, const Timespec& t) { e.i64(t.sec); e.u32(t.nsec); }
void get_ts(Decoder& d, Timespec* t) { t->sec = d.i64(); t->nsec = d.u32(); }
}  // namespace

Timespec now_timespec() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return Timespec{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

void InodeAttr::encode(Encoder& e) const {
  e.u64(ino); e.u32(fs_id); e.u32(mode); e.u32(uid); e.u32(gid); e.u32(nlink); e.u32(rdev);
  e.u64(size); e.u64(blocks);
  put_ts(e, atime); put_ts(e, mtime); put_ts(e, ctime); put_ts(e, btime);
  e.u64(parent); e.u64(next_cookie);
}

bool InodeAttr::decode(Decoder& d) {
  ino = d.u64(); fs_id = d.u32(); mode = d.u32(); uid = d.u32(); gid = d.u32(); nlink = d.u32();
  rdev = d.u32(); size = d.u64(); blocks = d.u64();
  get_ts(d, &atime); get_ts(d, &mtime); get_ts(d, &ctime); get_ts(d, &btime);
  parent = d.u64(); next_cookie = d.u64();
  return d.ok();
}

void EntryResp::encode(Encoder& e) const {
  attr.encode(e);
  if (has_dir) dir.encode(e);
}
bool EntryResp::decode(Decoder& d) {
  if (!attr.decode(d)) return false;
  has_dir = d.remaining() > 0;
  return !has_dir || dir.decode(d);
}

void Dirent::encode(Encoder& e) const { e.str(name); e.u64(ino); e.u32(type); e.u64(cookie); }
bool Dirent::decode(Decoder& d) {
  name = d.str(kNameMax); ino = d.u64(); type = d.u32(); cookie = d.u64();
  return d.ok();
}

void SetAttr::encode(Encoder& e) const {
  e.u32(mask); e.u32(mode); e.u32(uid); e.u32(gid); e.u64(size);
  put_ts(e, atime); put_ts(e, mtime); put_ts(e, ctime);
}
bool SetAttr::decode(Decoder& d) {
  mask = d.u32(); mode = d.u32(); uid = d.u32(); gid = d.u32(); size = d.u64();
  get_ts(d, &atime); get_ts(d, &mtime); get_ts(d, &ctime);
  return d.ok();
}

void StatFs::encode(Encoder& e) const {
  e.u64(total_bytes); e.u64(free_bytes); e.u64(avail_bytes); e.u64(total_inodes);
  e.u64(free_inodes); e.u32(block_size); e.u32(name_max);
}
bool StatFs::decode(Decoder& d) {
  total_bytes = d.u64(); free_bytes = d.u64(); avail_bytes = d.u64(); total_inodes = d.u64();
  free_inodes = d.u64(); block_size = d.u32(); name_max = d.u32();
  return d.ok();
}

bool valid_fs_name(std::string_view n) {
  if (n.empty() || n.size() > 64 || n == "." || n == "..") return false;
  for (unsigned char c : n)
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

}  // namespace lanefs::proto
