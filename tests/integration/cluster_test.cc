// Three lanefsd processes on 127.0.0.1 formed into one cluster with the CLI:
// forwarding of management mutations, placement of chunks and directories,
// metadata operations on remote shards, `fs locate`, `cluster processes`,
// and what the CLI shows after one backend is SIGKILLed.
#include <sys/stat.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/clock.h"
#include "integration/backend_fixture.h"
#include "proto/auth.h"
#include "rpc/rpc.h"

namespace lanefs::test {
namespace {

using nlohmann::json;
constexpr uint64_t kMiB = 1 << 20;

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string list;
    for (const char* n : {"b1", "b2", "b3"}) {
      backends_.push_back(std::make_unique<BackendProcess>(n));
      if (auto st = backends_.back()->start(); !st.ok()) {
        setup_error_ = st.error().to_string();
        return;
      }
      list += (list.empty() ? "" : ",") + backends_.back()->addr_string();
    }
    auto r = run_cli({"cluster", "create", list});
    create_rc_ = r.rc;
    create_out_ = r.out;
  }
  static void TearDownTestSuite() { backends_.clear(); }

  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    ASSERT_EQ(create_rc_, 0) << create_out_;
  }

  static NetAddr addr(int i) { return backends_[i]->addr(); }

  static std::unique_ptr<client::ClusterClient> client_via(int i) {
    auto c = connect_client({addr(i)});
    EXPECT_TRUE(c.ok()) << c.error().to_string();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // Filesystem "cfs", created through a non-leader backend (b2) once.
  static Result<proto::FsInfo> ensure_fs(client::ClusterClient& via_b2) {
    if (fs_) return *fs_;
    LANEFS_ASSIGN_OR_RETURN(auto f, via_b2.fs_create("cfs"));
    fs_ = f;
    return f;
  }

  static Result<proto::ClusterMap> member_map(client::ClusterClient& c, NetAddr a) {
    return rpc::call_typed<proto::ClusterMap>(c.rpc(), a, proto::Op::kGetMap, rpc::Empty{}, 3 * kSecond);
  }

  static Result<proto::InodeAttr> mkfile(client::ClusterClient& c, uint64_t parent, const std::string& name) {
    proto::CreateReq r;
    r.parent = parent;
    r.name = name;
    r.mode = S_IFREG | 0644;
    return c.create(r);
  }

  inline static std::vector<std::unique_ptr<BackendProcess>> backends_;
  inline static std::string setup_error_, create_out_;
  inline static int create_rc_ = -1;
  inline static std::optional<proto::FsInfo> fs_;
};

TEST_F(ClusterTest, CreateFormsThreeMemberMap) {
  auto c = client_via(0);
  ASSERT_TRUE(c);
  auto m = c->map();
  ASSERT_EQ(m.members.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(m.members[i].shard, i);
    EXPECT_EQ(m.members[i].name, backends_[i]->name());
    EXPECT_EQ(m.members[i].addr, addr(static_cast<int>(i)));
  }
  // Every member holds the same map.
  for (int i = 0; i < 3; ++i) {
    auto mm = member_map(*c, addr(i));
    ASSERT_OK(mm);
    EXPECT_EQ(mm->cluster_id, m.cluster_id) << "member " << i;
    EXPECT_EQ(mm->members.size(), 3u);
  }
}

