-- auth_random.lua: wrk script for the /sns/auth store-size benchmark (scripts/bench).
-- Each request checks a token picked at random from a file of live tokens, one per line:
--   wrk ... -s bench/auth_random.lua URL -- TOKENS_FILE OPENID
-- so lookups touch the whole store rather than one hot row.
threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  tokens, n = {}, 0
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    if #line > 0 then
      n = n + 1
      tokens[n] = line
    end
  end
  f:close()
  math.randomseed(os.time())
  prefix = "GET /sns/auth?access_token="
  suffix = "&openid=" .. args[2] .. " HTTP/1.1\r\nHost: " .. wrk.host .. ":"
    .. tostring(wrk.port) .. "\r\n\r\n"
end

function request()
  return prefix .. tokens[math.random(n)] .. suffix
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("tokens: loaded %d\n", t:get("n")))
  end
end
