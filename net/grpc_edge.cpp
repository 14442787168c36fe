#include "net/grpc_edge.hpp"

#include "billing/v1/billing.grpc.pb.h"
#include "net/edge_auth.hpp"
#include "net/grpc_codec.hpp"
#include "net/grpc_watch.hpp"
#include "net/log_summary.hpp"
#include "net/request_id.hpp"
#include "net/status_map.hpp"
#include "protocol/json_codec.hpp"
#include "protocol/log_context.hpp"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace billing::net {

namespace {

using steady = std::chrono::steady_clock;
constexpr const char* service_name = "billing.v1.BillingService";

std::string_view metadata(const grpc::CallbackServerContext* ctx, std::string_view key) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(grpc::string_ref{key.data(), key.size()});
  return it == md.end() ? std::string_view{} : std::string_view{it->second.data(), it->second.size()};
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return std::nullopt;
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::optional<failure> check_invoice_id(std::string_view id) {
  if (id.empty())
    return fail(billing_errc::invalid_argument, "invoice_id is required", "invoice_id");
  if (!is_canonical_uuid(id))
    return fail(billing_errc::invalid_argument, "invoice_id must be a lower-case UUID (an invoice id)",
                "invoice_id");
  return std::nullopt;
}

// A stream answered at once (refused before it started).
class refused_stream final : public grpc::ServerWriteReactor<pb::InvoiceStatusChange> {
public:
  explicit refused_stream(const grpc::Status& st) { Finish(st); }
  void OnDone() override { delete this; }
};

// One call on its way through the edge.
struct call {
  grpc_method method{};
  std::string request_id;
  std::string key_name = "-";
  const api_key_entry* key = nullptr;
  steady::time_point started = steady::now();
};
using call_ptr = std::shared_ptr<call>;

} // namespace

struct grpc_edge::impl final : pb::BillingService::CallbackService {
  impl(billing_api& a, grpc_edge_config c)
    : api(a), cfg(std::move(c)), hub(a, cfg.max_watches, cfg.watch_interval, cfg.metrics),
      server_errors("gRPC call failed", cfg.log_summary_interval),
      secret_errors("GetInvoice without the client secret", cfg.log_summary_interval) {}

  billing_api& api;
  grpc_edge_config cfg;
  watch_hub hub;
  log_summary server_errors;
  log_summary secret_errors;
  std::unique_ptr<grpc::Server> server;
  int bound_port = 0;

  std::mutex mu;
  std::condition_variable cv;
  int64_t in_flight = 0; // guarded by mu: calls not finished yet
  bool stopping = false; // guarded by mu
  std::thread health;

  // -- the steps every call takes ---------------------------------------------

  call_ptr begin(grpc::CallbackServerContext* ctx, grpc_method m) {
    auto c = std::make_shared<call>();
    c->method = m;
    c->request_id = request_id_from(metadata(ctx, "x-request-id"));
    ctx->AddInitialMetadata("x-request-id", c->request_id);
    std::lock_guard lock{mu};
    ++in_flight;
    return c;
  }

  // Deadline, key, scope and rate limit; a status to answer with, or OK.
  grpc::Status admit(grpc::CallbackServerContext* ctx, call& c, scope needed) {
    if (ctx->deadline() <= std::chrono::system_clock::now() + cfg.min_deadline)
      return grpc::Status{grpc::StatusCode::DEADLINE_EXCEEDED,
                          "the deadline passes before billingd could answer; nothing was done (request_id "
                            + c.request_id + ")"};
    if (ctx->IsCancelled())
      return grpc::Status::CANCELLED;
    auto a = admit_call(*cfg.keys, cfg.limits.get(), *cfg.stats, metadata(ctx, "authorization"), needed);
    c.key_name = a.key_name;
    if (a.refused) {
      if (a.refused->code == billing_errc::rate_limited)
        ctx->AddTrailingMetadata("retry-after", std::to_string(a.retry_after));
      return failed(c, *a.refused);
    }
    c.key = a.key;
    return grpc::Status::OK;
  }

