-- wrk script: GET each path of PATHS_FILE (one request target per line, e.g.
-- /api/v1/portfolio/<id>) in turn, every thread starting at a different line: the GET-by-id
-- load of scripts/bench-side-by-side.sh, the same targets `bench run --scenario get-by-id` uses.
--   PATHS_FILE=/tmp/paths.txt wrk -t2 -c64 -d3s -s scripts/wrk/paths.lua http://127.0.0.1:8000
local file = assert(os.getenv("PATHS_FILE"), "PATHS_FILE names a file of request targets")
local requests = {}
local next_index = 1
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("start", threads * 7919)
end

function init(args)
  for line in io.lines(file) do
    if line ~= "" then requests[#requests + 1] = wrk.format("GET", line) end
  end
  assert(#requests > 0, file .. " holds no request targets")
  next_index = (start or 0) % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

-- Any non-2xx answer would make a fast run meaningless: report it.
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("non-2xx/3xx: %d, socket errors: %d\n", errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
