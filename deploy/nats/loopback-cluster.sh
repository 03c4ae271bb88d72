#!/usr/bin/env bash
# Writes the configuration of a three-node JetStream cluster on loopback:
# DIR/nats-N.conf for N = 1..3, JetStream files in DIR/nats-N/, and
# DIR/users.conf, a link to deploy/nats/users.conf, so the nodes have the
# deployment's users and rights. Each node then runs as
#
#   NATS_<USER>_PASSWORD=... nats-server --config DIR/nats-N.conf
#
# `make services` (deploy/services/engines/30-nats-cluster.sh) runs one such
# cluster; the node-loss tests write their own on other ports and kill nodes.
#
#   loopback-cluster.sh DIR CLIENT_PORTS ROUTE_PORTS MONITOR_PORTS
#   loopback-cluster.sh /tmp/c 14221,14222,14223 16221,16222,16223 18221,18222,18223
set -euo pipefail
if [ $# -ne 4 ]; then
	echo "usage: $0 DIR CLIENT_PORTS ROUTE_PORTS MONITOR_PORTS (three comma-separated ports each)" >&2
	exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
dir=$1
IFS=, read -r -a clients <<<"$2"
IFS=, read -r -a routes <<<"$3"
IFS=, read -r -a monitors <<<"$4"
if [ ${#clients[@]} -ne 3 ] || [ ${#routes[@]} -ne 3 ] || [ ${#monitors[@]} -ne 3 ]; then
	echo "$0: want three client, three route and three monitoring ports" >&2
	exit 2
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
ln -sfn "$here/users.conf" "$dir/users.conf"
for i in 0 1 2; do
	n=$((i + 1))
	mkdir -p "$dir/nats-$n"
	cat >"$dir/nats-$n.conf" <<EOF
# Node $n of a loopback JetStream cluster (written by deploy/nats/loopback-cluster.sh).
server_name: nats-$n
host: 127.0.0.1
port: ${clients[$i]}
http: 127.0.0.1:${monitors[$i]}

jetstream {
  store_dir: "$dir/nats-$n"
  max_memory_store: 256MB
  max_file_store: 8GB
}

cluster {
  name: feedline-loopback
  listen: 127.0.0.1:${routes[$i]}
  routes: [
    nats-route://127.0.0.1:${routes[0]}
    nats-route://127.0.0.1:${routes[1]}
    nats-route://127.0.0.1:${routes[2]}
  ]
}

# As deploy/nats/nats.conf: streams accept messages up to pipeline.MaxPayload.
max_payload: 8MB

include users.conf
EOF
done
