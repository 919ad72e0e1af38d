-- kv.lua: a small key-value store per process id, served for the capability "kv".
--
-- Calls: { op = "put", key = k, value = v } -> the previous value (or nil)
--        { op = "get", key = k }            -> the value (or nil)
--        { op = "delete", key = k }         -> the removed value (or nil)
--        { op = "keys" }                    -> the keys, sorted
-- A store refuses more than max_keys keys, so one id cannot eat the VM's memory cap.

local max_keys = 10000

local handlers = {}

function handlers.put(store, msg)
  local previous = store.data[msg.key]
  if previous == nil then
    if store.size >= max_keys then error("store is full (" .. max_keys .. " keys)") end
    store.size = store.size + 1
  end
  store.data[msg.key] = msg.value
  return previous
end

function handlers.get(store, msg) return store.data[msg.key] end

function handlers.delete(store, msg)
  local previous = store.data[msg.key]
  if previous ~= nil then
    store.data[msg.key] = nil
    store.size = store.size - 1
  end
  return previous
end

function handlers.keys(store)
  local keys = {}
  for key in pairs(store.data) do keys[#keys + 1] = key end
  table.sort(keys)
  return keys
end

return {
  name = "kv",
  version = 1,
  capability = "kv",

  init = function(id, arg) return { data = {}, size = 0 } end,

  handle_call = function(store, msg, from)
    local handler = handlers[msg.op]
    if handler == nil then error("unknown op " .. tostring(msg.op) .. ": use put, get, delete or keys") end
    if msg.op ~= "keys" and type(msg.key) ~= "string" then error("key must be a string") end
    return handler(store, msg), store
  end,

  -- The whole store moves to the shard's new owner.
  handoff = function(store) return store end,
  resume = function(id, store) return store end,
}
