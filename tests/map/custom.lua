-- Custom functions for tests/map (lua.NAME(...) in expressions).
function digits(s)
  if s == nil then return nil end
  return (string.gsub(s, "%D", ""))
end
