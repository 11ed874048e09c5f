-- wrk script for make bench: POST /v1/berichten with a unique referentie per
-- request (thread id + counter) for BSNs of existing accounts, read from the
-- file named by the environment variable BENCH_BSNS. The token comes from
-- BENCH_TOKEN.
local counter = 0
local bsns = {}
local tid = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  tid = thread_id or 0 -- a global set by setup() in this thread's Lua state
  for line in io.lines(os.getenv("BENCH_BSNS")) do
    bsns[#bsns + 1] = line
  end
  wrk.method = "POST"
  wrk.path = "/v1/berichten"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end

function request()
  counter = counter + 1
  local bsn = bsns[(counter * 7919 + tid) % #bsns + 1]
  local body = string.format('{"bsn":"%s","berichttype":"T1","referentie":"w%d-%d"}',
                             bsn, tid, counter)
  return wrk.format(nil, nil, nil, body)
end
