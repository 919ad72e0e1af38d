-- expect: runtime init
-- indexes a field of ctx that is not there
return {
  name = "init_errors", version = 1,
  init = function(ctx) return { seeds = ctx.config.seeds.list } end,
  join = function(s) return s end, leave = function(s) return s end,
  on_message = function(s) return s end, on_tick = function(s) return s end,
}
