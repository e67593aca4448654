// See shm_comm.h for the design. Layout of a group's segment (n = group size):
//   GroupCtl | RankCtl x n | ChanCtl x n*n | (page-aligned) data slots: n ranks x 2 halves x slot_bytes |
//   p2p staging: n*n channels x 2 halves x p2p_bytes
// Pages of /dev/shm cost memory only once touched, so unused channels are free.
#include "shm_comm.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "reduce_kernels.h"

namespace zf {

namespace {

constexpr uint64_t kMagic = 0x5A46534831ull;  // "ZFSH1"
constexpr int64_t kSliceMs = 50;              // futex wait slice: how often aborts and shutdown are noticed
constexpr int64_t kLivenessMs = 100;          // how often blocked-on peers are checked for being alive

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Process-shared futex (no FUTEX_PRIVATE_FLAG): the word lives in a MAP_SHARED mapping.
void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, int64_t timeout_ms) {
  timespec ts{static_cast<time_t>(timeout_ms / 1000), static_cast<long>((timeout_ms % 1000) * 1000000)};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

const char* kind_name(uint32_t k) {
  static const char* names[] = {"?", "barrier", "allReduce", "reduceScatter", "allGather", "broadcast", "send", "recv"};
  return k < 8 ? names[k] : "?";
}
const char* dtype_name(uint32_t d) {
  static const char* names[] = {"float32", "float16", "bfloat16", "int32"};
  return d < 4 ? names[d] : "?";
}
const char* op_name(uint32_t o) {
  static const char* names[] = {"sum", "avg", "max", "min"};
  return o < 4 ? names[o] : "?";
}

}  // namespace

/** What every member posts with its first arrival in a collective; compared across members. */
struct Header {
  uint64_t seq;
  uint64_t count;
  uint32_t kind, dtype, rop;
  int32_t root;
};

struct alignas(64) RankCtl {
  std::atomic<uint64_t> arrive;  // last barrier epoch this rank reached
  std::atomic<int32_t> pid;      // for liveness checks; 0 until attached
  Header hdr[2];                 // by sequence parity: a rank can be at most one collective ahead
};

struct alignas(64) GroupCtl {
  std::atomic<uint64_t> geometry;  // magic ^ sizes, so ranks configured differently refuse to share
  std::atomic<uint32_t> bell;      // futex word bumped at every arrival
  std::atomic<uint32_t> waiters;   // ranks sleeping on the bell: arrivals skip the wake syscall when 0
  std::atomic<uint32_t> attached;
  std::atomic<uint32_t> abort_code;   // Status of the first failure anywhere in the group, 0 = none
  std::atomic<uint32_t> abort_ready;  // the abort record below is complete
  int32_t abort_peer;
  int32_t abort_by;
  char abort_msg[512];
};

struct alignas(64) ChanCtl {
  std::atomic<uint32_t> posted;    // chunks written by the sender (futex word the receiver sleeps on)
  std::atomic<uint32_t> consumed;  // chunks read by the receiver (futex word the sender sleeps on)
  struct Chunk {
    uint64_t msg, total, offset;
    uint32_t dtype;
    int32_t tag;
  } hdr[2];
};

Comm::Comm(const std::string& name, int rank, std::vector<int> global_ranks, uint64_t slot_bytes,
           uint64_t p2p_bytes)
    : name_(name),
      rank_(rank),
      size_(static_cast<int>(global_ranks.size())),
      global_(std::move(global_ranks)),
      slot_bytes_(align_up(slot_bytes, 64)),
      p2p_bytes_(align_up(p2p_bytes, 64)),
      send_msgs_(size_, 0),
      recv_msgs_(size_, 0),
      send_chunks_(size_, 0),
      recv_chunks_(size_, 0) {
  if (size_ < 1 || rank_ < 0 || rank_ >= size_) throw std::runtime_error("invalid rank/size");
  if (slot_bytes_ < 4096ull * size_) throw std::runtime_error("slot_bytes too small for the group size");
  const uint64_t off_ranks = align_up(sizeof(GroupCtl), 64);
  off_chans_ = off_ranks + sizeof(RankCtl) * size_;
  off_slots_ = align_up(off_chans_ + sizeof(ChanCtl) * size_ * size_, 4096);
  off_p2p_ = off_slots_ + slot_bytes_ * 2 * size_;
  bytes_ = off_p2p_ + p2p_bytes_ * 2 * size_ * size_;

  const int fd = shm_open(name_.c_str(), O_CREAT | O_RDWR, 0600);
  if (fd < 0) throw std::runtime_error("shm_open(" + name_ + "): " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || (static_cast<uint64_t>(st.st_size) != bytes_ && ftruncate(fd, bytes_) != 0)) {
    const int e = errno;
    close(fd);
    throw std::runtime_error("sizing shared memory " + name_ + " to " + std::to_string(bytes_) +
                             " bytes: " + std::strerror(e) + " (is /dev/shm large enough?)");
  }
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) throw std::runtime_error("mmap(" + name_ + "): " + std::strerror(errno));
  base_ = static_cast<uint8_t*>(p);
  ctl_ = reinterpret_cast<GroupCtl*>(base_);
  ranks_ = reinterpret_cast<RankCtl*>(base_ + off_ranks);

