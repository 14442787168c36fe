#pragma once
// The payment simulator behind POST /v1/simulator/payments/{invoice_id}
// (simulated provider only): plays the customer and Stripe. It reads the
// invoice, builds the Stripe event the outcome would produce, signs it with
// the webhook secret and POSTs it to billingd's own /webhook, the same path
// and the same checks a real Stripe delivery goes through. Called on io
// threads; never blocks (the POST is asynchronous).

#include "net/http_client.hpp"
#include "protocol/api.hpp"

#include <functional>
#include <string>

namespace billing::net {

class payment_simulator {
public:
  // `webhook_url` is asked at each payment: the port is known only once
  // the server is bound.
  payment_simulator(billing_api& api, http_client& client, std::function<std::string()> webhook_url,
                    std::string webhook_secret, std::function<unix_seconds()> clock);

  // `body`: {"outcome": "succeeded" | "failed" | "canceled"}. Answers a JSON
  // summary: the event id and type, and the status /webhook answered with.
  void pay(invoice_id id, std::string_view body, callback<result<std::string>> done);

private:
  billing_api& api_;
  http_client& client_;
  std::function<std::string()> webhook_url_;
  std::string webhook_secret_;
  std::function<unix_seconds()> clock_;
};

} // namespace billing::net
