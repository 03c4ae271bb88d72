# One Redis for the feed-store tests: Debian's redis-server on 127.0.0.1:16379.
up_redis() {
	local dir=$1
	mkdir -p "$dir/data"
	start redis "$dir" redis-server --port 16379 --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/data" --daemonize no
	wait_for 60 redis-cli -p 16379 ping || { cat "$dir/redis.log" >&2; return 1; }
	export_var FEEDLINE_TEST_REDIS "redis://127.0.0.1:16379/0"
}

down_redis() { stop_pids "$1"; }