  // The status for a failure, with what the log needs about it.
  grpc::Status failed(const call& c, const failure& f) {
    if (f.code == billing_errc::internal) {
      cfg.stats->internal_errors.fetch_add(1, std::memory_order_relaxed);
      spdlog::error("grpc {} request_id={}: internal error: {}", to_string(c.method), c.request_id, f.message);
    } else if (server_side(f.code)) {
      server_errors.warn(std::string{to_string(c.method)} + " answered "
                         + grpc_code_name(grpc_status(f.code)) + " request_id=" + c.request_id + ": "
                         + f.message);
    }
    return to_status(f, c.request_id);
  }

  void finish(grpc::ServerUnaryReactor* r, const call_ptr& c, const grpc::Status& st) {
    observe(*c, st.error_code());
    r->Finish(st);
    done_one();
  }

  void observe(const call& c, grpc::StatusCode code) {
    const auto elapsed = steady::now() - c.started;
    cfg.metrics->observe_grpc(c.method, static_cast<grpc_code>(code), elapsed);
    spdlog::info("grpc {} {} key={} request_id={} {:.1f} ms", to_string(c.method),
                 grpc_code_name(static_cast<grpc_code>(code)), c.key_name, c.request_id,
                 std::chrono::duration<double, std::milli>(elapsed).count());
  }

  void done_one() {
    std::lock_guard lock{mu};
    if (--in_flight == 0)
      cv.notify_all();
  }

  // -- BillingService -----------------------------------------------------------

  grpc::ServerUnaryReactor* CreateInvoice(grpc::CallbackServerContext* ctx, const pb::CreateInvoiceRequest* req,
                                          pb::CreateInvoiceResponse* resp) override {
    auto* r = ctx->DefaultReactor();
    auto c = begin(ctx, grpc_method::create_invoice);
    log_scope lctx{c->request_id};
    if (auto st = admit(ctx, *c, scope::invoices_write); !st.ok()) {
      finish(r, c, st);
      return r;
    }
    auto parsed = from_proto(*req);
    if (!ok(parsed)) {
      finish(r, c, failed(*c, std::get<failure>(parsed)));
      return r;
    }
    api.create_invoice(std::move(std::get<create_invoice_request>(parsed)), [this, r, resp, c](invoice_result res) {
      log_scope lctx{c->request_id};
      if (!ok(res))
        return finish(r, c, failed(*c, std::get<failure>(res)));
      auto& v = std::get<invoice_view>(res);
      log_scope::set_invoice(v.inv.id.str());
      resp->set_stripe_client_secret(v.client_secret);
      resp->set_checkout_url(v.checkout_url);
      resp->set_invoice_id(v.inv.id.str());
      to_proto(v.inv, resp->mutable_invoice());
      resp->set_created(v.created);
      finish(r, c, grpc::Status::OK);
    });
    return r;
  }

