-- Lossy link: one link between two nodes loses a share of its application messages, both
-- ways. Membership traffic is spared, so the nodes stay members while their messages suffer.
--
--   trellis fault --node 127.0.0.1:9100 script plugins/faults/lossy_link.lua

local A, B = "n1", "n2"   -- node names (the part of an id before '@')
local LOSS = 0.2          -- share of messages lost

local function name(id) return (id:match("^[^@]+")) end

return {
  name = "lossy_link",
  version = 1,

  decide = function(from, to, channel, message)
    if channel == "membership" then return "deliver" end
    local f, t = name(from), name(to)
    local onLink = (f == A and t == B) or (f == B and t == A)
    if onLink and math.random() < LOSS then return "drop" end
    return "deliver"
  end,
}
