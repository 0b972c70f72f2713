-- GET /tasks?after=<random>: a page of 100 tasks at a random depth of a table of BENCH_ROWS rows (bench/api-local.sh).
local rows = tonumber(os.getenv("BENCH_ROWS") or "1000000")

function setup(thread)
    thread:set("seed", math.random(1, 1000000000))
end

function init(args)
    math.randomseed(seed)
end

function request()
    return wrk.format("GET", "/tasks?after=" .. math.random(0, rows - 100))
end
