-- gate_cookie.lua: wrk script for the gate benchmarks (scripts/bench). Sends every request
-- with the session cookie read from a file ("_wxauth=...", one line, as written by
-- bench/gate_sessions.js --cookie-out):
--   wrk ... -s bench/gate_cookie.lua URL -- COOKIE_FILE
-- The file is read when wrk starts, so the bench can log in afresh before each run: a cookie
-- younger than a minute is never renewed by the gate (no Set-Cookie on the 202), which is what
-- a browser that keeps the renewed cookie sees almost always.
threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "r"))
  local cookie = f:read("*l")
  f:close()
  assert(cookie and #cookie > 0, "empty cookie file")
  wrk.headers["Cookie"] = cookie
  cookie_bytes = #cookie
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("cookie: %d bytes\n", t:get("cookie_bytes") or 0))
  end
end
