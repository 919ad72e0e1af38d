-- expect: syntax load
-- a missing `end`
return {
  name = "broken", version = 1,
  init = function(ctx) return {}
}