TEST_F(ClusterTest, FsCreateViaNonLeaderIsForwarded) {
  auto c = client_via(1);
  ASSERT_TRUE(c);
  ASSERT_NE(c->map().member_by_shard(0)->addr, addr(1)) << "b2 must not be the leader";
  auto f = ensure_fs(*c);
  ASSERT_OK(f);
  // Every member lists it (bounded poll: pushes are synchronous, but a
  // member may also catch up through its refresh loop).
  uint64_t deadline = mono_ns() + 10 * kSecond;
  for (int i = 0; i < 3; ++i) {
    bool found = false;
    while (!found && mono_ns() < deadline) {
      auto mm = member_map(*c, addr(i));
      ASSERT_OK(mm);
      const auto* fs = mm->find_fs("cfs");
      found = fs != nullptr;
      if (found) {
        EXPECT_EQ(fs->id, f->id);
        EXPECT_EQ(fs->root_ino, f->root_ino);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    EXPECT_TRUE(found) << backends_[i]->name() << " does not list filesystem cfs";
  }
  auto m = c->map();
  EXPECT_EQ(proto::ino_shard(f->root_ino), proto::shard_for_fs_root(m, "cfs"));
  auto root = c->getattr(f->root_ino);
  ASSERT_OK(root);
  EXPECT_TRUE(S_ISDIR(root->mode));
  // Creating it again through another non-leader is refused by the leader.
  auto c3 = client_via(2);
  ASSERT_TRUE(c3);
  EXPECT_ERRC(c3->fs_create("cfs"), Errc::kExists);
}

TEST_F(ClusterTest, ChunksSpreadOverAllBackendsAndReadBackElsewhere) {
  auto c = client_via(1);
  ASSERT_TRUE(c);
  auto fs = ensure_fs(*c);
  ASSERT_OK(fs);
  auto before = c->status_all();
  ASSERT_EQ(before.size(), 3u);
  for (auto& [m, s] : before) ASSERT_OK(s);

  auto f = mkfile(*c, fs->root_ino, "big");
  ASSERT_OK(f);
  std::mt19937_64 rng(48);
  constexpr uint64_t kSize = 48 * kMiB;
  auto data = random_bytes(rng, kSize);
  for (uint64_t off = 0; off < kSize; off += 8 * kMiB)
    ASSERT_OK(c->write(f->ino, off, std::span(data).subspan(off, 8 * kMiB)));
  auto attr = c->getattr(f->ino);
  ASSERT_OK(attr);
  EXPECT_EQ(attr->size, kSize);

  auto m = c->map();
  std::map<uint32_t, int> owned;
  for (uint64_t i = 0; i < kSize / m.chunk_size; ++i) ++owned[proto::chunk_owner(m, f->ino, i)->shard];
  std::printf("chunk owners of 48 chunks: shard0=%d shard1=%d shard2=%d\n", owned[0], owned[1], owned[2]);
  EXPECT_EQ(owned.size(), 3u) << "rendezvous hashing should use every backend for 48 chunks";
  auto after = c->status_all();
  ASSERT_EQ(after.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_OK(after[i].second);
    uint32_t shard = after[i].first.shard;
    EXPECT_GT(after[i].second->chunk_bytes, 0u) << after[i].first.name;
    EXPECT_GE(after[i].second->chunk_bytes, before[i].second->chunk_bytes + owned[shard] * m.chunk_size)
        << after[i].first.name << " should store the chunks it owns";
    EXPECT_GE(after[i].second->data_written_bytes, before[i].second->data_written_bytes + owned[shard] * m.chunk_size)
        << after[i].first.name << " should count the bytes written into its chunks";
  }
  uint64_t written = 0;
  for (auto& [mem, s] : after) written += s->data_written_bytes;
  for (auto& [mem, s] : before) written -= s->data_written_bytes;
  EXPECT_GE(written, kSize) << "the backends together stored less than the client wrote";

  // A second, independent client (contacting b3) reads the same bytes.
  auto other = client_via(2);
  ASSERT_TRUE(other);
  auto a2 = other->resolve(fs->root_ino, "/big");
  ASSERT_OK(a2);
  EXPECT_EQ(a2->ino, f->ino);
  for (uint64_t off = 0; off < kSize; off += 8 * kMiB) {
    auto got = other->read(f->ino, off, 8 * kMiB);
    ASSERT_OK(got);
    ASSERT_EQ(got->size(), 8 * kMiB);
    EXPECT_EQ(checksum(*got), checksum(std::span(data).subspan(off, 8 * kMiB))) << "at " << off;
    EXPECT_TRUE(std::equal(got->begin(), got->end(), data.begin() + static_cast<std::ptrdiff_t>(off)));
  }
  // Every byte read came from a backend (the client caches no file data).
  auto read_back = other->status_all();
  ASSERT_EQ(read_back.size(), 3u);
  uint64_t served = 0;
  for (auto& [mem, s] : read_back) {
    ASSERT_OK(s);
    served += s->data_read_bytes;
  }
  for (auto& [mem, s] : after) served -= s->data_read_bytes;
  EXPECT_GE(served, kSize) << "the backends served less than the client read";
}

TEST_F(ClusterTest, DirectoriesSpreadOverShards) {
  auto c = client_via(0);
  ASSERT_TRUE(c);
  auto fs = ensure_fs(*c);
  ASSERT_OK(fs);
  auto m = c->map();
  std::map<uint32_t, int> shards;
  for (int i = 0; i < 30; ++i) {
    std::string name = "spread" + std::to_string(i);
    auto d = c->mkdir(fs->root_ino, name, 0755);
    ASSERT_OK(d);
    EXPECT_EQ(proto::ino_shard(d->ino), proto::shard_for_new_dir(m, fs->root_ino, name)) << name;
    ++shards[proto::ino_shard(d->ino)];
    // The directory is reachable through its owner.
    auto g = c->getattr(d->ino);
    ASSERT_OK(g);
    EXPECT_TRUE(S_ISDIR(g->mode));
  }
  std::printf("30 directories by shard: shard0=%d shard1=%d shard2=%d\n", shards[0], shards[1], shards[2]);
  EXPECT_GE(shards.size(), 2u);
  auto ents = c->list_dir(fs->root_ino);
  ASSERT_OK(ents);
  int listed = 0;
  for (const auto& e : *ents) listed += e.name.rfind("spread", 0) == 0;
  EXPECT_EQ(listed, 30);
}

TEST_F(ClusterTest, MetadataOpsOnRemoteShard) {
  auto c = client_via(0);
  ASSERT_TRUE(c);
  auto fs = ensure_fs(*c);
  ASSERT_OK(fs);
  uint32_t root_shard = proto::ino_shard(fs->root_ino);
  auto m = c->map();
  // Pick names that the placement puts on other shards (bounded search).
  std::vector<std::string> remote;
  for (int i = 0; i < 200 && remote.size() < 3; ++i) {
    std::string n = "remote" + std::to_string(i);
    if (proto::shard_for_new_dir(m, fs->root_ino, n) != root_shard) remote.push_back(n);
  }
  ASSERT_EQ(remote.size(), 3u);
  auto root0 = c->getattr(fs->root_ino);
  ASSERT_OK(root0);
  std::vector<proto::InodeAttr> dirs;
  for (const auto& n : remote) {
    auto d = c->mkdir(fs->root_ino, n, 0755);
    ASSERT_OK(d);
    ASSERT_NE(proto::ino_shard(d->ino), root_shard);
    dirs.push_back(*d);
  }
  EXPECT_EQ(c->getattr(fs->root_ino)->nlink, root0->nlink + 3);
  const auto& r = dirs[0];
  EXPECT_EQ(c->lookup(r.ino, "..")->ino, fs->root_ino);

  // create / readdir / unlink inside the remote directory.
  std::mt19937_64 rng(5);
  auto payload = random_bytes(rng, 3 * kMiB + 17);
  for (const char* n : {"a", "b", "c"}) {
    auto f = mkfile(*c, r.ino, n);
    ASSERT_OK(f);
    EXPECT_EQ(proto::ino_shard(f->ino), proto::ino_shard(r.ino));
  }
  ASSERT_OK(c->mkdir(r.ino, "sub", 0700));
  auto a = c->lookup(r.ino, "a");
  ASSERT_OK(a);
  ASSERT_OK(c->write(a->ino, 0, payload));
  auto back = c->read(a->ino, 0, static_cast<uint32_t>(payload.size()));
  ASSERT_OK(back);
  EXPECT_TRUE(*back == payload);
  auto names = [&]() {
    std::set<std::string> s;
    auto e = c->list_dir(r.ino);
    EXPECT_TRUE(e.ok());
    if (e.ok())
      for (const auto& x : *e) s.insert(x.name);
    return s;
  };
  EXPECT_EQ(names(), (std::set<std::string>{".", "..", "a", "b", "c", "sub"}));
  auto bino = c->lookup(r.ino, "b");
  ASSERT_OK(bino);
  ASSERT_OK(c->unlink(r.ino, "b"));
  EXPECT_ERRC(c->lookup(r.ino, "b"), Errc::kNotFound);
  EXPECT_ERRC(c->getattr(bino->ino), Errc::kNotFound);
  ASSERT_OK(c->rename(r.ino, "a", r.ino, "a2"));
  EXPECT_EQ(names(), (std::set<std::string>{".", "..", "a2", "c", "sub"}));

  // A hard link from the root's shard to an inode on the remote shard; the
  // inode and its data go when the last name goes, wherever it is.
  auto cfile = c->lookup(r.ino, "c");
  ASSERT_OK(cfile);
  auto cdata = random_bytes(rng, 2 * kMiB + 3);
  ASSERT_OK(c->write(cfile->ino, 0, cdata));
  auto ln = c->link(cfile->ino, fs->root_ino, "c-link-" + remote[0]);
  ASSERT_OK(ln);
  EXPECT_EQ(ln->ino, cfile->ino);
  EXPECT_EQ(ln->nlink, 2u);
  EXPECT_EQ(c->lookup(fs->root_ino, "c-link-" + remote[0])->ino, cfile->ino);
  ASSERT_OK(c->unlink(r.ino, "c"));
  EXPECT_EQ(c->getattr(cfile->ino)->nlink, 1u);
  auto via_link = c->read(cfile->ino, 0, static_cast<uint32_t>(cdata.size()));
  ASSERT_OK(via_link);
  EXPECT_TRUE(*via_link == cdata);
  ASSERT_OK(c->unlink(fs->root_ino, "c-link-" + remote[0]));
  EXPECT_ERRC(c->getattr(cfile->ino), Errc::kNotFound);
  auto gone = c->read_data(cfile->ino, 0, static_cast<uint32_t>(cdata.size()));
  ASSERT_OK(gone);
  EXPECT_TRUE(all_zero(*gone)) << "data of a removed inode is still stored";
  EXPECT_EQ(names(), (std::set<std::string>{".", "..", "a2", "sub"}));

  // rmdir of a remote empty directory; of a remote non-empty one.
  ASSERT_OK(c->rmdir(fs->root_ino, remote[1]));
  EXPECT_ERRC(c->lookup(fs->root_ino, remote[1]), Errc::kNotFound);
  EXPECT_ERRC(c->getattr(dirs[1].ino), Errc::kNotFound);
  EXPECT_EQ(c->getattr(fs->root_ino)->nlink, root0->nlink + 2);
  EXPECT_ERRC(c->rmdir(fs->root_ino, remote[0]), Errc::kNotEmpty);
  ASSERT_OK(c->getattr(r.ino));
  // A remote directory holding only a (remote-placed or local) subdirectory
  // is not empty either.
  auto inner = c->mkdir(dirs[2].ino, "inner", 0755);
  ASSERT_OK(inner);
  EXPECT_ERRC(c->rmdir(fs->root_ino, remote[2]), Errc::kNotEmpty);
  ASSERT_OK(c->rmdir(dirs[2].ino, "inner"));
  ASSERT_OK(c->rmdir(fs->root_ino, remote[2]));
  EXPECT_ERRC(c->getattr(dirs[2].ino), Errc::kNotFound);
}

TEST_F(ClusterTest, FsLocateMatchesPlacement) {
  auto c = client_via(0);
  ASSERT_TRUE(c);
  auto fs = ensure_fs(*c);
  ASSERT_OK(fs);
  auto f = mkfile(*c, fs->root_ino, "loc");
  ASSERT_OK(f);
  auto m = c->map();
  std::set<uint32_t> chunk_owners;
  for (uint64_t off : {uint64_t{0}, 17 * kMiB + 5, 47 * kMiB, 101 * kMiB + 99}) {
    auto r = run_cli({"--backend", backends_[0]->addr_string(), "--json", "fs", "locate", "cfs", "/loc",
                      "--offset", std::to_string(off)});
    ASSERT_EQ(r.rc, 0) << r.out;
    json j = json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    EXPECT_EQ(j["ino"].get<uint64_t>(), f->ino);
    EXPECT_EQ(j["offset"].get<uint64_t>(), off);
    EXPECT_EQ(j["chunk_index"].get<uint64_t>(), off / m.chunk_size);
    const auto* mo = proto::meta_owner(m, f->ino);
    const auto* co = proto::chunk_owner(m, f->ino, off / m.chunk_size);
    ASSERT_TRUE(mo && co);
    EXPECT_EQ(j["metadata_owner"]["shard"].get<uint32_t>(), mo->shard);
    EXPECT_EQ(j["metadata_owner"]["addr"].get<std::string>(), mo->addr.to_string());
    EXPECT_EQ(j["chunk_owner"]["shard"].get<uint32_t>(), co->shard);
    EXPECT_EQ(j["chunk_owner"]["addr"].get<std::string>(), co->addr.to_string());
    EXPECT_EQ(j["chunk_owner"]["name"].get<std::string>(), co->name);
    chunk_owners.insert(co->shard);

    auto t = run_cli({"--backend", backends_[0]->addr_string(), "fs", "locate", "cfs", "/loc", "--offset",
                      std::to_string(off)});
    ASSERT_EQ(t.rc, 0) << t.out;
    EXPECT_NE(t.out.find(co->addr.to_string()), std::string::npos) << t.out;
    EXPECT_NE(t.out.find(mo->addr.to_string()), std::string::npos) << t.out;
  }
  auto bad = run_cli({"--backend", backends_[0]->addr_string(), "fs", "locate", "cfs", "/no/such"});
  EXPECT_NE(bad.rc, 0) << bad.out;
}

// A session whose token names filesystems reaches no other filesystem's
// data by inode number, on a chunk owner that holds no record of the inode
// either (docs/security.md): that backend asks the inode's metadata owner.
TEST_F(ClusterTest, AScopedSessionReadsNoOtherFilesystemsChunks) {
  auto admin = client_via(0);
  ASSERT_TRUE(admin);
  auto mine = ensure_fs(*admin);
  ASSERT_OK(mine);
  auto other = admin->fs_create("elsewhere");
  ASSERT_OK(other);
  TempDir dir;
  const std::string token = dir.path() + "/scoped.token";
  const std::string b0 = backends_[0]->addr_string();
  auto add = run_cli({"--backend", b0, "user", "add", "scoped", "--role", "client", "--fs", "cfs"});
  ASSERT_EQ(add.rc, 0) << add.out;
  auto login = run_cli({"--backend", b0, "user", "login", "scoped", "--token-file", token});
  ASSERT_EQ(login.rc, 0) << login.out;
  auto creds = proto::load_token_file(token);
  ASSERT_OK(creds);
  rpc::ClientOptions o;
  o.transport.kind = transport::TransportKind::kUdp;
  o.transport.bind = NetAddr{0x7f000001u, 0};
  o.credentials = [c = *creds] { return std::optional<proto::Credentials>(c); };
  auto raw = rpc::RpcClient::create(o);
  ASSERT_OK(raw);
  auto code = [&](NetAddr to, proto::Op op, const rpc::Buffer& body) {
    auto r = (*raw)->call(to, static_cast<uint16_t>(op), body, 5 * kSecond);
    if (!r.ok()) return r.code();
    auto p = proto::parse_response(*r);
    return p.ok() ? Errc::kOk : p.code();
  };
  auto m = admin->map();
  for (const proto::FsInfo& fs : {*mine, *other}) {
    auto f = mkfile(*admin, fs.root_ino, "scoped-data");
    ASSERT_OK(f);
    // A chunk whose owner is not the inode's metadata owner.
    const proto::Member* meta = proto::meta_owner(m, f->ino);
    ASSERT_TRUE(meta);
    uint64_t index = 0;
    while (index < 64 && proto::chunk_owner(m, f->ino, index)->shard == meta->shard) ++index;
    ASSERT_LT(index, 64u) << "every chunk placed on the metadata owner";
    const uint64_t off = index * m.chunk_size;
    const std::vector<uint8_t> bytes(4096, 0x5a);
    ASSERT_OK(admin->write(f->ino, off, bytes));
    proto::ReadReq rd;
    rd.ino = f->ino;
    rd.offset = off;
    rd.len = 4096;
    proto::WriteReq wr;
    wr.ino = f->ino;
    wr.offset = off;
    wr.data = bytes;
    const NetAddr chunk_addr = proto::chunk_owner(m, f->ino, index)->addr;
    const Errc want = fs.name == "cfs" ? Errc::kOk : Errc::kPermission;
    // Twice: the second answer comes from what the chunk owner remembered.
    for (int round = 0; round < 2; ++round) {
      EXPECT_EQ(errc_name(code(chunk_addr, proto::Op::kRead, proto::encode_msg(rd))), errc_name(want)) << fs.name;
      EXPECT_EQ(errc_name(code(chunk_addr, proto::Op::kWrite, proto::encode_msg(wr))), errc_name(want)) << fs.name;
    }
  }
  // A number no inode has: refused as such, not served as a hole.
  proto::ReadReq guess;
  guess.ino = proto::make_ino(m.members[0].shard, (uint64_t{1} << 40) + 12345);
  guess.len = 4096;
  uint64_t index = 0;
  while (index < 64 && proto::chunk_owner(m, guess.ino, index)->shard == m.members[0].shard) ++index;
  ASSERT_LT(index, 64u);
  guess.offset = index * m.chunk_size;
  EXPECT_EQ(errc_name(code(proto::chunk_owner(m, guess.ino, index)->addr, proto::Op::kRead, proto::encode_msg(guess))),
            errc_name(Errc::kNotFound));
}

TEST_F(ClusterTest, ProcessesListsNineUpThenDownAfterKill) {
  auto count = [](const json& j, const std::string& container, const std::string& status) {
    int n = 0;
    for (const auto& p : j) n += p["container"] == container && p["status"] == status;
    return n;
  };
  auto r = run_cli({"--backend", backends_[0]->addr_string(), "--json", "cluster", "processes"});
  ASSERT_EQ(r.rc, 0) << r.out;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << r.out;
  ASSERT_EQ(j.size(), 9u) << r.out;
  std::set<uint64_t> ids;
  for (const auto& p : j) ids.insert(p["id"].get<uint64_t>());
  EXPECT_EQ(ids.size(), 9u);
  for (const auto& b : backends_) {
    EXPECT_EQ(count(j, b->name(), "UP"), 3) << b->name();
    std::set<std::string> roles;
    for (const auto& p : j)
      if (p["container"] == b->name())
        for (const auto& role : p["roles"]) roles.insert(role.get<std::string>());
    EXPECT_EQ(roles, (std::set<std::string>{"MANAGEMENT", "COMPUTE", "DRIVES"})) << b->name();
  }

  backends_[2]->kill9();
  constexpr double kConnectTimeout = 2;
  auto d = run_cli({"--backend", backends_[0]->addr_string(), "--connect-timeout", "2", "--json", "cluster",
                    "processes"});
  ASSERT_EQ(d.rc, 0) << d.out;
  std::printf("processes with one backend down took %.2f s\n", d.seconds);
  EXPECT_LT(d.seconds, kConnectTimeout + 6) << "a dead backend must cost about one connect timeout";
  json dj = json::parse(d.out, nullptr, false);
  ASSERT_TRUE(dj.is_array()) << d.out;
  ASSERT_EQ(dj.size(), 9u) << d.out;
  EXPECT_EQ(count(dj, "b3", "DOWN"), 3);
  EXPECT_EQ(count(dj, "b1", "UP"), 3);
  EXPECT_EQ(count(dj, "b2", "UP"), 3);
  // The table form too.
  auto t = run_cli({"--backend", backends_[1]->addr_string(), "--connect-timeout", "2", "cluster", "processes"});
  ASSERT_EQ(t.rc, 0) << t.out;
  EXPECT_EQ(lines_of(t.out).size(), 10u) << t.out;
  EXPECT_NE(t.out.find("DOWN"), std::string::npos) << t.out;
}

}  // namespace
}  // namespace lanefs::test