  grpc::ServerUnaryReactor* GetInvoice(grpc::CallbackServerContext* ctx, const pb::GetInvoiceRequest* req,
                                       pb::GetInvoiceResponse* resp) override {
    auto* r = ctx->DefaultReactor();
    auto c = begin(ctx, grpc_method::get_invoice);
    log_scope lctx{c->request_id};
    if (auto st = admit(ctx, *c, scope::invoices_read); !st.ok()) {
      finish(r, c, st);
      return r;
    }
    auto answer = [this, r, resp, c](invoice_result res) {
      log_scope lctx{c->request_id};
      if (!ok(res))
        return finish(r, c, failed(*c, std::get<failure>(res)));
      const invoice inv = std::get<invoice_view>(res).inv;
      log_scope::set_invoice(inv.id.str());
      resp->set_status(to_proto(inv.status));
      to_proto(inv, resp->mutable_invoice());
      const bool unpaid = inv.status == invoice_status::pending || inv.status == invoice_status::failed;
      if (!unpaid || !c->key->scopes.has(scope::invoices_write))
        return finish(r, c, grpc::Status::OK);
      // The client secret (a Checkout invoice: its session's URL), for a
      // writer of an unpaid invoice. Without it (not available) the caller
      // still learns the status.
      api.get_invoice_secret(inv.id, [this, r, resp, c](invoice_result s) {
        log_scope lctx{c->request_id};
        if (ok(s)) {
          resp->set_stripe_client_secret(std::get<invoice_view>(s).client_secret);
          resp->set_checkout_url(std::get<invoice_view>(s).checkout_url);
        }
        else
          secret_errors.warn("request_id=" + c->request_id + ": " + std::get<failure>(s).message);
        finish(r, c, grpc::Status::OK);
      });
    };
    switch (req->key_case()) {
      case pb::GetInvoiceRequest::kInvoiceId:
        if (auto err = check_invoice_id(req->invoice_id()))
          finish(r, c, failed(*c, *err));
        else
          api.get_invoice(invoice_id{req->invoice_id()}, std::move(answer));
        break;
      case pb::GetInvoiceRequest::kShipmentId: {
        if (auto err = check_id(req->shipment_id(), "shipment_id")) {
          finish(r, c, failed(*c, *err));
          break;
        }
        invoice_filter filter;
        filter.shipment_id = req->shipment_id();
        filter.limit = 1; // the newest
        api.list_invoices(std::move(filter), [this, r, c, answer, shipment = req->shipment_id()](list_result l) {
          log_scope lctx{c->request_id};
          if (!ok(l))
            return finish(r, c, failed(*c, std::get<failure>(l)));
          auto& list = std::get<std::vector<invoice>>(l);
          if (list.empty())
            return finish(r, c, failed(*c, fail(billing_errc::not_found, "no invoice for this shipment_id")));
          // Read it again by id: the list row is a snapshot without the
          // invoice actor's latest state.
          api.get_invoice(list.front().id, answer);
        });
        break;
      }
      default:
        finish(r, c, failed(*c, fail(billing_errc::invalid_argument, "give invoice_id or shipment_id", "invoice_id")));
    }
    return r;
  }

  grpc::ServerUnaryReactor* ListInvoices(grpc::CallbackServerContext* ctx, const pb::ListInvoicesRequest* req,
                                         pb::ListInvoicesResponse* resp) override {
    auto* r = ctx->DefaultReactor();
    auto c = begin(ctx, grpc_method::list_invoices);
    log_scope lctx{c->request_id};
    if (auto st = admit(ctx, *c, scope::invoices_read); !st.ok()) {
      finish(r, c, st);
      return r;
    }
    auto refuse = [&](failure f) {
      finish(r, c, failed(*c, f));
      return r;
    };
    invoice_filter filter;
    for (auto [value, name, target] : {std::tuple{&req->workflow_id(), "workflow_id", &filter.workflow_id},
                                       std::tuple{&req->shipment_id(), "shipment_id", &filter.shipment_id}}) {
      if (value->empty())
        continue;
      if (auto err = check_id(*value, name))
        return refuse(*err);
      *target = *value;
    }
    if (filter.workflow_id.empty() && filter.shipment_id.empty())
      return refuse(fail(billing_errc::invalid_argument, "give workflow_id or shipment_id", "workflow_id"));
    const int32_t page_size = req->page_size() == 0 ? 100 : req->page_size();
    if (page_size < 1 || page_size > 1000)
      return refuse(fail(billing_errc::invalid_argument, "page_size must be from 1 to 1000 (0: 100)", "page_size"));
    const std::string filter_key = "w=" + filter.workflow_id + "\ns=" + filter.shipment_id;
    std::optional<page_cursor> cursor;
    if (!req->page_token().empty()) {
      cursor = decode_page_token(req->page_token(), filter_key);
      if (!cursor)
        return refuse(fail(billing_errc::invalid_argument,
                           "page_token is not a next_page_token of this list (same workflow_id and shipment_id)",
                           "page_token"));
    }
    // billing_api lists the newest invoices (at most 1000); pages are cut
    // from that window by the cursor, so an invoice created between two
    // pages never shifts what the next page holds.
    filter.limit = cursor ? 1000 : std::min(page_size + 1, 1000);
    api.list_invoices(std::move(filter), [this, r, resp, c, cursor, page_size, filter_key](list_result l) {
      log_scope lctx{c->request_id};
      if (!ok(l))
        return finish(r, c, failed(*c, std::get<failure>(l)));
      auto& list = std::get<std::vector<invoice>>(l);
      int32_t taken = 0;
      bool more = false;
      const invoice* last = nullptr;
      for (auto& inv : list) {
        if (cursor && !after_cursor(inv, *cursor))
          continue;
        if (taken == page_size) {
          more = true;
          break;
        }
        to_proto(inv, resp->add_invoices());
        last = &inv;
        ++taken;
      }
      if (more && last)
        resp->set_next_page_token(encode_page_token({last->created_at, last->id.str()}, filter_key));
      finish(r, c, grpc::Status::OK);
    });
    return r;
  }

