#include "bench/http_load.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <deque>
#include <memory>
#include <optional>
#include <queue>

namespace billing::bench {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct job {
  uint64_t item = 0;
  int attempt = 0;
  clock::time_point due; // latency counts from here
};

struct later_first {
  bool operator()(const job& a, const job& b) const { return a.due > b.due; }
};

class engine {
public:
  engine(const load_options& o, workload& w)
    : o_(o), w_(w), ioc_(1), wake_(ioc_), ticker_(ioc_) {}

  load_result run() {
    beast::error_code ec;
    auto address = asio::ip::make_address(o_.host, ec);
    if (ec) {
      tcp::resolver resolver{ioc_};
      auto found = resolver.resolve(o_.host, std::to_string(o_.port), ec);
      if (ec || found.empty()) {
        r_.first_error = "cannot resolve " + o_.host + ": " + ec.message();
        return std::move(r_);
      }
      endpoint_ = found.begin()->endpoint();
    } else {
      endpoint_ = tcp::endpoint{address, o_.port};
    }
    for (int i = 0; i < std::max(1, o_.connections); ++i)
      conns_.push_back(std::make_unique<conn>(ioc_));
    // Open every connection before the clock starts, so the run measures
    // requests, not the handshakes.
    size_t pending = conns_.size();
    for (auto& c : conns_) {
      c->stream.async_connect(endpoint_, [this, raw = c.get(), &pending](beast::error_code e) {
        if (!e)
          on_connected(raw);
        if (--pending == 0)
          begin();
      });
    }
    ioc_.run();
    for (auto& c : conns_) {
      beast::error_code ignored;
      c->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      c->stream.socket().close(ignored);
    }
    return std::move(r_);
  }

private:
  struct conn {
    explicit conn(asio::io_context& ioc) : stream(ioc) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    std::optional<http::response_parser<http::string_body>> parser;
    outgoing out;
    job current;
    clock::time_point sent;
    bool connected = false;
  };

  void on_connected(conn* c) {
    c->connected = true;
    ++r_.connects;
    beast::error_code ignored;
    c->stream.socket().set_option(tcp::no_delay(true), ignored);
  }

  void begin() {
    t0_ = clock::now();
    if (o_.duration.count() > 0)
      end_ = t0_ + o_.duration;
    for (auto& c : conns_)
      idle_.push_back(c.get());
    if (o_.progress)
      tick();
    if (open_loop())
      release_paced(t0_);
    dispatch();
    arm();
  }

  bool open_loop() const { return o_.rate > 0; }

