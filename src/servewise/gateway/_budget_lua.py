"""The Lua scripts of ``RedisBudgetStore``. Redis runs a script as one step: no other command of any client runs
between its reads and writes, so check-and-reserve across every level is atomic across processes.

Why Python string constants and not ``.lua`` package data: nothing to install or locate; the scripts are short.

Counter hash ``{prefix}:b:{budget_id}:{window_start}`` fields ``spent``, ``reserved`` (integer micro-dollars).
Reservation hash ``{prefix}:r:{request_id}`` fields ``amount``, ``parts`` (JSON list of [budget_id, window]),
``created`` (epoch seconds); index sorted set ``{prefix}:rz`` (member request id, score created).
Numbers are Lua doubles: integers are exact up to 2^53 micro-dollars ($9 billion).
"""

from __future__ import annotations

__all__ = ["RESERVE", "SETTLE", "SET_COUNTERS"]

RESERVE = """
-- KEYS[1] reservation hash, KEYS[2] index zset, KEYS[3..] counter hashes (one per level)
-- ARGV[1] amount, ARGV[2] parts JSON, ARGV[3] created (epoch s), ARGV[4] request id,
-- then per level i: ARGV[3+2i] hard limit (-1 = none), ARGV[4+2i] counter expiry (epoch s),
-- then ARGV[5+2n] the request's meta JSON ('' = none)
-- returns {1} reserved | {0, level, spent, reserved} refused | {-1} request id already holds a reservation
if redis.call('EXISTS', KEYS[1]) == 1 then return {-1} end
local amount = tonumber(ARGV[1])
local n = #KEYS - 2
for i = 1, n do
  local hard = tonumber(ARGV[3 + 2 * i])
  if hard >= 0 then
    local v = redis.call('HMGET', KEYS[2 + i], 'spent', 'reserved')
    local spent = tonumber(v[1]) or 0
    local reserved = tonumber(v[2]) or 0
    if spent + reserved + amount > hard then return {0, i, spent, reserved} end
  end
end
for i = 1, n do
  redis.call('HINCRBY', KEYS[2 + i], 'reserved', amount)
  redis.call('HSETNX', KEYS[2 + i], 'spent', 0)
  redis.call('EXPIREAT', KEYS[2 + i], ARGV[4 + 2 * i])
end
redis.call('HSET', KEYS[1], 'amount', amount, 'parts', ARGV[2], 'created', ARGV[3])
local meta = ARGV[5 + 2 * n]
if meta and meta ~= '' then redis.call('HSET', KEYS[1], 'meta', meta) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return {1}
"""

SETTLE = """
-- KEYS[1] reservation hash, KEYS[2] index zset, KEYS[3..] its counter hashes (in the reservation's order)
-- ARGV[1] actual spend (settle) or -1 (release), ARGV[2] request id
-- returns {} when the reservation is gone (already settled, released or swept: nothing changes) else
-- {spent before, spent after} per counter
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local amount = tonumber(redis.call('HGET', KEYS[1], 'amount'))
local actual = tonumber(ARGV[1])
local out = {}
for i = 3, #KEYS do
  local reserved = redis.call('HINCRBY', KEYS[i], 'reserved', -amount)
  if reserved < 0 then redis.call('HSET', KEYS[i], 'reserved', 0) end
  local before = tonumber(redis.call('HGET', KEYS[i], 'spent')) or 0
  local after = before
  if actual >= 0 then after = redis.call('HINCRBY', KEYS[i], 'spent', actual) end
  table.insert(out, before)
  table.insert(out, after)
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return out
"""

SET_COUNTERS = """
-- KEYS[i] counter hashes; per key 5 ARGV: expected spent, expected reserved ('' = overwrite unconditionally),
-- new spent, new reserved, expiry (epoch s). Returns per key 1 written | 0 left alone (it changed meanwhile).
local out = {}
for i = 1, #KEYS do
  local b = (i - 1) * 5
  local v = redis.call('HMGET', KEYS[i], 'spent', 'reserved')
  local spent = tonumber(v[1]) or 0
  local reserved = tonumber(v[2]) or 0
  if ARGV[b + 1] == '' or (spent == tonumber(ARGV[b + 1]) and reserved == tonumber(ARGV[b + 2])) then
    redis.call('HSET', KEYS[i], 'spent', ARGV[b + 3], 'reserved', ARGV[b + 4])
    redis.call('EXPIREAT', KEYS[i], ARGV[b + 5])
    table.insert(out, 1)
  else
    table.insert(out, 0)
  end
end
return out
"""
