# A Redis Cluster for the feed-store tests: Debian's redis-server as three
# masters and three replicas on 127.0.0.1:17001-17006 (cluster bus on
# 27001-27006), without persistence. Tests that kill a node start a cluster
# of their own; this one stays whole. A node is marked failed after 5 s
# without an answer: on a busy 2-core host 2 s took a starved one down.
redis_cluster_ports=(17001 17002 17003 17004 17005 17006)

# cluster_ok PORT...: every node says the cluster serves all its slots,
# and every replica has synced with its master.
cluster_ok() {
	local port
	for port in "$@"; do
		redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
		if redis-cli -p "$port" info replication 2>/dev/null | grep -q '^role:slave'; then
			redis-cli -p "$port" info replication | grep -q '^master_link_status:up' || return 1
		fi
	done
}

up_redis_cluster() {
	local dir=$1 port addrs=()
	for port in "${redis_cluster_ports[@]}"; do
		mkdir -p "$dir/$port"
		start "node-$port" "$dir" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir/$port" \
			--cluster-enabled yes --cluster-config-file nodes.conf --cluster-port $((port + 10000)) \
			--cluster-node-timeout 5000 --save "" --appendonly no --repl-diskless-sync-delay 0 --daemonize no
		addrs+=("127.0.0.1:$port")
	done
	for port in "${redis_cluster_ports[@]}"; do
		wait_for 60 redis-cli -p "$port" ping || { cat "$dir/node-$port.log" >&2; return 1; }
	done
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
		{ cat "$dir/create.log" >&2; return 1; }
	wait_for 120 cluster_ok "${redis_cluster_ports[@]}" ||
		{ cat "$dir/create.log" >&2; redis-cli -p 17001 cluster info >&2; return 1; }
	export_var FEEDLINE_TEST_REDIS_CLUSTER "redis+cluster://127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003"
}

down_redis_cluster() { stop_pids "$1"; }
