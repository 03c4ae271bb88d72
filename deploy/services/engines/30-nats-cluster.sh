# A three-node NATS JetStream cluster on loopback: clients 14221-14223,
# routes 16221-16223, monitoring 18221-18223. nats-server is built from the
# module graph (the version go.mod requires, the one the tests embed), the
# configuration is deploy/nats/loopback-cluster.sh's, with the deployment's
# users (deploy/nats/users.conf) and a fresh random password for each.
nats_cluster_users="setup admin api ingest normalise index analytics fanout"

up_nats_cluster() {
	local dir=$1 user var pw i
	mkdir -p "$dir/bin"
	(cd "$root" && go build -o "$dir/bin/nats-server" github.com/nats-io/nats-server/v2) ||
		{ log "could not build nats-server"; return 1; }
	"$root/deploy/nats/loopback-cluster.sh" "$dir" 14221,14222,14223 16221,16222,16223 18221,18222,18223
	local env=()
	for user in $nats_cluster_users; do
		var="NATS_${user^^}_PASSWORD"
		# nats-server parses the value as configuration: no leading digit or '-'.
		pw="pw$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		env+=("$var=$pw")
		export_var "FEEDLINE_TEST_NATS_${user^^}_PASSWORD" "$pw"
	done
	for i in 1 2 3; do
		start "nats-$i" "$dir" env "${env[@]}" "$dir/bin/nats-server" --config "$dir/nats-$i.conf"
	done
	# Healthy: JetStream is up and the node is current with the meta leader.
	for i in 1 2 3; do
		wait_for 120 curl -fsS "http://127.0.0.1:1822$i/healthz" ||
			{ cat "$dir"/nats-*.log >&2; return 1; }
	done
	export_var FEEDLINE_TEST_NATS_CLUSTER "nats://127.0.0.1:14221,nats://127.0.0.1:14222,nats://127.0.0.1:14223"
	export_var FEEDLINE_TEST_NATS_SERVER "$dir/bin/nats-server"
}

down_nats_cluster() { stop_pids "$1"; }