  const uint64_t geometry = kMagic ^ (static_cast<uint64_t>(size_) << 40) ^ (slot_bytes_ << 1) ^ (p2p_bytes_ << 20);
  uint64_t expected = 0;
  if (!ctl_->geometry.compare_exchange_strong(expected, geometry) && expected != geometry) {
    munmap(base_, bytes_);
    base_ = nullptr;
    throw std::runtime_error("shared memory segment " + name_ +
                             " was created with another group size or buffer sizes (ZEROFLOW_SHM_* env differs "
                             "between ranks?)");
  }
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  // Spinning only helps when every member has a core; oversubscribed, it steals the peer's time slice.
  spin_iters_ = size_ <= cpus ? 4000 : 0;
  if (const char* s = std::getenv("ZEROFLOW_SHM_SPIN")) spin_iters_ = std::atoi(s);
  ranks_[rank_].pid.store(static_cast<int32_t>(getpid()));
  ctl_->attached.fetch_add(1);
  ring_bell();
}

Comm::~Comm() {
  shutdown_.store(true);
  if (!unlinked_) unlink();
  if (base_) munmap(base_, bytes_);
}

int Comm::attached() const { return static_cast<int>(ctl_->attached.load()); }

void Comm::unlink() {
  unlinked_ = true;
  shm_unlink(name_.c_str());  // ENOENT when a peer unlinked first: fine
}

Result Comm::wait_attached_and_unlink(int64_t timeout_ms) {
  const int64_t deadline = now_ms() + timeout_ms;
  Result r = wait_until(
      &ctl_->bell, true, [&](int peer) { return ranks_[peer].pid.load() == 0; }, deadline,
      ("attaching shared memory " + name_ + " within " + std::to_string(timeout_ms) + " ms").c_str());
  if (r.status == Status::kOk) unlink();
  return r;
}

void Comm::ring_bell() {
  ctl_->bell.fetch_add(1);
  if (ctl_->waiters.load() > 0) futex_wake(&ctl_->bell);
}

bool Comm::peer_alive(int r) const {
  const int32_t pid = ranks_[r].pid.load();
  if (pid <= 0) return true;  // not attached yet: only the timeout can tell
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  // A killed child stays a zombie until its parent reaps it: treat state Z (and X) as dead.
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return errno != ENOENT;
  char buf[256];
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* close_paren = std::strrchr(buf, ')');
  if (close_paren && close_paren[1] == ' ' && (close_paren[2] == 'Z' || close_paren[2] == 'X')) return false;
  return true;
}

bool Comm::aborted(Result* out) {
  const uint32_t code = ctl_->abort_code.load();
  if (code == 0) return false;
  while (ctl_->abort_ready.load() == 0) cpu_relax();  // the record is being written right now
  broken_.store(true);
  out->status = static_cast<Status>(code);
  out->peer = ctl_->abort_peer;
  const int by = ctl_->abort_by;
  out->message = by == global_[rank_] ? std::string(ctl_->abort_msg)
                                      : "rank " + std::to_string(by) + " failed: " + std::string(ctl_->abort_msg);
  return true;
}