  clock::time_point due_of(uint64_t item) const {
    return t0_ + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(item) * 1e9 / o_.rate));
  }

  // May item next_item_ still be started (ignoring its due time)?
  bool more_new(clock::time_point now) const {
    if (o_.items > 0 && next_item_ >= o_.items)
      return false;
    if (o_.items == 0 && o_.duration.count() == 0)
      return false;
    if (end_) {
      auto when = open_loop() ? due_of(next_item_) : now;
      if (when >= *end_)
        return false;
    }
    return true;
  }

  void release_paced(clock::time_point now) {
    while (more_new(now) && due_of(next_item_) <= now) {
      ready_.push_back(job{next_item_, 0, due_of(next_item_)});
      ++next_item_;
    }
  }

  void release_retries(clock::time_point now) {
    while (!retries_.empty() && retries_.top().due <= now) {
      ready_.push_back(retries_.top());
      retries_.pop();
    }
  }

  bool next_job(job& j, clock::time_point now) {
    if (!ready_.empty()) {
      j = ready_.front();
      ready_.pop_front();
      return true;
    }
    if (!open_loop() && more_new(now)) {
      j = job{next_item_++, 0, now};
      return true;
    }
    return false;
  }

  void dispatch() {
    auto now = clock::now();
    for (;;) {
      if (idle_.empty()) {
        // Open loop under a backlog: grow the pool, up to max_connections.
        if (!open_loop() || ready_.empty() || static_cast<int>(conns_.size()) >= o_.max_connections)
          break;
        conns_.push_back(std::make_unique<conn>(ioc_));
        idle_.push_back(conns_.back().get());
      }
      job j;
      if (!next_job(j, now))
        break;
      conn* c = idle_.back();
      idle_.pop_back();
      start(c, j);
    }
    maybe_finish();
  }

  void arm() {
    if (finished_)
      return;
    std::optional<clock::time_point> next;
    if (open_loop() && more_new(clock::now()))
      next = due_of(next_item_);
    if (!retries_.empty() && (!next || retries_.top().due < *next))
      next = retries_.top().due;
    if (!next || (armed_ && *armed_ == *next))
      return;
    armed_ = next;
    wake_.expires_at(*next);
    wake_.async_wait([this](beast::error_code ec) {
      if (ec == asio::error::operation_aborted || finished_)
        return;
      armed_.reset();
      auto now = clock::now();
      release_retries(now);
      if (open_loop())
        release_paced(now);
      dispatch();
      arm();
    });
  }

  void tick() {
    ticker_.expires_after(std::chrono::milliseconds(250));
    ticker_.async_wait([this](beast::error_code ec) {
      if (ec || finished_)
        return;
      report_progress();
      tick();
    });
  }

  void report_progress() {
    load_progress p;
    p.started = next_item_;
    p.completed = r_.items_completed;
    p.failed = r_.items_completed - r_.items_ok;
    p.exchanges = r_.exchanges;
    p.planned = o_.items;
    p.elapsed_s = std::chrono::duration<double>(clock::now() - t0_).count();
    p.duration_s = std::chrono::duration<double>(o_.duration).count();
    o_.progress(p);
  }

  void start(conn* c, const job& j) {
    ++busy_;
    c->current = j;
    if (c->connected)
      return send(c);
    c->buffer.consume(c->buffer.size());
    c->stream.expires_after(o_.timeout);
    c->stream.async_connect(endpoint_, [this, c](beast::error_code ec) {
      if (ec)
        return transport_failure(c, ec, "connect");
      on_connected(c);
      send(c);
    });
  }

  void send(conn* c) {
    c->sent = clock::now();
    c->out.head.clear();
    c->out.body = {};
    w_.prepare(c->current.item, c->current.attempt, c->out);
    std::array<asio::const_buffer, 2> bufs{asio::buffer(c->out.head),
                                           asio::buffer(c->out.body.data(), c->out.body.size())};
    c->stream.expires_after(o_.timeout);
    asio::async_write(c->stream, bufs, [this, c](beast::error_code ec, size_t) {
      if (ec)
        return transport_failure(c, ec, "write");
      c->parser.emplace();
      c->parser->body_limit(o_.body_limit);
      http::async_read(c->stream, c->buffer, *c->parser, [this, c](beast::error_code ec2, size_t) {
        if (ec2)
          return transport_failure(c, ec2, "read");
        auto& res = c->parser->get();
        reply r;
        r.status = res.result_int();
        r.body = res.body();
        r.retry_after = res.find(http::field::retry_after) != res.end();
        if (!res.keep_alive()) {
          beast::error_code ignored;
          c->stream.socket().close(ignored);
          c->connected = false;
        }
        complete(c, r);
      });
    });
  }

  void transport_failure(conn* c, const beast::error_code& ec, const char* what) {
    beast::error_code ignored;
    c->stream.socket().close(ignored);
    c->connected = false;
    c->buffer.consume(c->buffer.size());
    ++r_.transport_errors;
    std::string detail = std::string{what} + ": " + ec.message();
    if (r_.first_error.empty())
      r_.first_error = detail;
    reply r;
    r.error = detail;
    complete(c, r);
  }

  void complete(conn* c, const reply& r) {
    auto now = clock::now();
    auto j = c->current;
    ++r_.exchanges;
    ++r_.status_counts[r.status];
    auto ns = static_cast<uint64_t>(std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::nanoseconds>(now - j.due).count()));
    bool ok = r.status >= 200 && r.status < 300;
    if (r.status != 0)
      r_.latency_all.record(ns);
    if (ok) {
      r_.latency_ok.record(ns);
      r_.service_ok.record(static_cast<uint64_t>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::nanoseconds>(now - c->sent).count())));
      auto sec = static_cast<size_t>(std::chrono::duration_cast<std::chrono::seconds>(now - t0_).count());
      if (r_.ok_per_second.size() <= sec)
        r_.ok_per_second.resize(sec + 1, 0);
      ++r_.ok_per_second[sec];
    }
    if (r.status == 503 && !r.retry_after)
      ++r_.status_503_without_retry_after;
    bool retry = (r.status == 0 || r.status >= 500) && j.attempt < o_.retries;
    w_.on_reply(j.item, j.attempt, r, !retry);
    if (retry) {
      ++r_.retried;
      auto delay = o_.backoff * (1 << std::min(j.attempt, 6));
      delay = std::min<std::chrono::milliseconds>(delay, std::chrono::milliseconds(1000));
      retries_.push(job{j.item, j.attempt + 1, now + delay});
    } else {
      ++r_.items_completed;
      if (ok)
        ++r_.items_ok;
    }
    last_answer_ = now;
    --busy_;
    // A connection that just failed waits a little before it reconnects, so
    // a dead server is not hammered in a tight loop.
    if (r.status == 0) {
      auto t = std::make_shared<asio::steady_timer>(ioc_, std::chrono::milliseconds(10));
      ++parked_;
      t->async_wait([this, c, t](beast::error_code) {
        --parked_;
        idle_.push_back(c);
        dispatch();
        arm();
      });
    } else {
      idle_.push_back(c);
      dispatch();
    }
    arm();
  }

  void maybe_finish() {
    if (finished_ || busy_ > 0 || parked_ > 0 || !ready_.empty() || !retries_.empty())
      return;
    if (more_new(clock::now()))
      return;
    finished_ = true;
    r_.connections_peak = conns_.size();
    r_.elapsed_s = std::chrono::duration<double>((last_answer_ ? *last_answer_ : clock::now()) - t0_).count();
    if (o_.progress)
      report_progress();
    wake_.cancel();
    ticker_.cancel();
    ioc_.stop();
  }

  const load_options& o_;
  workload& w_;
  asio::io_context ioc_;
  asio::steady_timer wake_;
  asio::steady_timer ticker_;
  tcp::endpoint endpoint_;
  std::vector<std::unique_ptr<conn>> conns_;
  std::vector<conn*> idle_;
  std::deque<job> ready_;
  std::priority_queue<job, std::vector<job>, later_first> retries_;
  std::optional<clock::time_point> armed_;
  std::optional<clock::time_point> end_;
  std::optional<clock::time_point> last_answer_;
  clock::time_point t0_;
  uint64_t next_item_ = 0;
  int busy_ = 0;
  int parked_ = 0;
  bool finished_ = false;
  load_result r_;
};

} // namespace

load_result run_load(const load_options& opts, workload& w) {
  engine e{opts, w};
  return e.run();
}

} // namespace billing::bench
