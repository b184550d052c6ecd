// mpbus's own DPDK telemetry commands: /mpbus/processes, /mpbus/actors (/mpbus/actors,<name>
// for one) and /mpbus/mailboxes, answered on DPDK's telemetry thread from the group's counters
// file (layout: counters.h), read with pread: nothing here calls into JavaScript or waits for
// it, and the answers cover every process of the group (DPDK 22.11 serves the socket from the
// primary only). Telemetry dicts take names of [A-Za-z0-9_/] only, so rows are returned as
// columns: one array per field, index i of each describing row i.
#include <fcntl.h>
#include <rte_eal.h>
#include <rte_telemetry.h>
#include <string.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"
#include "counters.h"
#include "mailbox.h"

namespace mpbus {
namespace {

using namespace counters;

struct Row {
  std::string name;
  double f[kRowFields];
};

struct Proc {
  double f[kRowFields];
  std::string command;
  std::vector<Row> rows;
};

// A name as telemetry shows it: printable ASCII as it is; any other byte (a UTF-8 sequence, a
// control character) and '"', '\\' and '%' as %XX (hex), so the answer stays valid JSON and the
// name can be told back. DPDK 22.11's JSON writer indexes a table with each char, signed: a byte
// of 0x80 or more read outside it and printed garbage escapes (invalid JSON); control bytes other
// than \n, \r, \t were dropped. Another process wrote the name: nothing in it is trusted.
std::string Printable(const std::string& raw) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : raw) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '%') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string NameOf(const uint8_t* row) {
  size_t length = row[kNameOffset];
  if (length == 0 || length > kNameMaxBytes) return "";
  return std::string(reinterpret_cast<const char*>(row + kNameOffset + 1), length);
}

double Count(double v) { return std::isfinite(v) && v >= 0 ? v : 0; }

// The live processes of the group, from the counters file of this process's runtime dir.
std::vector<Proc> ReadGroup() {
  std::vector<Proc> procs;
  std::string path = std::string(rte_eal_get_runtime_dir()) + "/" + kFileName;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return procs;
  std::vector<uint8_t> buf(kSlotBytes);
  for (uint32_t slot = 0; slot < kSlots; slot++) {
    off_t base = static_cast<off_t>(slot) * kSlotBytes;
    if (pread(fd, buf.data(), kRowBytes, base) != static_cast<ssize_t>(kRowBytes)) break;
    Proc p;
    memcpy(p.f, buf.data(), kRowBytes);
    if (p.f[kMagic] != kLayoutMagic || p.f[kState] != kStateAlive) continue;
    if (!ProcessAlive(static_cast<int32_t>(Count(p.f[kPid])), static_cast<uint64_t>(Count(p.f[kProcStart])))) continue;
    p.command = NameOf(buf.data());
    size_t high = static_cast<size_t>(std::fmin(kRows, std::fmax(1, Count(p.f[kRowsHigh]))));
    ssize_t got = high > 1 ? pread(fd, buf.data() + kRowBytes, (high - 1) * kRowBytes, base + kRowBytes) : 0;
    size_t rows = got > 0 ? static_cast<size_t>(got) / kRowBytes : 0;
    for (size_t r = 1; r <= rows; r++) {
      Row row;
      memcpy(row.f, buf.data() + r * kRowBytes, kRowBytes);
      if (row.f[kGeneration] == 0) continue;
      row.name = NameOf(buf.data() + r * kRowBytes);
      if (!row.name.empty()) p.rows.push_back(std::move(row));
    }
    procs.push_back(std::move(p));
  }
  close(fd);
  return procs;
}

// The q quantile of a histogram in µs (its bucket's upper bound), 0 without samples.
uint64_t QuantileUs(const std::vector<double>& h, double q) {
  double total = 0;
  for (double n : h) total += n;
  if (total == 0) return 0;
  double rank = std::fmax(1, std::ceil(q * total));
  double seen = 0;
  for (size_t b = 0; b < h.size(); b++) {
    seen += h[b];
    if (seen < rank) continue;
    if (b == 0) return 1;
    if (b + 1 >= h.size()) return UINT64_MAX;
    size_t e = (b - 1) / 4, sub = (b - 1) % 4;
    return static_cast<uint64_t>(std::ceil(std::ldexp(1.0 + (sub + 1) / 4.0, static_cast<int>(e))));
  }
  return UINT64_MAX;
}

