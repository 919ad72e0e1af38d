-- counter.lua: a counter per process id, served for the capability "counter".
--
-- Every id ("game-42", "user:7", ...) gets its own counter, created on its first call on the
-- node that owns the id's shard. When the shard moves (a node joins or leaves gracefully),
-- the count moves with it, so no increment is lost.
--
-- Calls: { op = "add", by = 1 } -> the new count;  { op = "get" } -> the count.
-- Casts: { op = "add", by = 1 } (no reply).

local function apply(count, msg)
  if msg.op == "add" then
    return count + (msg.by or 1)
  elseif msg.op == "get" or msg.op == nil then
    return count
  end
  error("unknown op " .. tostring(msg.op) .. ": use add or get")
end

return {
  name = "counter",
  version = 1,
  capability = "counter",

  -- The state can be any Lua value; here it is just the count.
  init = function(id, arg) return 0 end,

  handle_call = function(count, msg, from)
    local new = apply(count, msg)
    return new, new
  end,

  handle_cast = function(count, msg) return apply(count, msg) end,

  -- Hand the count to the shard's new owner, which resumes from it.
  handoff = function(count) return count end,
  resume = function(id, count) return count end,
}
