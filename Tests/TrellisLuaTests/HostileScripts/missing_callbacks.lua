-- expect: invalidScript load
-- lacks join, on_message and on_tick, and has a string version
return { name = "partial", version = "1", init = function(ctx) return {} end, leave = function(s) return s end }
