# ClickHouse for the analytics sink: Debian's clickhouse-server (18.16, native
# protocol only) on 127.0.0.1:19000 (HTTP 18123).
up_clickhouse() {
	local dir=$1
	mkdir -p "$dir"
	start clickhouse "$dir" clickhouse-server --config-file=/etc/clickhouse-server/config.xml -- \
		--path="$dir/data/" --tmp_path="$dir/tmp/" --user_files_path="$dir/user_files/" \
		--listen_host=127.0.0.1 --tcp_port=19000 --http_port=18123 \
		--logger.log="$dir/server.log" --logger.errorlog="$dir/error.log"
	wait_for 120 clickhouse-client --host 127.0.0.1 --port 19000 --query 'SELECT 1' ||
		{ cat "$dir/error.log" "$dir/clickhouse.log" >&2; return 1; }
	export_var FEEDLINE_TEST_CLICKHOUSE "clickhouse://127.0.0.1:19000"
}

down_clickhouse() { stop_pids "$1"; }
