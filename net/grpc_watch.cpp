#include "net/grpc_watch.hpp"

#include "net/grpc_codec.hpp"
#include "protocol/log_context.hpp"

#include <spdlog/spdlog.h>

#include <deque>
#include <optional>

namespace billing::net {

namespace {
using message = ::billing::v1::InvoiceStatusChange;
constexpr size_t max_queued = 16; // status changes waiting for a write; more means a stuck reader
} // namespace

bool settled(invoice_status s) noexcept {
  return s != invoice_status::pending && s != invoice_status::failed;
}

class watch_reactor;

// Everything about one watch, shared by its stream (until OnDone), the hub
// and reads in flight.
struct watch_state {
  invoice_id id;
  std::string request_id;
  watch_hub::on_end done_cb;

  std::mutex mu;
  watch_reactor* reactor = nullptr;      // null after OnDone
  bool polling = false;                  // a read is in flight
  bool writing = false;                  // a StartWrite is outstanding
  bool finishing = false;                // Finish decided (it is called once)
  std::optional<grpc::Status> finish_with; // decided, waiting for the write in flight
  bool flush_first = false;              // write the queue before finishing (a settled status)
  std::optional<invoice_status> last;    // the last status queued for the caller
  std::deque<message> queue;             // messages not written yet

  // Decides under the lock; the caller performs what it returns, unlocked.
  struct action {
    const message* write = nullptr;
    std::optional<grpc::Status> finish;
  };
  action next_locked();
  void perform(action a);
  void end(grpc::Status st); // finish (after the write in flight) unless already finishing
  void on_invoice(invoice_result r);
};

class watch_reactor final : public grpc::ServerWriteReactor<message> {
public:
  explicit watch_reactor(std::shared_ptr<watch_state> s) : state_(std::move(s)) {}

  void OnWriteDone(bool ok) override {
    watch_state::action a;
    {
      std::lock_guard lock{state_->mu};
      state_->writing = false;
      if (!state_->queue.empty())
        state_->queue.pop_front();
      if (!ok && !state_->finishing) { // the stream broke (the caller went away)
        state_->finish_with = grpc::Status::CANCELLED;
        state_->flush_first = false;
      }
      a = state_->next_locked();
    }
    state_->perform(a);
  }

  void OnCancel() override { state_->end(grpc::Status::CANCELLED); }

  void OnDone() override {
    {
      std::lock_guard lock{state_->mu};
      state_->reactor = nullptr;
    }
    delete this;
  }

