// temporal_sink: the actor starts calls; one CompletionQueue thread finishes them.
#include "net/temporal_sink.hpp"

#include "temporal/api/workflowservice/v1/service.grpc.pb.h"

#include <caf/all.hpp>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace billing::net {

namespace {

namespace wf = temporal::api::workflowservice::v1;

using done_atom = caf::atom_constant<caf::atom("tdone")>;
using sink_impl = sink_actor::extend<caf::reacts_to<done_atom, uint64_t, delivery_result>>;

std::string_view code_name(grpc::StatusCode c) {
  static constexpr std::string_view names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  auto i = static_cast<size_t>(c);
  return i < std::size(names) ? names[i] : "UNKNOWN";
}

delivery_result to_result(const grpc::Status& st) {
  delivery_result r;
  r.verdict = classify_grpc_status(static_cast<int>(st.error_code()), st.error_message(),
                                   st.error_details());
  if (!st.ok()) {
    r.detail = "temporal " + std::string{code_name(st.error_code())} + ": "
               + st.error_message().substr(0, 300);
  }
  return r;
}

void fill(wf::SignalWorkflowExecutionRequest& req, const temporal_sink_config& cfg,
          const signal_delivery& d) {
  req.set_namespace_(cfg.namespace_name);
  req.mutable_workflow_execution()->set_workflow_id(d.workflow_id);
  req.set_signal_name(d.signal);
  auto* p = req.mutable_input()->add_payloads();
  (*p->mutable_metadata())["encoding"] = "json/plain";
  p->set_data(d.payload);
  req.set_identity(cfg.identity);
  req.set_request_id(d.request_id);
}

// The gRPC side: a channel, a stub, a CompletionQueue and its thread.
class temporal_client {
public:
  using callback = std::function<void(delivery_result)>;

  temporal_client(temporal_sink_config cfg, std::shared_ptr<grpc::ChannelCredentials> creds)
    : cfg_(std::move(cfg)) {
    grpc::ChannelArguments args;
    // Reconnect quickly after an outage: the default backoff grows to 120 s.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
    auto channel = grpc::CreateCustomChannel(cfg_.address, creds, args);
    channel->GetState(true); // connect now, not on the first signal
    stub_ = wf::WorkflowService::NewStub(channel);
    thread_ = std::thread{[this] { run(); }};
  }
  ~temporal_client() { stop(); }

  // Never blocks; `done` runs on the client's thread (or here, when stopped).
  void call(const signal_delivery& d, callback done) {
    auto c = std::make_unique<call_state>();
    fill(c->req, cfg_, d);
    c->ctx.set_deadline(std::chrono::system_clock::now() + cfg_.timeout);
    // Every namespace-scoped call names its namespace in metadata, as the
    // official SDKs do: Temporal Cloud routes API-key calls by it.
    c->ctx.AddMetadata("temporal-namespace", cfg_.namespace_name);
    if (!cfg_.api_key.empty())
      c->ctx.AddMetadata("authorization", "Bearer " + cfg_.api_key);
    c->done = std::move(done);
    std::unique_lock lock{mu_};
    if (stopped_) {
      lock.unlock();
      return c->done({delivery_verdict::retry, "temporal sink stopped"});
    }
    auto* raw = c.release();
    live_.insert(raw);
    raw->reader = stub_->PrepareAsyncSignalWorkflowExecution(&raw->ctx, raw->req, &cq_);
    raw->reader->StartCall();
    raw->reader->Finish(&raw->resp, &raw->status, raw);
  }

  // Cancels what is in flight, lets it complete, joins. Idempotent.
  void stop() {
    {
      std::lock_guard lock{mu_};
      if (stopped_)
        return;
      stopped_ = true;
      for (auto* c : live_)
        c->ctx.TryCancel();
    }
    cq_.Shutdown();
    if (thread_.joinable())
      thread_.join();
  }

private:
  struct call_state {
    grpc::ClientContext ctx;
    wf::SignalWorkflowExecutionRequest req;
    wf::SignalWorkflowExecutionResponse resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<wf::SignalWorkflowExecutionResponse>> reader;
    callback done;
  };

  void run() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
      std::unique_ptr<call_state> c{static_cast<call_state*>(tag)};
      {
        std::lock_guard lock{mu_};
        live_.erase(c.get());
      }
      c->done(to_result(c->status));
    }
  }

  temporal_sink_config cfg_;
  std::unique_ptr<wf::WorkflowService::Stub> stub_;
  grpc::CompletionQueue cq_;
  std::mutex mu_;
  std::unordered_set<call_state*> live_; // guarded by mu_
  bool stopped_ = false;                 // guarded by mu_
  std::thread thread_;
};

struct sink_state {
  static inline const char* name = "billing.temporal_sink";
  std::unique_ptr<temporal_client> client;
  size_t max_in_flight = 0;
  uint64_t next_key = 0;
  std::unordered_map<uint64_t, caf::typed_response_promise<delivery_result>> pending;
};

sink_impl::behavior_type sink_fun(sink_impl::stateful_pointer<sink_state> self,
                                  temporal_sink_config cfg,
                                  std::shared_ptr<grpc::ChannelCredentials> creds) {
  self->state.max_in_flight = std::max<size_t>(cfg.max_in_flight, 1);
  self->state.client = std::make_unique<temporal_client>(std::move(cfg), std::move(creds));
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& s = self->state;
    s.client->stop();
    for (auto& [key, rp] : s.pending)
      rp.deliver(delivery_result{delivery_verdict::retry, "temporal sink stopped"});
    s.pending.clear();
    self->quit(msg.reason);
  });
  return {
    [self](deliver_atom, const signal_delivery& d) -> caf::result<delivery_result> {
      auto& s = self->state;
      if (s.pending.size() >= s.max_in_flight)
        return delivery_result{delivery_verdict::retry, "temporal sink: too many calls in flight"};
      auto rp = self->make_response_promise<delivery_result>();
      auto key = ++s.next_key;
      s.pending.emplace(key, rp);
      auto me = caf::actor_cast<sink_impl>(self);
      s.client->call(d, [me, key](delivery_result r) {
        caf::anon_send(me, done_atom::value, key, std::move(r));
      });
      return rp;
    },
    [self](done_atom, uint64_t key, delivery_result& r) {
      auto& s = self->state;
      auto it = s.pending.find(key);
      if (it == s.pending.end())
        return;
      it->second.deliver(std::move(r));
      s.pending.erase(it);
    },
  };
}

} // namespace

result<sink_actor> spawn_temporal_sink(caf::actor_system& sys, temporal_sink_config cfg) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (cfg.tls) {
    grpc::SslCredentialsOptions opts;
    if (!cfg.tls_ca_file.empty()) {
      std::ifstream in{cfg.tls_ca_file};
      if (!in)
        return fail(billing_errc::invalid_argument,
                    "temporal_tls_ca_path: cannot read " + cfg.tls_ca_file, "temporal_tls_ca_path");
      std::stringstream buf;
      buf << in.rdbuf();
      opts.pem_root_certs = buf.str();
    }
    creds = grpc::SslCredentials(opts);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  sink_impl h = sys.spawn(sink_fun, std::move(cfg), std::move(creds));
  return sink_actor{h};
}

std::string encode_signal_request(const temporal_sink_config& cfg, const signal_delivery& d) {
  wf::SignalWorkflowExecutionRequest req;
  fill(req, cfg, d);
  return req.SerializeAsString();
}

}  // namespace billing::net
