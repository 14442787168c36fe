#include "bench/grpc_setup.hpp"

#include "billing/v1/billing.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

namespace billing::bench {

namespace {

namespace pb = ::billing::v1;
using clock = std::chrono::steady_clock;

// The calls in flight share this; each completion starts the next item.
struct run_state {
  plan& p;
  pb::BillingService::Stub& stub;
  std::string auth;
  int retries = 0;
  std::mutex mu;
  std::condition_variable done_cv;
  size_t next = 0;        // guarded by mu
  size_t in_flight = 0;   // guarded by mu
  grpc_setup_result out;  // guarded by mu

  run_state(plan& pl, pb::BillingService::Stub& s) : p(pl), stub(s) {}
};

struct call {
  size_t item = 0;
  int attempt = 0;
  grpc::ClientContext ctx;
  pb::CreateInvoiceRequest req;
  pb::CreateInvoiceResponse resp;
  clock::time_point started;
};

void start(run_state& st, size_t item, int attempt);

void finished(run_state& st, std::unique_ptr<call> c, const grpc::Status& status) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - c->started).count();
  const bool retry = !status.ok() && c->attempt < st.retries
                     && (status.error_code() == grpc::StatusCode::UNAVAILABLE
                         || status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  if (retry)
    return start(st, c->item, c->attempt + 1);
  size_t next = 0;
  bool more = false;
  {
    std::lock_guard lock{st.mu};
    auto& inv = st.p.invoices[c->item];
    if (status.ok()) {
      st.out.latency_ok.record(static_cast<uint64_t>(ns));
      ++st.out.created;
      if (c->resp.invoice_id() != inv.id || c->resp.invoice().provider_intent_id() != inv.intent) {
        ++st.out.differed;
        inv.id = c->resp.invoice_id();
        inv.intent = c->resp.invoice().provider_intent_id();
      }
    } else {
      ++st.out.failed;
      if (st.out.samples.size() < 5)
        st.out.samples.push_back("workflow " + inv.workflow_id + ": gRPC " + std::to_string(status.error_code())
                                 + " " + status.error_message());
    }
    if (st.next < st.p.invoices.size()) {
      next = st.next++;
      more = true;
    } else {
      --st.in_flight;
      if (st.in_flight == 0)
        st.done_cv.notify_all();
    }
  }
  if (more)
    start(st, next, 0);
}

void start(run_state& st, size_t item, int attempt) {
  auto c = std::make_unique<call>();
  c->item = item;
  c->attempt = attempt;
  const auto& inv = st.p.invoices[item];
  c->req.set_shipment_id(inv.shipment_id);
  c->req.set_user_id(inv.user_id);
  c->req.set_workflow_id(inv.workflow_id);
  c->req.set_amount_cents(inv.amount_cents);
  c->req.set_currency(inv.currency);
  c->ctx.AddMetadata("authorization", st.auth);
  c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  c->started = clock::now();
  auto* raw = c.release();
  st.stub.async()->CreateInvoice(&raw->ctx, &raw->req, &raw->resp, [&st, raw](grpc::Status s) {
    finished(st, std::unique_ptr<call>{raw}, s);
  });
}

} // namespace

grpc_setup_result grpc_create_invoices(plan& p, const std::string& address, const std::string& api_key,
                                       size_t concurrency, int retries) {
  grpc::ChannelArguments args;
  // One HTTP/2 connection per channel by default; a few let the server's
  // threads share the work the way many callers would.
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  auto stub = pb::BillingService::NewStub(channel);
  run_state st{p, *stub};
  st.auth = "Bearer " + api_key;
  st.retries = retries;
  const auto t0 = clock::now();
  const size_t first = std::min(std::max<size_t>(concurrency, 1), p.invoices.size());
  {
    std::lock_guard lock{st.mu};
    st.next = first;
    st.in_flight = first;
  }
  for (size_t i = 0; i < first; ++i)
    start(st, i, 0);
  std::unique_lock lock{st.mu};
  st.done_cv.wait(lock, [&] { return st.in_flight == 0; });
  st.out.elapsed_s = std::chrono::duration<double>(clock::now() - t0).count();
  return std::move(st.out);
}

} // namespace billing::bench
