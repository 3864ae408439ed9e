-- wrk script: GET /api/v2/portfolios?limit=50&offset=<uniform random MIN_OFFSET..MAX_OFFSET>,
-- the random-offset paging load of docs/BENCHMARKS.md. MAX_OFFSET (default 9950) is the offset
-- of the last full page: total portfolios - 50. MIN_OFFSET (default 0) = MAX_OFFSET asks for
-- one page only (the first with both 0, the last with both 9950).
--   MAX_OFFSET=9950 wrk -t2 -c16 -d8s -s scripts/wrk/random-page.lua http://127.0.0.1:8000
local max_offset = tonumber(os.getenv("MAX_OFFSET") or "9950")
local min_offset = tonumber(os.getenv("MIN_OFFSET") or "0")

function setup(thread)
  thread:set("seed", math.random(1, 2147483647))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  return wrk.format("GET", "/api/v2/portfolios?limit=50&offset=" .. math.random(min_offset, max_offset))
end

-- Any non-2xx answer would make a fast run meaningless: report it.
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("non-2xx/3xx: %d, socket errors: %d\n", errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
