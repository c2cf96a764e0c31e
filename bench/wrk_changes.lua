-- wrk script for bench.py's throughput levels: connection k (wrk thread k, one connection each) posts
-- neighbourhood changes to its own scenario, alternating x1.05 and x1/1.05 per neighbourhood.
--
--   wrk -t N -c N -d 5s -s bench/wrk_changes.lua http://127.0.0.1:PORT -- PREFIXES NEIGHBOURHOODS [QUERY]
--
-- PREFIXES: N comma-separated paths such as /scenarios/abc (one per connection; repeat one to share a scenario).
-- NEIGHBOURHOODS: comma-separated neighbourhood ids. QUERY: e.g. ?sections=power_summary (default: none).
-- The last line printed is JSON: requests, duration, errors and latency percentiles (microseconds).

local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local function split(text)
  local items = {}
  for item in string.gmatch(text or "", "[^,]+") do
    table.insert(items, item)
  end
  return items
end

function init(args)
  local prefixes = split(args[1])
  prefix = prefixes[id]
  neighbourhoods = split(args[2])
  query = args[3] or ""
  path = prefix .. "/modify_load_neighbourhood" .. query
  headers = {["Content-Type"] = "application/json"}
  sent = 0
end

function request()
  local neighbourhood = neighbourhoods[math.floor(sent / 2) % #neighbourhoods + 1]
  local factor = (sent % 2 == 0) and "1.05" or "0.9523809523809523"
  sent = sent + 1
  return wrk.format("POST", path, headers, '{"neighbourhood": ' .. neighbourhood .. ', "factor": ' .. factor .. '}')
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "status_errors": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
