#pragma once
// WatchInvoice: a server stream of one invoice's status changes, and the hub
// that feeds every open stream.
//
// How changes are learnt: billing_api has no change notification (the invoice
// actors would be the place for one; actors/ is being reworked), so the hub
// polls: every `interval` it asks billing_api::get_invoice for each open
// watch that has no read in flight, and a stream writes a message when the
// status differs from the last one it sent. Honest bounds: at most
// `max_watches` streams (more are RESOURCE_EXHAUSTED), one read per watch per
// interval, a change is seen within about one interval, and a status that
// lasts less than an interval may be skipped (the stream always ends with the
// settled one).
//
// Threads: the hub has one thread of its own that only starts reads (they
// never block) and sleeps; reads complete on actor threads; stream callbacks
// (OnWriteDone, OnCancel, OnDone) run on gRPC's threads. A watch's state is
// guarded by its own mutex and outlives its stream (shared_ptr) so a late
// read finds it finished, never freed. Finish is called exactly once per
// stream: at a settled status (OK), a failure, the caller's cancel or
// deadline (CANCELLED), or stop() (UNAVAILABLE).

#include "billing/v1/billing.grpc.pb.h"
#include "net/request_metrics.hpp"
#include "protocol/api.hpp"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace billing::net {

struct watch_state;

// Whether a watch ends at this status: the payment question is settled.
bool settled(invoice_status s) noexcept;

class watch_hub {
public:
  // Called once when a stream ends: its final code (for metrics and the log).
  using on_end = std::function<void(grpc::StatusCode)>;

  watch_hub(billing_api& api, size_t max_watches, std::chrono::milliseconds interval,
            std::shared_ptr<request_metrics> metrics);
  ~watch_hub(); // stop()

  // A reactor for a new stream of `id`, or nullptr when max_watches streams
  // are open (the caller answers RESOURCE_EXHAUSTED).
  grpc::ServerWriteReactor<::billing::v1::InvoiceStatusChange>* open(invoice_id id, std::string request_id,
                                                                   on_end done);

  // Ends every open stream (UNAVAILABLE: billingd is stopping), stops the
  // thread. Idempotent.
  void stop();

  size_t open_count() const;

private:
  void run();
  void poll(const std::shared_ptr<watch_state>& w);

  billing_api& api_;
  const size_t max_watches_;
  const std::chrono::milliseconds interval_;
  std::shared_ptr<request_metrics> metrics_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::shared_ptr<watch_state>> watches_; // guarded by mu_
  bool stopped_ = false;                              // guarded by mu_
  std::thread thread_;
};

} // namespace billing::net
