#pragma once
// The Temporal sink: implements sink_actor by calling
// temporal.api.workflowservice.v1.WorkflowService/SignalWorkflowExecution.
//
// Threads: the actor (shared scheduler) only starts asynchronous calls; the
// calls complete on one thread of the sink's own (a gRPC CompletionQueue),
// which hands each answer back to the actor as a message. Nothing blocks a
// scheduler thread. At most max_in_flight calls; beyond that a delivery is
// answered `retry` at once (the bridge bounds its concurrency below that).
//
// Each request: namespace, workflow_execution.workflow_id (no run id: the
// current run), signal_name, input = one json/plain Payload holding the
// signal payload, identity, request_id (deterministic per outbox row, so the
// server drops a repeat). Every call carries `temporal-namespace: <namespace>`
// in its metadata (as the SDKs send it; Temporal Cloud routes by it), and with
// an API key (Temporal Cloud) `authorization: Bearer <key>`.
//
// Stop: an exit message cancels the calls in flight, waits for their
// completion (immediate once cancelled) and joins the thread.

#include "protocol/errors.hpp"
#include "protocol/messages.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <string>

namespace billing::net {

struct temporal_sink_config {
  std::string address = "127.0.0.1:7233";  // host:port of the frontend
  std::string namespace_name = "default";
  bool tls = false;
  std::string tls_ca_file;  // PEM roots for TLS; empty: the system's
  std::string api_key;      // empty: none
  std::string identity = "billingd";
  std::chrono::milliseconds timeout{10'000};  // per call (gRPC deadline)
  size_t max_in_flight = 1024;
};

// failure{invalid_argument} when the CA file cannot be read.
result<sink_actor> spawn_temporal_sink(caf::actor_system& sys, temporal_sink_config cfg);

// The serialized SignalWorkflowExecutionRequest for `d` (tests, tools).
std::string encode_signal_request(const temporal_sink_config& cfg, const signal_delivery& d);

}  // namespace billing::net
