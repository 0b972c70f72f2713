-- POST /tasks with the tutorial's body (bench/api-local.sh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title": "New task", "description": "Goddhi is fvcking good!!!!!"}'
