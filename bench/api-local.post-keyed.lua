-- POST /tasks with the tutorial's body and a fresh Idempotency-Key per request (bench/api-local.sh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title": "New task", "description": "Goddhi is fvcking good!!!!!"}'
local counter = 0
local prefix = string.format("bench-%d-%d-", os.time(), math.random(1, 1000000000))

function setup(thread)
    thread:set("thread_prefix", prefix .. tostring(math.random(1, 1000000000)) .. "-")
end

function request()
    counter = counter + 1
    wrk.headers["Idempotency-Key"] = thread_prefix .. counter
    return wrk.format()
end
