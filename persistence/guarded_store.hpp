#pragma once
// The reconnect policy of the detached store actors (readers, outbox): while
// the connection is down, requests are answered `unavailable` at once and a
// reconnect is attempted at most once per backoff (doubling from min to max),
// on the next request after it passed. Internal to persistence/.

#include "persistence/pg_util.hpp"
#include "protocol/errors.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace billing::pg_detail {

// Store: connected() -> bool, connect() -> result<...>.
template <class Store>
class guarded_store {
public:
  using clock = std::chrono::steady_clock;

  // `who` names the owner in log lines ("persistence reader", "outbox").
  guarded_store(std::unique_ptr<Store> store, std::string who, std::string url,
                std::chrono::milliseconds backoff_min, std::chrono::milliseconds backoff_max)
    : store_(std::move(store)), who_(std::move(who)), url_(std::move(url)),
      min_(backoff_min), max_(backoff_max) {}

  // nullopt when the store is usable now, else the failure to answer with.
  std::optional<failure> ensure_connected() {
    if (store_->connected())
      return std::nullopt;
    if (clock::now() < next_attempt_)
      return fail(billing_errc::unavailable, "database unavailable");
    auto r = store_->connect();
    if (ok(r)) {
      if (backoff_.count() > 0)
        spdlog::info("{}: database connection restored", who_);
      backoff_ = std::chrono::milliseconds{0};
      return std::nullopt;
    }
    if (backoff_.count() == 0)
      spdlog::warn("{}: cannot connect to {}: {}", who_, redact(url_), std::get<failure>(r).message);
    backoff_ = backoff_.count() == 0 ? min_ : std::min(backoff_ * 2, max_);
    next_attempt_ = clock::now() + backoff_;
    return std::get<failure>(std::move(r));
  }

  // After a use that dropped the connection, the next attempt waits.
  void after_use() {
    if (!store_->connected()) {
      backoff_ = min_;
      next_attempt_ = clock::now() + backoff_;
    }
  }

  // Runs `op(store)` if the store is usable, else answers the failure.
  template <class Result, class Op>
  Result run(Op op) {
    if (auto f = ensure_connected())
      return std::move(*f);
    Result r = op(*store_);
    after_use();
    return r;
  }

  Store& store() { return *store_; }

private:
  std::unique_ptr<Store> store_;
  std::string who_;
  std::string url_;
  std::chrono::milliseconds min_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds backoff_{0};
  clock::time_point next_attempt_{};
};

} // namespace billing::pg_detail
