-- Slow node: everything a node receives from one peer arrives 50 to 150 ms late, so later
-- messages overtake earlier ones. Heartbeat answers (message == nil) are slowed too, which
-- shows how close a slow peer gets to the failure timeout.

local SLOW = "n3"         -- the node whose messages are slow
local BASE, SPREAD = 50, 100

return {
  name = "slow_node",
  version = 1,

  decide = function(from, to, channel, message)
    if from:match("^[^@]+") ~= SLOW then return "deliver" end
    return BASE + math.random(0, SPREAD)   -- a number: delay in milliseconds
  end,
}
