-- expect: runtime on_message
-- recurses through pcall until the C stack limit, re-raising what each level caught
local function dive()
  local ok, err = pcall(dive)
  if not ok then error(err, 0) end
end
return {
  name = "c_stack", version = 1,
  init = function(ctx) return {} end,
  join = function(s) return s end, leave = function(s) return s end, on_tick = function(s) return s end,
  on_message = function(s) dive() return s end,
}
