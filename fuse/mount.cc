#include "fuse/mount.h"

#include "common/log.h"
#include "fuse/ops.h"
#include "fuse/session.h"

namespace lanefs::fuse {
namespace {

class FuseMount final : public client::MountChannel {
 public:
  FuseMount(client::MountFs* fs, std::unique_ptr<Session> se) : fs_(fs), se_(std::move(se)) {
    kernel_cache_ = make_kernel_cache(*se_);
    fs_->set_kernel_cache(kernel_cache_.get());
  }
  ~FuseMount() override {
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
    return {se_->uring() ? "uring" : "classic",
            se_->channel_reason(),
            {{"fuse_requests_classic", se_->requests_classic()},
             {"fuse_requests_uring", se_->requests_uring()},
             {"fuse_uring_peak_per_thread", se_->uring_peak_per_thread()}}};
  }

 private:
  client::MountFs* fs_;
  std::unique_ptr<Session> se_;
  std::unique_ptr<client::KernelCache> kernel_cache_;  // notifications on se_'s /dev/fuse
};

Result<std::unique_ptr<FuseMount>> try_mount(const MountArgs& a, client::FuseChannel channel,
                                             std::string classic_because = {}) {
  const client::MountOptions& o = a.fs->options();
  LANEFS_ASSIGN_OR_RETURN(auto se,
                          Session::mount({a.target, a.source, o.read_only, a.fs, channel, std::move(classic_because)}));
  return std::make_unique<FuseMount>(a.fs, std::move(se));
}

}  // namespace

Result<std::unique_ptr<client::MountChannel>> mount_fuse(const MountArgs& a) {
  const client::FuseChannel want = a.fs->options().fuse_channel;
  LANEFS_ASSIGN_OR_RETURN(auto m, try_mount(a, want));
  Status st = m->start();
  if (st.ok()) return std::unique_ptr<client::MountChannel>(std::move(m));
  if (want != client::FuseChannel::kAuto || !m->uring_negotiated()) return st.error();
  // auto: io_uring was negotiated but its rings failed; the same mount
  // again on the classic channel.
  LOG_WARN("FUSE io_uring channel on {} failed ({}); mounting it again on the classic channel", a.target,
           st.error().to_string());
  m.reset();
  LANEFS_ASSIGN_OR_RETURN(m, try_mount(a, client::FuseChannel::kClassic,
                                       "the io_uring channel failed after negotiation (" + st.error().message + ")"));
  LANEFS_TRY(m->start());
  return std::unique_ptr<client::MountChannel>(std::move(m));
}

}  // namespace lanefs::fuse
