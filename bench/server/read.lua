-- wrk script: GET 100-event pages of one of 1000 streams filled beforehand.
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/streams/bench-" .. (counter % 1000) .. "?from=0&limit=100")
end
