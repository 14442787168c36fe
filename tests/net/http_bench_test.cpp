// Throughput figure, hidden from the unit run: `net_tests "[.bench]"`.
// N (BENCH_N, default 50000) 2 KB POSTs over 16 keep-alive connections with
// http_client, against http_server answering 200 inline or from another
// thread; then, if `wrk` is installed, wrk (1 thread, 16 connections, 5 s,
// same body) against each server setup.
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>

#include <catch2/catch.hpp>

#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "test_util.hpp"

using namespace billing::net;
using namespace billing::net::test;

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Stands in for the actor side: one thread answering what it is handed.
class answer_thread {
 public:
  answer_thread() : thread_([this] { run(); }) {}
  ~answer_thread() {
    {
      std::lock_guard lock{m_};
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void push(responder r) {
    {
      std::lock_guard lock{m_};
      q_.push_back(std::move(r));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock lock{m_};
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !q_.empty(); });
      if (q_.empty()) return;
      auto batch = std::move(q_);
      q_.clear();
      lock.unlock();
      for (auto& r : batch) r(ok());
      lock.lock();
    }
  }
  static response ok() {
    response res{http::status::ok, 11};
    res.set(http::field::content_type, "application/json");
    res.body() = R"({"received":true})";
    return res;
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<responder> q_;
  bool stop_ = false;
  std::thread thread_;
};

handler make_handler(bool inline_reply, answer_thread& worker) {
  if (inline_reply)
    return [](request&&, responder reply) {
      response res{http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = R"({"received":true})";
      reply(std::move(res));
    };
  return [&worker](request&&, responder reply) { worker.push(std::move(reply)); };
}

}  // namespace

TEST_CASE("http throughput: 2 KB POSTs over 16 keep-alive connections", "[.bench]") {
  const int n = std::getenv("BENCH_N") ? std::atoi(std::getenv("BENCH_N")) : 50000;
  const std::string body(2048, 'x');
  constexpr int conns = 16;
  for (int io : {1, 2}) {
    for (bool inline_reply : {true, false}) {
      answer_thread worker;
      server_config scfg;
      scfg.io_threads = io;
      auto srv = start_server(scfg, make_handler(inline_reply, worker));
      client_config ccfg;
      ccfg.max_connections_per_host = conns;
      http_client client{ccfg};
      const std::string target = "http://127.0.0.1:" + std::to_string(srv->port()) + "/webhook";
      std::atomic<int> sent{0}, done{0}, failed{0};
      std::function<void()> next = [&] {
        if (sent.fetch_add(1) >= n) return;
        client.post(target, body, {{"Content-Type", "application/json"}}, std::chrono::seconds(10),
                    [&](client_result r) {
                      if (!r.ok() || r.status != 200) ++failed;
                      ++done;
                      next();
                    });
      };
      const double cpu0 = cpu_seconds();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < conns; ++i) next();
      REQUIRE(eventually([&] { return done.load() == n; }, std::chrono::seconds(300)));
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cpu = cpu_seconds() - cpu0;
      CHECK(failed == 0);
      CHECK(srv->snapshot().accepted == conns);
      std::printf("http_client -> http_server, io_threads=%d, reply %-13s: %d req in %.2f s = %6.0f req/s; "
                  "process CPU (client+server) %.1f us/req\n",
                  io, inline_reply ? "inline" : "other thread", n, secs, n / secs, cpu * 1e6 / n);
      client.stop();
    }
  }

  if (std::system("which wrk > /dev/null 2>&1") != 0) {
    std::printf("wrk not installed: skipped\n");
    return;
  }
  const std::string script = "/tmp/billing_net_bench_post.lua";
  std::ofstream(script) << "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", 2048)\n"
                           "wrk.headers[\"Content-Type\"] = \"application/json\"\n";
  for (auto [io, inline_reply] : {std::pair{1, true}, std::pair{1, false}, std::pair{2, true}, std::pair{2, false}}) {
    answer_thread worker;
    server_config scfg;
    scfg.io_threads = io;
    auto srv = start_server(scfg, make_handler(inline_reply, worker));
    const double cpu0 = cpu_seconds();
    const std::string cmd = "wrk -t1 -c16 -d5s -s " + script + " http://127.0.0.1:" + std::to_string(srv->port()) +
                            "/webhook 2>&1";
    std::printf("--- %s (io_threads=%d, reply %s)\n", cmd.c_str(), io, inline_reply ? "inline" : "from another thread");
    std::fflush(stdout);
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char line[512];
    while (std::fgets(line, sizeof line, p)) std::fputs(line, stdout);
    pclose(p);
    const auto reqs = srv->snapshot().requests;
    std::printf("server: %llu requests, server process CPU %.1f us/req\n", static_cast<unsigned long long>(reqs),
                reqs ? (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(reqs) : 0.0);
  }
}
