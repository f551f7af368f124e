-- Sends the pre-computed SOAP bodies of one file per wrk thread, in order, round robin.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  bodies = {}
  local path = os.getenv("BENCH_BODIES") .. "." .. id
  for line in io.lines(path) do bodies[#bodies + 1] = line end
  n = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
  wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
end

function request()
  n = n + 1
  if n > #bodies then n = 1 end
  return wrk.format(nil, os.getenv("BENCH_PATH"), nil, bodies[n])
end
