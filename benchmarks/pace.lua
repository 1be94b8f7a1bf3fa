-- wrk script: pace every connection so that all of them together send about RATE requests/s.
-- Usage: wrk -cCONNS ... -s pace.lua URL -- RATE CONNS
-- Each request waits a random delay (uniform, mean CONNS/RATE s) before it is sent, so the
-- connections do not move in lockstep. wrk times each request from its send to its answer.
local mean_ms = 10

function init(args)
   local rate = tonumber(args[1]) or 1000
   local conns = tonumber(args[2]) or 100
   mean_ms = conns * 1000 / rate
   math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 100000)
end

function delay()
   return math.random() * 2 * mean_ms
end