Result Comm::fail(Status status, int group_peer, const std::string& message) {
  const int peer = group_peer >= 0 ? global_[group_peer] : -1;
  uint32_t expected = 0;
  if (ctl_->abort_code.compare_exchange_strong(expected, static_cast<uint32_t>(status))) {
    ctl_->abort_peer = peer;
    ctl_->abort_by = global_[rank_];
    std::snprintf(ctl_->abort_msg, sizeof ctl_->abort_msg, "%s", message.c_str());
    ctl_->abort_ready.store(1);
    ring_bell();
  }
  broken_.store(true);
  return Result{status, peer, message};
}

template <class Pending>
Result Comm::wait_until(std::atomic<uint32_t>* word, bool count_waiter, Pending pending, int64_t deadline,
                        const char* what) {
  auto first_pending = [&]() {
    for (int r = 0; r < size_; ++r)
      if (pending(r)) return r;
    return -1;
  };
  if (first_pending() < 0) return {};
  for (int i = 0; i < spin_iters_; ++i) {
    cpu_relax();
    if (first_pending() < 0) return {};
  }
  int64_t next_liveness = now_ms() + kLivenessMs;
  for (;;) {
    Result r;
    if (aborted(&r)) return r;
    if (shutdown_.load()) return Result{Status::kShutdown, -1, "the process group was destroyed"};
    if (count_waiter) ctl_->waiters.fetch_add(1);
    const uint32_t seen = word->load();
    int lag = first_pending();
    int64_t now = now_ms();
    if (lag >= 0 && now < deadline) futex_wait(word, seen, deadline - now < kSliceMs ? deadline - now : kSliceMs);
    if (count_waiter) ctl_->waiters.fetch_sub(1);
    lag = first_pending();
    if (lag < 0) return {};
    now = now_ms();
    if (now >= next_liveness || now >= deadline) {
      for (int p = 0; p < size_; ++p) {
        if (p != rank_ && pending(p) && !peer_alive(p)) {
          return fail(Status::kPeerDead, p,
                      "rank " + std::to_string(global_[p]) + " (pid " + std::to_string(ranks_[p].pid.load()) +
                          ") died (killed or crashed) while rank " + std::to_string(global_[rank_]) +
                          " waited for it in " + what);
        }
      }
      next_liveness = now + kLivenessMs;
    }
    if (now >= deadline) {
      return fail(Status::kTimeout, lag,
                  "rank " + std::to_string(global_[lag]) + " did not arrive: " + what +
                      " timed out on rank " + std::to_string(global_[rank_]) +
                      " (the peer is hung, much slower, or issued different collectives; raise comm_timeout_ms if "
                      "it is only slow)");
    }
  }
}

uint8_t* Comm::slot(int r, int half) const { return base_ + off_slots_ + (static_cast<uint64_t>(r) * 2 + half) * slot_bytes_; }
ChanCtl* Comm::chan(int src, int dst) const {
  return reinterpret_cast<ChanCtl*>(base_ + off_chans_) + (static_cast<uint64_t>(src) * size_ + dst);
}
uint8_t* Comm::chan_data(int src, int dst, int half) const {
  return base_ + off_p2p_ + ((static_cast<uint64_t>(src) * size_ + dst) * 2 + half) * p2p_bytes_;
}

std::string Comm::describe(uint64_t seq, const void* header) const {
  const Header& h = *static_cast<const Header*>(header);
  if (h.kind == kBarrier) return "barrier #" + std::to_string(seq);
  std::string s = std::string(kind_name(h.kind)) + " #" + std::to_string(seq) + " (count " + std::to_string(h.count) +
                  ", " + dtype_name(h.dtype);
  if (h.kind == kAllReduce || h.kind == kReduceScatter) s += std::string(", ") + op_name(h.rop);
  if (h.kind == kBroadcast) s += ", root " + std::to_string(h.root);
  return s + ")";
}

#include "shm_collectives.inc"

}  // namespace zf
