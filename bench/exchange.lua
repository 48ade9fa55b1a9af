-- exchange.lua: wrk script for the code-exchange benchmark (scripts/bench).
-- Every request spends a fresh code from a pre-minted file, one code per line:
--   wrk ... -s bench/exchange.lua URL -- CODES_FILE APPID SECRET
-- With -t1 there is one thread, so a plain counter hands out each code once. When the file
-- runs out the script sends the code "exhausted" (answered with errcode 40029), and done()
-- reports it, so a run that ran out of codes is never mistaken for a valid one.
threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  codes, n, sent, over = {}, 0, 0, 0
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    if #line > 0 then
      n = n + 1
      codes[n] = line
    end
  end
  f:close()
  prefix = "GET /sns/oauth2/access_token?appid=" .. args[2] .. "&secret=" .. args[3]
    .. "&grant_type=authorization_code&code="
  suffix = " HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. tostring(wrk.port) .. "\r\n\r\n"
end

function request()
  sent = sent + 1
  if sent > n then
    over = over + 1
    return prefix .. "exhausted" .. suffix
  end
  return prefix .. codes[sent] .. suffix
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("codes: loaded %d sent %d past_end %d\n",
      t:get("n"), math.min(t:get("sent"), t:get("n")), t:get("over")))
  end
end
