-- wrk script: POSTs the bench's chat request on every connection and prints
-- one machine-readable summary line for bench/run.ts.
--   BENCH_BODY  the JSON request body; {n} becomes a per-request counter, so
--               no two requests are the same and no response cache can answer
--   BENCH_AUTH  the Authorization header value (may be empty)
local template = os.getenv("BENCH_BODY") or '{"model":"bench","messages":[{"role":"user","content":"Say hello, request {n}."}]}'
local at = string.find(template, "{n}", 1, true)
local head = at and string.sub(template, 1, at - 1) or template
local tail = at and string.sub(template, at + 3) or ""
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, at and (head .. counter .. tail) or template)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationUs":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"non2xx":%d,"timeouts":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
