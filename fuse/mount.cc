#include "fuse/mount.h"

#include "common/log.h"
#include "fuse/ops.h"
#include "fuse/session.h"

namespace lanefs::fuse {
namespace {

class SessionMount final : public client::MountChannel {
 public:
  SessionMount(client::MountFs* fs, std::unique_ptr<Session> se) : fs_(fs), se_(std::move(se)) {
    kernel_cache_ = make_kernel_cache(*se_);
    fs_->set_kernel_cache(kernel_cache_.get());
  }
  ~SessionMount() override {
    // The connection has ended (wait() returned) or never served: nothing
    // calls into the kernel cache any more.
    fs_->set_kernel_cache(nullptr);
  }
  // Answers INIT and starts the channel; on failure the connection is
  // aborted (uring_negotiated() still says what INIT agreed).
  Status start() {
    Status st = se_->start();
    if (!st.ok()) {
      se_->abort();
      se_->wait();
    }
    return st;
  }
  bool uring_negotiated() const { return se_->uring_negotiated(); }

  void wait() override { se_->wait(); }
  void unmount() override { se_->unmount(); }
  client::ChannelInfo info() const override {
    if (se_->kernel_client())
      return {"kernel",
              "lanefs.ko",
              se_->channel_reason(),
              {{"kernel_requests", se_->requests_uring()},
               {"kernel_ring_peak_per_thread", se_->uring_peak_per_thread()}}};
    return {se_->uring() ? "fuse-uring" : "fuse",
            se_->uring() ? "uring" : "classic",
            client_because_.empty() ? se_->channel_reason() : se_->channel_reason() + "; FUSE: " + client_because_,
            {{"fuse_requests_classic", se_->requests_classic()},
             {"fuse_requests_uring", se_->requests_uring()},
             {"fuse_uring_peak_per_thread", se_->uring_peak_per_thread()}}};
  }
  std::string client_because_;  // client=auto took FUSE: why not the kernel client

 private:
  client::MountFs* fs_;
  std::unique_ptr<Session> se_;
  std::unique_ptr<client::KernelCache> kernel_cache_;  // notifications on se_'s /dev/fuse
};

Result<std::unique_ptr<SessionMount>> try_mount(const MountArgs& a, client::FuseChannel channel,
                                                std::string classic_because = {}) {
  const client::MountOptions& o = a.fs->options();
  LANEFS_ASSIGN_OR_RETURN(auto se,
                          Session::mount({a.target, a.source, o.read_only, a.fs, channel, std::move(classic_because)}));
  return std::make_unique<SessionMount>(a.fs, std::move(se));
}

// lanefs.ko: /dev/lanefs set up, mount(2) or attached, its rings registered.
Result<std::unique_ptr<SessionMount>> mount_kernel(const MountArgs& a) {
  const client::MountOptions& o = a.fs->options();
  const Session::Options so{a.target, a.source, o.read_only, a.fs, client::FuseChannel::kAuto, {}};
  LANEFS_ASSIGN_OR_RETURN(auto se, a.attach ? Session::attach_kernel(so) : Session::mount_kernel(so));
  auto m = std::make_unique<SessionMount>(a.fs, std::move(se));
  LANEFS_TRY(m->start());
  return m;
}

// FUSE: fuse_channel= picks the channel; auto falls back to classic when
// io_uring was negotiated but its rings failed.
Result<std::unique_ptr<SessionMount>> mount_fuse(const MountArgs& a) {
  const client::FuseChannel want = a.fs->options().fuse_channel;
  LANEFS_ASSIGN_OR_RETURN(auto m, try_mount(a, want));
  Status st = m->start();
  if (st.ok()) return m;
  if (want != client::FuseChannel::kAuto || !m->uring_negotiated()) return st.error();
  LOG_WARN("FUSE io_uring channel on {} failed ({}); mounting it again on the classic channel", a.target,
           st.error().to_string());
  m.reset();
  LANEFS_ASSIGN_OR_RETURN(m, try_mount(a, client::FuseChannel::kClassic,
                                       "the io_uring channel failed after negotiation (" + st.error().message + ")"));
  LANEFS_TRY(m->start());
  return m;
}

}  // namespace

Result<std::unique_ptr<client::MountChannel>> mount_client(const MountArgs& a) {
  const client::ClientKind client = a.fs->options().client;
  std::string why;
  if (a.attach) {
    LANEFS_ASSIGN_OR_RETURN(auto k, mount_kernel(a));
    return std::unique_ptr<client::MountChannel>(std::move(k));
  }
  if (client != client::ClientKind::kFuse) {
    if (Session::kernel_client_available(&why)) {
      auto k = mount_kernel(a);
      if (k.ok()) return std::unique_ptr<client::MountChannel>(std::move(*k));
      if (client == client::ClientKind::kKernel) return k.error();
      why = "the kernel client failed: " + k.error().message;
      LOG_WARN("client=auto on {}: {}; mounting with FUSE", a.target, why);
    } else if (client == client::ClientKind::kKernel) {
      return make_error(Errc::kNotSupported, "client=kernel: " + why);
    }
    why = "client=auto: " + why;
  }
  LANEFS_ASSIGN_OR_RETURN(auto m, mount_fuse(a));
  m->client_because_ = why;
  return std::unique_ptr<client::MountChannel>(std::move(m));
}

}  // namespace lanefs::fuse
