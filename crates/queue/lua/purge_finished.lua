-- Forgets finished jobs: removes up to ARGV[2] members of a finished set
-- (done or dead) whose job finished before now - ARGV[1] seconds, with their
-- payload and metadata. Redis' own clock decides, so no replica's clock does.
-- KEYS[1]: the finished set (done or dead)
-- KEYS[2]: the job data hash
-- KEYS[3]: the job metadata key prefix
-- ARGV[1]: age in seconds
-- ARGV[2]: most members looked at
local cutoff = tonumber(redis.call('TIME')[1]) - tonumber(ARGV[1])
local ids = redis.call('SRANDMEMBER', KEYS[1], tonumber(ARGV[2]))
local removed = 0
for _, id in ipairs(ids) do
    local meta = KEYS[3] .. ':' .. id
    local done_at = tonumber(redis.call('HGET', meta, 'done_at') or '0') or 0
    if done_at <= cutoff then
        redis.call('HDEL', KEYS[2], id)
        redis.call('DEL', meta)
        redis.call('SREM', KEYS[1], id)
        removed = removed + 1
    end
end
return removed
