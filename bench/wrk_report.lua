-- wrk script of the benchmark suite (bench/wrk.py): requests with a random subject number,
-- and a one-line JSON report of wrk's own latency distribution at the end.
--   wrk ... -s bench/wrk_report.lua URL -- METHOD PATH_TEMPLATE COUNT BODY_TEMPLATE AUTH
-- "{n}" in the path and body becomes a random whole number from 0 to COUNT-1.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
  table.insert(threads, thread)
end

local method, template, count, body, auth

function init(args)
  method = args[1]
  template = args[2]
  count = tonumber(args[3])
  body = args[4] or ""
  auth = args[5] or ""
  math.randomseed(os.time() * 1000 + (thread_number or 0))
end

function request()
  local n = tostring(math.random(0, count - 1))
  local path = (string.gsub(template, "{n}", n))
  local headers = {}
  if auth ~= "" then
    headers["Authorization"] = "Bearer " .. auth
  end
  local payload = nil
  if body ~= "" then
    payload = (string.gsub(body, "{n}", n))
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(method, path, headers, payload)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,' ..
    '"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
