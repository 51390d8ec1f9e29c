package dataplane

// LuaEnvoyFilter is newLuaEnvoyFilter, for the tests against the API server.
var LuaEnvoyFilter = newLuaEnvoyFilter