  // The key, its scope and the invoice id of a call about one invoice;
  // false: the call is finished with the refusal.
  bool admit_about_invoice(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* r, const call_ptr& c,
                           scope needed, const std::string& id) {
    if (auto st = admit(ctx, *c, needed); !st.ok()) {
      finish(r, c, st);
      return false;
    }
    if (auto err = check_invoice_id(id)) {
      finish(r, c, failed(*c, *err));
      return false;
    }
    return true;
  }

  grpc::ServerUnaryReactor* CancelInvoice(grpc::CallbackServerContext* ctx, const pb::CancelInvoiceRequest* req,
                                          pb::CancelInvoiceResponse* resp) override {
    auto* r = ctx->DefaultReactor();
    auto c = begin(ctx, grpc_method::cancel_invoice);
    log_scope lctx{c->request_id, req->invoice_id()};
    if (!admit_about_invoice(ctx, r, c, scope::invoices_write, req->invoice_id()))
      return r;
    api.cancel_invoice(invoice_id{req->invoice_id()}, [this, r, resp, c](invoice_result res) {
      log_scope lctx{c->request_id};
      if (!ok(res))
        return finish(r, c, failed(*c, std::get<failure>(res)));
      to_proto(std::get<invoice_view>(res).inv, resp->mutable_invoice());
      finish(r, c, grpc::Status::OK);
    });
    return r;
  }

  grpc::ServerUnaryReactor* RefundInvoice(grpc::CallbackServerContext* ctx, const pb::RefundInvoiceRequest* req,
                                          pb::RefundInvoiceResponse* resp) override {
    auto* r = ctx->DefaultReactor();
    auto c = begin(ctx, grpc_method::refund_invoice);
    log_scope lctx{c->request_id, req->invoice_id()};
    if (!admit_about_invoice(ctx, r, c, scope::invoices_write, req->invoice_id()))
      return r;
    auto parsed = from_proto(*req);
    if (!ok(parsed)) {
      finish(r, c, failed(*c, std::get<failure>(parsed)));
      return r;
    }
    api.refund_invoice(invoice_id{req->invoice_id()}, std::move(std::get<refund_invoice_request>(parsed)),
                       [this, r, resp, c](refund_view_result res) {
                         log_scope lctx{c->request_id};
                         if (!ok(res))
                           return finish(r, c, failed(*c, std::get<failure>(res)));
                         auto& v = std::get<refund_view>(res);
                         resp->set_refund_id(v.refund_id);
                         resp->set_refund_status(v.refund_status);
                         resp->set_amount_cents(v.amount_cents);
                         resp->set_created(v.created);
                         to_proto(v.inv, resp->mutable_invoice());
                         finish(r, c, grpc::Status::OK);
                       });
    return r;
  }

  grpc::ServerWriteReactor<pb::InvoiceStatusChange>* WatchInvoice(grpc::CallbackServerContext* ctx,
                                                                  const pb::WatchInvoiceRequest* req) override {
    auto c = begin(ctx, grpc_method::watch_invoice);
    log_scope lctx{c->request_id, req->invoice_id()};
    auto refuse = [&](const grpc::Status& st) -> grpc::ServerWriteReactor<pb::InvoiceStatusChange>* {
      observe(*c, st.error_code());
      auto* s = new refused_stream(st);
      done_one();
      return s;
    };
    if (auto st = admit(ctx, *c, scope::invoices_read); !st.ok())
      return refuse(st);
    if (auto err = check_invoice_id(req->invoice_id()))
      return refuse(failed(*c, *err));
    auto* w = hub.open(invoice_id{req->invoice_id()}, c->request_id, [this, c](grpc::StatusCode code) {
      observe(*c, code);
      done_one();
    });
    if (!w)
      return refuse(failed(*c, fail(billing_errc::overloaded, "too many WatchInvoice streams are open")));
    return w;
  }