// DPDK caps an answer at 16 KiB (max_output_len) and drops, without error, each array that does
// not fit: with a few hundred rows the answer lost most of its columns, names and pids first.
// Rows are added while the answer's JSON (estimated from above) stays under this; the rest are
// counted in "rows_left_out", and a client asks for one row by name (/mpbus/actors,<name>).
constexpr size_t kAnswerBudget = 16 * 1024 - 1024;

// Columns under construction: one telemetry array per field, a row at a time.
class Columns {
 public:
  explicit Columns(rte_tel_data* d) : d_(d) { rte_tel_data_start_dict(d); }
  // Starts a row: false when the answer has no room for another (it is then counted as left out).
  bool Row() {
    // the next row is taken to be as long as the one before (names vary: the budget leaves room)
    size_t previous = bytes_ - row_start_;
    if (rows_ > 0 && (bytes_ + previous > kAnswerBudget || rows_ >= RTE_TEL_MAX_ARRAY_ENTRIES)) {
      left_out_++;
      return false;
    }
    rows_++;
    row_start_ = bytes_;
    return true;
  }
  void U64(const char* name, uint64_t v) {
    Count(name, std::to_string(v).size() + 2);
    numbers_[name].push_back(v);
  }
  void Str(const char* name, const std::string& raw) {
    std::string v = Printable(raw).substr(0, RTE_TEL_MAX_STRING_LEN - 1);
    Count(name, v.size() + 4);
    strings_[name].push_back(std::move(v));
  }
  void Finish() {
    for (auto& [name, values] : numbers_) {
      rte_tel_data* a = rte_tel_data_alloc();
      rte_tel_data_start_array(a, RTE_TEL_U64_VAL);
      for (uint64_t v : values) rte_tel_data_add_array_u64(a, v);
      rte_tel_data_add_dict_container(d_, name.c_str(), a, 0);
    }
    for (auto& [name, values] : strings_) {
      rte_tel_data* a = rte_tel_data_alloc();
      rte_tel_data_start_array(a, RTE_TEL_STRING_VAL);
      for (const std::string& v : values) rte_tel_data_add_array_string(a, v.c_str());
      rte_tel_data_add_dict_container(d_, name.c_str(), a, 0);
    }
    if (left_out_ > 0) rte_tel_data_add_dict_u64(d_, "rows_left_out", left_out_);
  }

 private:
  // Bytes a value adds to the answer, and a column's key and brackets the first time.
  void Count(const std::string& name, size_t value_bytes) {
    if (!numbers_.count(name) && !strings_.count(name)) bytes_ += name.size() + 8;
    bytes_ += value_bytes;
  }

  rte_tel_data* d_;
  std::map<std::string, std::vector<uint64_t>> numbers_;
  std::map<std::string, std::vector<std::string>> strings_;
  size_t bytes_ = 64;  // the command's name and the braces around the dict
  size_t row_start_ = 64;
  size_t rows_ = 0;
  uint64_t left_out_ = 0;
};

uint64_t U(double v) { return static_cast<uint64_t>(Count(v)); }

int Processes(const char*, const char*, rte_tel_data* d) {
  Columns c(d);
  double now = static_cast<double>(time(nullptr)) * 1000;
  for (const Proc& p : ReadGroup()) {
    if (!c.Row()) continue;
    c.U64("pid", U(p.f[kPid]));
    c.Str("role", p.f[kRole] == 0 ? "primary" : "secondary");
    c.U64("lcore", U(p.f[kLcore]));
    c.U64("uptime_ms", U(now - p.f[kStartedAt]));
    c.U64("cpu_user_us", U(p.f[kCpuUserUs]));
    c.U64("cpu_system_us", U(p.f[kCpuSystemUs]));
    c.U64("rss_bytes", U(p.f[kRssBytes]));
    c.U64("heap_used_bytes", U(p.f[kHeapUsedBytes]));
    c.U64("dead_letters", U(p.f[kDeadLetters]));
    c.U64("actors", [&] {
      uint64_t n = 0;
      for (const Row& r : p.rows) n += r.f[kKind] == kKindActor;
      return n;
    }());
    c.Str("command", p.command);
  }
  c.Finish();
  return 0;
}

