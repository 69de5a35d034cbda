-- wrk script for bench/webhook_bench.sh: POSTs pre-signed webhook bodies.
-- wrk's Lua has no HMAC, so the script reads a file of "SIGNATURE<TAB>BODY" lines made by
-- webhook_bench.sh (env BODIES) and cycles through them. Each wrk thread takes its own slice
-- of the lines, so every request carries a different change until the file is used up.
local path = os.getenv("BODIES")
local header = os.getenv("SIG_HEADER") or "X-Erpsync-Signature"
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local reqs = {}
local idx = 0

function init(args)
  local n = tonumber(os.getenv("WRK_THREADS") or "1")
  local i = 0
  for line in io.lines(path) do
    if i % n == tid then
      local tab = line:find("\t", 1, true)
      local sig = line:sub(1, tab - 1)
      local body = line:sub(tab + 1)
      local hdr = { ["Content-Type"] = "application/json", [header] = sig }
      reqs[#reqs + 1] = wrk.format("POST", nil, hdr, body)
    end
    i = i + 1
  end
end

function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local accepted = summary.requests - e.status
  io.write(string.format("requests %d accepted %d non2xx %d socket_errors %d seconds %.2f\n",
    summary.requests, accepted, e.status, e.connect + e.read + e.write + e.timeout, secs))
  io.write(string.format("accepted_per_s %.0f p50_ms %.3f p99_ms %.3f p999_ms %.3f max_ms %.3f\n",
    accepted / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
end
