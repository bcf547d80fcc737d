-- wrk script for serving_bench.py: POST one JSON body, read from the file named after `--`,
-- to the URL wrk is given (the scoring server's /invocations).
--
--   wrk -t2 -c16 -d10s --latency -s benchmarks/wrk_post.lua \
--       http://127.0.0.1:PORT/invocations -- body.json
--
-- The request is formatted once per thread (each thread has its own Lua state). No response()
-- callback: wrk would then parse every body, which costs the load generator CPU. Status codes
-- other than 2xx/3xx are still counted by wrk ("Non-2xx or 3xx responses"), and done() prints
-- them with the exact percentiles as one machine-readable line.

local req

function init(args)
   local path = args[1]
   if path == nil then
      error("usage: wrk ... -s wrk_post.lua URL -- BODY_FILE")
   end
   local f = assert(io.open(path, "rb"))
   local body = f:read("*a")
   f:close()
   wrk.headers["Content-Type"] = "application/json"
   req = wrk.format("POST", nil, nil, body)
end

function request()
   return req
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK_JSON {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, "
         .. "\"p50_us\": %d, \"p99_us\": %d, \"max_us\": %d, \"mean_us\": %.1f, "
         .. "\"connect_errors\": %d, \"read_errors\": %d, \"write_errors\": %d, "
         .. "\"status_errors\": %d, \"timeouts\": %d}\n",
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99), latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout))
end
