// A shared-memory communicator for the ranks of one group on one host: one POSIX shared-memory segment per
// group holding a control block (barrier epochs, collective headers, pids, abort record), one data slot per
// rank (two halves, alternated by round so a rank may run one round ahead), and a channel per ordered pair
// for send/recv. Blocking waits use process-shared futexes with a timeout; a dead or silent peer fails the
// wait with its rank, and the failure is published so every other member fails too instead of hanging.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace zf {

/** Outcome codes shared with the JS side. */
enum class Status : int { kOk = 0, kTimeout = 1, kPeerDead = 2, kMismatch = 3, kError = 4, kShutdown = 5 };

/** Operation kinds shared with the JS side. */
enum OpKind : uint32_t {
  kBarrier = 1,
  kAllReduce = 2,
  kReduceScatter = 3,
  kAllGather = 4,
  kBroadcast = 5,
  kSend = 6,
  kRecv = 7,
};

struct Result {
  Status status = Status::kOk;
  int peer = -1;  // global rank of the peer at fault, -1 if none
  std::string message;
};

/** One operation. `count` is the per-rank element count (see each kind in shm_comm.cc). */
struct OpDesc {
  uint32_t kind = 0;
  uint32_t dtype = 0;
  uint32_t rop = 0;
  int32_t root = 0;  // broadcast root, or the peer (group rank) of send/recv
  int32_t tag = 0;
  void* a = nullptr;
  void* b = nullptr;
  uint64_t count = 0;
  int64_t timeout_ms = 0;
};

struct GroupCtl;
struct RankCtl;
struct ChanCtl;

class Comm {
 public:
  /**
   * Creates or opens the segment `name` (every member may race to create it), maps it and registers this
   * rank. Throws std::runtime_error with errno text on failure.
   */
  Comm(const std::string& name, int rank, std::vector<int> global_ranks, uint64_t slot_bytes, uint64_t p2p_bytes);
  ~Comm();
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  /** Members that have mapped the segment so far. */
  int attached() const;
  /** Blocks until every member mapped the segment, then unlinks its name (nothing is left in /dev/shm). */
  Result wait_attached_and_unlink(int64_t timeout_ms);
  /** Removes the name now (idempotent). */
  void unlink();
  /** Runs one operation on the calling thread. Collectives and each send/recv peer need their own thread. */
  Result run(const OpDesc& op);
  /** Makes every current and future wait return kShutdown within one wait slice. */
  void shutdown() { shutdown_.store(true); }
  const std::string& name() const { return name_; }
  uint64_t mapped_bytes() const { return bytes_; }

 private:
  // `header` points to a Header (shm_comm.cc); `what` names the operation in error messages.
  Result barrier_round(const void* header, int64_t deadline, const std::string& what);
  Result check_headers(const void* header);
  Result all_reduce(const OpDesc& op, const void* header, int64_t deadline, const std::string& what);
  Result reduce_scatter(const OpDesc& op, const void* header, int64_t deadline, const std::string& what);
  Result all_gather(const OpDesc& op, const void* header, int64_t deadline, const std::string& what);
  Result broadcast(const OpDesc& op, const void* header, int64_t deadline, const std::string& what);
  Result send(const OpDesc& op, int64_t deadline);
  Result recv(const OpDesc& op, int64_t deadline);

  /** Waits until `pending(r)` is false for every group rank r, watching `word` (a futex) for changes. */
  template <class Pending>
  Result wait_until(std::atomic<uint32_t>* word, bool count_waiter, Pending pending, int64_t deadline_ms,
                    const char* what);
  Result fail(Status status, int group_peer, const std::string& message);
  bool aborted(Result* out);
  bool peer_alive(int group_rank) const;
  void ring_bell();
  std::string describe(uint64_t seq, const void* header) const;

  uint8_t* slot(int r, int half) const;
  ChanCtl* chan(int src, int dst) const;
  uint8_t* chan_data(int src, int dst, int half) const;

  std::string name_;
  int rank_;
  int size_;
  std::vector<int> global_;
  uint64_t slot_bytes_;
  uint64_t p2p_bytes_;
  uint64_t bytes_ = 0;
  uint8_t* base_ = nullptr;
  GroupCtl* ctl_ = nullptr;
  RankCtl* ranks_ = nullptr;
  uint64_t off_chans_ = 0, off_slots_ = 0, off_p2p_ = 0;
  bool unlinked_ = false;
  int spin_iters_ = 0;
  std::atomic<bool> shutdown_{false};
  std::atomic<bool> broken_{false};

  // Collective state: touched only by the thread running collectives.
  uint64_t epoch_ = 0;  // barriers passed
  uint64_t seq_ = 0;    // collectives issued
  uint64_t round_ = 0;  // data rounds (slot half = round parity)
  // Point-to-point state, per peer: touched only by that peer's send (or recv) thread.
  std::vector<uint64_t> send_msgs_, recv_msgs_;
  std::vector<uint32_t> send_chunks_, recv_chunks_;
};

}  // namespace zf
