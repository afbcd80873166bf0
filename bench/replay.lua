-- wrk script: replays pre-signed requests, each once, and prints a JSON summary.
-- The requests file (BENCH_REQUESTS) has one request a line: svix-id, svix-timestamp,
-- svix-signature and the body, separated by tabs (JSON bodies hold no raw tab or newline).
local path = os.getenv("BENCH_REQUESTS")
local threads = {}
local counter = 0

function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  requests_data = {}
  for line in io.lines(path) do
    local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    requests_data[#requests_data + 1] = {id, ts, sig, body}
  end
  step = tonumber(os.getenv("BENCH_THREADS") or "1")
  index = offset
  wrapped = 0
end

function request()
  index = index + step
  if index > #requests_data then
    index = (index % #requests_data) + 1
    wrapped = wrapped + 1
  end
  local r = requests_data[index]
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["svix-id"] = r[1],
    ["svix-timestamp"] = r[2],
    ["svix-signature"] = r[3],
  }, r[4])
end

function done(summary, latency, requests)
  local wraps = 0
  for _, thread in ipairs(threads) do
    wraps = wraps + (thread:get("wrapped") or 0)
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "wrapped": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, wraps))
end
