#include "net/request_metrics.hpp"

#include <algorithm>

namespace billing::net {

namespace {

struct route_label {
  const char* route;
  const char* method;
};
constexpr std::array<route_label, http_route_count> route_labels = {{
  {"/v1/invoices", "POST"},
  {"/v1/invoices", "GET"},
  {"/v1/invoices/{id}", "GET"},
  {"/v1/invoices/{id}/cancel", "POST"},
  {"/v1/invoices/{id}/refunds", "POST"},
  {"/webhook", "POST"},
  {"/v1/simulator/payments/{id}", "POST"},
  {"/healthz", "GET"},
  {"/readyz", "GET"},
  {"/metrics", "GET"},
  {"other", "other"},
}};

constexpr std::array<const char*, 5> status_classes = {"1xx", "2xx", "3xx", "4xx", "5xx"};

constexpr std::array<const char*, webhook_verdict_count> verdict_names = {
  "applied", "duplicate", "stale", "no_effect", "unknown_invoice",
  "mismatch", "invalid_state", "bad_signature", "bad_body", "failed"};

void head(std::ostream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

} // namespace

void latency_histogram::observe(std::chrono::nanoseconds d) noexcept {
  const double s = static_cast<double>(d.count()) / 1e9;
  const auto it = std::lower_bound(latency_bounds.begin(), latency_bounds.end(), s);
  buckets_[static_cast<size_t>(it - latency_bounds.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, d.count())), std::memory_order_relaxed);
}

void latency_histogram::write(std::ostream& out, std::string_view name, std::string_view labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < latency_bounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out << name << "_bucket{" << labels << ",le=\"" << latency_bounds[i] << "\"} " << cumulative << '\n';
  }
  cumulative += buckets_.back().load(std::memory_order_relaxed);
  out << name << "_bucket{" << labels << ",le=\"+Inf\"} " << cumulative << '\n'
      << name << "_sum{" << labels << "} " << static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9
      << '\n'
      << name << "_count{" << labels << "} " << cumulative << '\n';
}

uint64_t latency_histogram::count() const noexcept {
  uint64_t n = 0;
  for (auto& b : buckets_)
    n += b.load(std::memory_order_relaxed);
  return n;
}

std::string_view to_string(grpc_method m) noexcept {
  static constexpr std::array<std::string_view, grpc_method_count> names = {
    "CreateInvoice", "GetInvoice", "ListInvoices", "CancelInvoice", "WatchInvoice", "RefundInvoice"};
  return names[static_cast<size_t>(m)];
}

webhook_verdict verdict_of(outcome o) noexcept {
  switch (o) {
    case outcome::applied: return webhook_verdict::applied;
    case outcome::ignored_duplicate: return webhook_verdict::duplicate;
    case outcome::ignored_stale: return webhook_verdict::stale;
    case outcome::ignored_no_effect: return webhook_verdict::no_effect;
    case outcome::ignored_unknown_invoice: return webhook_verdict::unknown_invoice;
    case outcome::rejected_mismatch: return webhook_verdict::mismatch;
    case outcome::rejected_invalid_state: return webhook_verdict::invalid_state;
  }
  return webhook_verdict::failed;
}

size_t webhook_type_index(std::string_view type) noexcept {
  for (size_t i = 0; i + 2 < webhook_types.size(); ++i)
    if (webhook_types[i] == type)
      return i;
  return webhook_types.size() - 2; // "other"
}

void request_metrics::observe_http(http_route r, unsigned status, std::chrono::nanoseconds d) noexcept {
  const size_t cls = std::clamp<unsigned>(status / 100, 1, 5) - 1;
  http[static_cast<size_t>(r)][cls].observe(d);
}

void request_metrics::observe_grpc(grpc_method m, grpc_code c, std::chrono::nanoseconds d) noexcept {
  const auto code = std::min<size_t>(static_cast<size_t>(c), 16);
  grpc[static_cast<size_t>(m)][code].observe(d);
}

void request_metrics::count_webhook(size_t type_index, webhook_verdict v) noexcept {
  webhooks[std::min(type_index, webhook_types.size() - 1)][static_cast<size_t>(v)].fetch_add(
    1, std::memory_order_relaxed);
}

void request_metrics::write(std::ostream& out) const {
  const char* http_name = "billing_http_request_duration_seconds";
  head(out, http_name, "histogram",
       "HTTP requests from the first byte parsed to the answer handed back, by route, method and status class");
  for (size_t r = 0; r < http_route_count; ++r)
    for (size_t c = 0; c < status_classes.size(); ++c)
      if (c == 1 || http[r][c].count() > 0)
        http[r][c].write(out, http_name,
                         std::string{"route=\""} + route_labels[r].route + "\",method=\"" + route_labels[r].method
                           + "\",status_class=\"" + status_classes[c] + '"');
  const char* grpc_name = "billing_grpc_request_duration_seconds";
  head(out, grpc_name, "histogram",
       "gRPC calls of billing.v1.BillingService from arrival to Finish, by method and status code "
       "(WatchInvoice: the whole stream)");
  for (size_t m = 0; m < grpc_method_count; ++m)
    for (size_t c = 0; c <= 16; ++c)
      if (c == 0 || grpc[m][c].count() > 0)
        grpc[m][c].write(out, grpc_name,
                         std::string{"method=\""} + std::string{to_string(static_cast<grpc_method>(m))}
                           + "\",code=\"" + grpc_code_name(static_cast<grpc_code>(c)) + '"');
  const char* wh = "billing_webhook_events_total";
  head(out, wh, "counter",
       "webhook deliveries by event type (\"unverified\" when the signature failed, \"other\" for types "
       "billingd does not name) and verdict");
  for (size_t t = 0; t < webhook_types.size(); ++t)
    for (size_t v = 0; v < webhook_verdict_count; ++v)
      out << wh << "{type=\"" << webhook_types[t] << "\",verdict=\"" << verdict_names[v] << "\"} "
          << webhooks[t][v].load(std::memory_order_relaxed) << '\n';
  head(out, "billing_grpc_watches", "gauge", "WatchInvoice streams open now");
  out << "billing_grpc_watches " << grpc_watches.load(std::memory_order_relaxed) << '\n';
}

} // namespace billing::net