// Every actor (or the one named in params) with the asks every process made to it merged in.
int Actors(const char*, const char* params, rte_tel_data* d) {
  std::vector<Proc> procs = ReadGroup();
  std::map<std::string, std::vector<double>> asks;  // name -> [asks, failed, timeouts, buckets...]
  for (const Proc& p : procs) {
    for (const Row& r : p.rows) {
      if (r.f[kKind] != kKindAsks) continue;
      std::vector<double>& a = asks[r.name];
      a.resize(3 + kBuckets, 0);
      a[0] += Count(r.f[kAsks]);
      a[1] += Count(r.f[kAskFailed]);
      a[2] += Count(r.f[kAskTimeouts]);
      for (size_t b = 0; b < kBuckets; b++) a[3 + b] += Count(r.f[kHistogram + b]);
    }
  }
  std::string only = params == nullptr ? "" : params;
  Columns c(d);
  for (const Proc& p : procs) {
    for (const Row& r : p.rows) {
      // (the name as given, or as telemetry shows it: see Printable)
      if (r.f[kKind] != kKindActor || (!only.empty() && r.name != only && Printable(r.name) != only)) continue;
      if (!c.Row()) continue;
      std::vector<double> a = asks.count(r.name) ? asks[r.name] : std::vector<double>(3 + kBuckets, 0);
      std::vector<double> h(a.begin() + 3, a.end());
      c.Str("name", r.name);
      c.U64("pid", U(p.f[kPid]));
      c.U64("received", U(r.f[kReceived]));
      c.U64("processed", U(r.f[kProcessed]));
      c.U64("failed", U(r.f[kFailed]));
      c.U64("dead_lettered", U(r.f[kDeadLettered]));
      c.U64("restarts", U(r.f[kRestarts]));
      c.U64("depth", U(r.f[kDepth]));
      c.U64("asks", U(a[0]));
      c.U64("ask_failed", U(a[1]));
      c.U64("ask_timeouts", U(a[2]));
      c.U64("ask_p50_us", QuantileUs(h, 0.5));
      c.U64("ask_p99_us", QuantileUs(h, 0.99));
    }
  }
  c.Finish();
  return 0;
}

int Mailboxes(const char*, const char*, rte_tel_data* d) {
  Columns c(d);
  for (const Proc& p : ReadGroup()) {
    for (const Row& r : p.rows) {
      if (r.f[kKind] != kKindMailbox || !c.Row()) continue;
      c.Str("name", r.name);
      c.U64("pid", U(p.f[kPid]));
      c.U64("depth", U(r.f[kDepth]));
      c.U64("capacity", U(r.f[kCapacity]));
    }
  }
  c.Finish();
  return 0;
}

// telemetryRegister(): registers the commands once per process (DPDK keeps them for its life).
// DPDK refuses help texts of RTE_TEL_MAX_STRING_LEN (128) bytes or more with EINVAL.
Napi::Value TelemetryRegister(const Napi::CallbackInfo& info) {
  static std::once_flag once;
  static int rc = 0;
  std::call_once(once, [] {
    rc = rte_telemetry_register_cmd(
        "/mpbus/processes", Processes,
        "mpbus: the group's processes (columns: pid, role, lcore, uptime_ms, cpu, rss_bytes, ...)");
    if (rc == 0) {
      rc = rte_telemetry_register_cmd(
          "/mpbus/actors", Actors,
          "mpbus: the group's actors (columns: name, pid, received, depth, ask_p99_us, ...). Parameters: a name");
    }
    if (rc == 0) {
      rc = rte_telemetry_register_cmd("/mpbus/mailboxes", Mailboxes,
                                      "mpbus: the group's mailboxes (columns: name, pid, depth, capacity)");
    }
  });
  if (rc != 0)
    ThrowError(info.Env(), ErrnoName(-rc), "cannot register mpbus's telemetry commands: " + ErrnoText(-rc), -rc);
  return info.Env().Undefined();
}

void InitTelemetry(Napi::Env env, Napi::Object exports) {
  exports.Set("telemetryRegister", Napi::Function::New(env, TelemetryRegister));
}

}  // namespace
MPBUS_FACILITY(InitTelemetry);
}  // namespace mpbus