  void write(const message* m) { StartWrite(m); }
  void finish(const grpc::Status& st) { Finish(st); }

private:
  std::shared_ptr<watch_state> state_;
};

watch_state::action watch_state::next_locked() {
  action a;
  if (finishing || reactor == nullptr || writing)
    return a;
  if (!queue.empty() && (!finish_with || flush_first)) {
    writing = true;
    a.write = &queue.front(); // stays put until OnWriteDone pops it
    return a;
  }
  if (finish_with) {
    finishing = true;
    a.finish = std::move(finish_with);
    finish_with.reset();
  }
  return a;
}

void watch_state::perform(action a) {
  // The reactor lives until OnDone, which comes only after our Finish: while
  // we have not finished, it is safe to use without the lock.
  if (a.write)
    reactor->write(a.write);
  else if (a.finish) {
    auto code = a.finish->error_code();
    reactor->finish(*a.finish);
    if (done_cb)
      done_cb(code);
  }
}

void watch_state::end(grpc::Status st) {
  action a;
  {
    std::lock_guard lock{mu};
    if (finishing || (finish_with && !flush_first))
      return;
    // Cancel and stop end the stream without writing what is queued (the
    // queue itself stays: a write in flight points into it).
    finish_with = std::move(st);
    flush_first = false;
    a = next_locked();
  }
  perform(a);
}

void watch_state::on_invoice(invoice_result r) {
  log_scope lctx{request_id, id.str()};
  action a;
  {
    std::lock_guard lock{mu};
    polling = false;
    if (finishing || finish_with)
      return;
    if (auto* f = std::get_if<failure>(&r)) {
      switch (f->code) {
        case billing_errc::unavailable:
        case billing_errc::overloaded:
        case billing_errc::timeout:
          return; // try again at the next interval
        default:
          if (f->code == billing_errc::internal)
            spdlog::error("WatchInvoice request_id={}: internal error: {}", request_id, f->message);
          finish_with = to_status(*f, request_id);
      }
    } else {
      const auto& inv = std::get<invoice_view>(r).inv;
      if (!last || *last != inv.status) {
        if (queue.size() >= max_queued) {
          finish_with = grpc::Status{grpc::StatusCode::RESOURCE_EXHAUSTED,
                                     "the caller does not read the stream (request_id " + request_id + ")"};
        } else {
          message m;
          m.set_invoice_id(inv.id.str());
          m.set_status(to_proto(inv.status));
          to_proto(inv, m.mutable_invoice());
          queue.push_back(std::move(m));
          last = inv.status;
          if (settled(inv.status)) {
            finish_with = grpc::Status::OK;
            flush_first = true;
          }
        }
      }
    }
    a = next_locked();
  }
  perform(a);
}

watch_hub::watch_hub(billing_api& api, size_t max_watches, std::chrono::milliseconds interval,
                     std::shared_ptr<request_metrics> metrics)
  : api_(api), max_watches_(max_watches), interval_(interval), metrics_(std::move(metrics)) {
  thread_ = std::thread{[this] { run(); }};
}

watch_hub::~watch_hub() { stop(); }

grpc::ServerWriteReactor<message>* watch_hub::open(invoice_id id, std::string request_id, on_end done) {
  auto w = std::make_shared<watch_state>();
  w->id = std::move(id);
  w->request_id = std::move(request_id);
  auto metrics = metrics_;
  w->done_cb = [metrics, done = std::move(done)](grpc::StatusCode c) {
    metrics->grpc_watches.fetch_sub(1, std::memory_order_relaxed);
    if (done)
      done(c);
  };
  auto* reactor = new watch_reactor(w);
  w->reactor = reactor;
  {
    std::lock_guard lock{mu_};
    // Finished watches leave at the next tick; count only live ones here.
    size_t live = 0;
    for (auto& x : watches_) {
      std::lock_guard wl{x->mu};
      live += x->finishing ? 0 : 1;
    }
    if (stopped_ || live >= max_watches_) {
      w->reactor = nullptr;
      delete reactor; // never handed to gRPC
      return nullptr;
    }
    watches_.push_back(w);
  }
  metrics_->grpc_watches.fetch_add(1, std::memory_order_relaxed);
  poll(w); // the first message: the invoice as it is now
  return reactor;
}

void watch_hub::poll(const std::shared_ptr<watch_state>& w) {
  {
    std::lock_guard lock{w->mu};
    if (w->polling || w->finishing || w->finish_with)
      return;
    w->polling = true;
  }
  api_.get_invoice(w->id, [w](invoice_result r) { w->on_invoice(std::move(r)); });
}

void watch_hub::run() {
  std::unique_lock lock{mu_};
  while (!stopped_) {
    wake_.wait_for(lock, interval_);
    if (stopped_)
      break;
    std::vector<std::shared_ptr<watch_state>> live;
    std::erase_if(watches_, [](const std::shared_ptr<watch_state>& w) {
      std::lock_guard wl{w->mu};
      return w->finishing && w->reactor == nullptr;
    });
    live = watches_;
    lock.unlock();
    for (auto& w : live)
      poll(w);
    lock.lock();
  }
}

void watch_hub::stop() {
  std::vector<std::shared_ptr<watch_state>> all;
  {
    std::lock_guard lock{mu_};
    if (stopped_ && !thread_.joinable())
      return;
    stopped_ = true;
    all = watches_;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
  for (auto& w : all)
    w->end(grpc::Status{grpc::StatusCode::UNAVAILABLE, "billingd is stopping; watch again (request_id "
                                                         + w->request_id + ")"});
}

size_t watch_hub::open_count() const {
  std::lock_guard lock{mu_};
  size_t live = 0;
  for (auto& x : watches_) {
    std::lock_guard wl{x->mu};
    live += x->finishing ? 0 : 1;
  }
  return live;
}

} // namespace billing::net
