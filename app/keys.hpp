#pragma once
// `billingd keys new NAME --scopes a,b`: makes an API key. The key is printed
// once and never stored; the configuration gets only its SHA-256.

#include <iosfwd>
#include <string>
#include <vector>

namespace billing::app {

// A fresh key: `bk_` and 43 base64url characters of 32 bytes from the OS's
// CSPRNG (OpenSSL RAND_bytes). Empty if the generator fails.
std::string generate_api_key();

// Runs `keys ...` (args after "keys"); prints to `out`, errors to `err`;
// returns the exit code.
int keys_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

} // namespace billing::app
