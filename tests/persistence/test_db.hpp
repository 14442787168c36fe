#pragma once
// Test support: a database of its own per test case, and sample commands.

#include "protocol/records.hpp"

#include <pqxx/pqxx>

#include <memory>
#include <string>

namespace billing::test {

// BILLING_TEST_DATABASE_URL, or the test FAILS (never silently passes).
std::string base_url();

// `url` with its database name replaced.
std::string with_database(const std::string& url, const std::string& db);

// A fresh database billing_test_<pid>_<n>, dropped (WITH FORCE) at scope end.
class scratch_db {
public:
  explicit scratch_db(bool migrated = true);
  ~scratch_db();
  scratch_db(const scratch_db&) = delete;
  scratch_db& operator=(const scratch_db&) = delete;

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  std::unique_ptr<pqxx::connection> connect() const;
  // First column of the first row of `sql`, as int64.
  int64_t scalar(const std::string& sql) const;
  // Terminates every backend of this database whose application_name is `app`;
  // returns how many.
  int terminate(const std::string& app) const;

private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

std::string new_uuid();

// A PENDING invoice with every field set (optional ones too when `full`).
stored_invoice sample_invoice(bool full = false);
write_command create_cmd(const stored_invoice& s);
// The same invoice moved to `status`, expecting `s.inv.version`.
write_command update_cmd(const stored_invoice& s, invoice_status status);
webhook_record sample_event(const std::string& id, const invoice_id& inv,
                            outcome o = outcome::applied);
outbox_record sample_signal(const invoice_id& inv, const std::string& name = "PaymentConfirmed");

} // namespace billing::test
