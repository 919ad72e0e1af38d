-- expect: invalidScript load
-- returns a string where the script table belongs
return "overlay"
