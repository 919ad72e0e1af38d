-- Flaky heartbeats: a gray failure. Heartbeat answers (membership channel, message == nil)
-- are lost in bursts: every 40th starts a run of 12 lost ones, about 3.6 s at the default
-- 300 ms heartbeat, longer than the 2 s failure timeout. Everything else is delivered, so
-- the overlay must cope with peers that look dead but still talk.

local EVERY, BURST = 40, 12
local seen, losing = 0, 0   -- chunk locals keep state while the script is installed

return {
  name = "flaky_heartbeats",
  version = 1,

  decide = function(from, to, channel, message)
    if channel ~= "membership" or message ~= nil then return "deliver" end
    seen = seen + 1
    if seen % EVERY == 0 then losing = BURST end
    if losing > 0 then
      losing = losing - 1
      return "drop"
    end
    return "deliver"
  end,
}
