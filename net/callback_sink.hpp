#pragma once
// The HTTP callback sink: implements sink_actor by POSTing each signal as
// JSON (protocol/outbox.hpp: callback_body) to the configured URL, where
// "{signal}" is replaced by the signal name, for callers not on Temporal.
//
// Headers: Content-Type: application/json; Billing-Signature: t=...,v1=...
// (Stripe's scheme with the callback secret: a receiver verifies it with the
// code it uses for Stripe webhooks); Idempotency-Key: the request id (the
// same on every attempt of a row: receivers deduplicate on it); Billing-Signal.
// 2xx = delivered; timeouts, connection errors, 408, 429, 5xx = retried; other
// 4xx = permanent.
//
// Threads: the actor (shared scheduler) starts requests on an http_client of
// its own, whose io thread hands each answer back as a message; nothing
// blocks. Stop: an exit message stops the client (requests in flight are
// answered retry) and quits.

#include "net/http_client.hpp"
#include "protocol/errors.hpp"
#include "protocol/messages.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <functional>
#include <string>

namespace billing::net {

struct callback_sink_config {
  std::string url;     // http(s)://...; may contain {signal}
  std::string secret;  // HMAC key of Billing-Signature
  std::chrono::milliseconds timeout{10'000};
  std::function<int64_t()> clock;  // unix seconds for `t`; empty: the system clock
  client_config client;            // connections per host, TLS roots
};

// failure{invalid_argument} when the URL (with a signal name) is not a valid
// http(s) URL or the secret is empty.
result<sink_actor> spawn_callback_sink(caf::actor_system& sys, callback_sink_config cfg);

}  // namespace billing::net