  // -- health -------------------------------------------------------------------

  void run_health() {
    auto* hc = server->GetHealthCheckService();
    std::optional<bool> shown;
    std::unique_lock lock{mu};
    while (!stopping) {
      lock.unlock(); // calls finishing meanwhile need mu
      const bool ready = api.ready();
      if (shown != ready) {
        hc->SetServingStatus("", ready);
        hc->SetServingStatus(service_name, ready);
        shown = ready;
      }
      lock.lock();
      if (!stopping)
        cv.wait_for(lock, cfg.health_interval);
    }
  }
};

grpc_edge::grpc_edge(billing_api& api, grpc_edge_config cfg)
  : impl_(std::make_unique<impl>(api, std::move(cfg))) {}

grpc_edge::~grpc_edge() { stop(); }

uint16_t grpc_edge::port() const noexcept { return static_cast<uint16_t>(impl_->bound_port); }

bool grpc_edge::start(std::string& error) {
  auto& m = *impl_;
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (!m.cfg.tls_cert_file.empty() || !m.cfg.tls_key_file.empty()) {
    auto cert = read_file(m.cfg.tls_cert_file), key = read_file(m.cfg.tls_key_file);
    if (!cert || !key) {
      error = "cannot read the TLS " + std::string{cert ? "key file " + m.cfg.tls_key_file
                                                        : "certificate file " + m.cfg.tls_cert_file};
      return false;
    }
    grpc::SslServerCredentialsOptions opts;
    opts.pem_key_cert_pairs.push_back({*key, *cert});
    creds = grpc::SslServerCredentials(opts);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  grpc::EnableDefaultHealthCheckService(true);
  // Explicitly: a static registration may be dropped by --as-needed.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  const auto& a = m.cfg.address;
  const std::string where = (a.find(':') != std::string::npos && a.front() != '[' ? "[" + a + "]" : a) + ":"
                            + std::to_string(m.cfg.port);
  grpc::ServerBuilder b;
  b.AddListeningPort(where, creds, &m.bound_port);
  b.RegisterService(&m);
  b.SetMaxReceiveMessageSize(static_cast<int>(m.cfg.max_message_bytes));
  // Two billingd on one port would silently share it.
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  m.server = b.BuildAndStart();
  if (!m.server || m.bound_port == 0) {
    m.server.reset();
    error = "cannot listen on " + where + " (in use, or not an address of this machine)";
    return false;
  }
  m.health = std::thread{[&m] { m.run_health(); }};
  return true;
}

void grpc_edge::stop(std::chrono::milliseconds drain) {
  auto& m = *impl_;
  {
    std::lock_guard lock{m.mu};
    if (m.stopping)
      return;
    m.stopping = true;
  }
  m.cv.notify_all();
  if (m.health.joinable())
    m.health.join();
  if (!m.server) {
    m.hub.stop();
    return;
  }
  auto* hc = m.server->GetHealthCheckService();
  hc->SetServingStatus("", false);
  hc->SetServingStatus(service_name, false);
  m.hub.stop();
  m.server->Shutdown(std::chrono::system_clock::now() + drain);
  // billing_api answers every call (bounded by its request timeout); the
  // reactors must be finished before the server goes.
  std::unique_lock lock{m.mu};
  if (!m.cv.wait_for(lock, drain + std::chrono::seconds(30), [&m] { return m.in_flight == 0; }))
    spdlog::error("gRPC edge: {} calls still unfinished after the drain; stopping anyway", m.in_flight);
  lock.unlock();
  m.server->Wait();
  m.server.reset();
}

} // namespace billing::net
