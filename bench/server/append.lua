-- wrk script: appends of EVENTS events (env, default 1) per POST to one of
-- 1000 streams, expected revision "any". Non-200 answers are counted as errors.
local events = tonumber(os.getenv("EVENTS") or "1")
local parts = {}
for i = 1, events do
  parts[i] = '{"type":"BenchEvent","data":{"n":' .. i .. ',"pad":"' .. string.rep("x", 64) .. '"}}'
end
local body = "[" .. table.concat(parts, ",") .. "]"
local counter = 0

request = function()
  counter = counter + 1
  return wrk.format("POST", "/streams/bench-" .. (counter % 1000),
                    {["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, body)
  if status ~= 200 then
    wrk.thread:stop()
    io.stderr:write("append failed: " .. status .. " " .. body .. "\n")
  end
end
