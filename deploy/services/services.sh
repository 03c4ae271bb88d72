#!/usr/bin/env bash
# Starts (up) or stops (down) every real server the tests use, on loopback,
# in the background, with data in temporary directories. `up` writes
# services.env at the top of the tree: shell `export` lines with the
# FEEDLINE_TEST_* variables the tests read. Each engine is one file in
# engines/, run in name order; `down` stops them in reverse order. Naming
# engines (services.sh up nats-cluster) starts or stops only those.
#
#   make services        # or deploy/services/services.sh up
#   . ./services.env
#   make test
#   make services-down
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
state="${FEEDLINE_SERVICES_DIR:-$root/.services}"
envfile="$root/services.env"
all=("$root"/deploy/services/engines/*.sh)
action=${1:-}
shift || true
engines=()
for e in "${all[@]}"; do
	name=$(basename "$e" .sh)
	name=${name#*-}
	if [ $# -eq 0 ] || [[ " $* " == *" $name "* ]]; then engines+=("$e"); fi
done

log() { printf 'services: %s\n' "$*" >&2; }

# wait_for TRIES CMD...: run CMD every half second until it succeeds.
wait_for() {
	local tries=$1
	shift
	for _ in $(seq 1 "$tries"); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.5
	done
	return 1
}

# start NAME DIR CMD...: run CMD in the background, logs and pid in DIR.
start() {
	local name=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	nohup "$@" >"$dir/$name.log" 2>&1 </dev/null &
	echo $! >"$dir/$name.pid"
}

# stop_pids DIR: stop what start recorded in DIR, then remove DIR.
stop_pids() {
	local dir=$1 pid
	[ -d "$dir" ] || return 0
	for f in "$dir"/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		kill "$pid" 2>/dev/null || true
	done
	for f in "$dir"/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
		kill -9 "$pid" 2>/dev/null || true
	done
	rm -rf "$dir"
}

# export_var NAME VALUE: record a variable of the engine being started.
export_var() { printf 'export %s=%q\n' "$1" "$2" >>"$engine_env"; }

# write_env: services.env holds the variables of every engine that is up.
write_env() {
	cat "$state"/*/env >"$envfile.tmp" 2>/dev/null || :
	mv "$envfile.tmp" "$envfile"
}

case "$action" in
up)
	mkdir -p "$state"
	for e in "${engines[@]}"; do
		name=$(basename "$e" .sh)
		name=${name#*-}
		log "starting $name"
		mkdir -p "$state/$name"
		engine_env="$state/$name/env"
		: >"$engine_env"
		# shellcheck source=/dev/null
		. "$e"
		"up_${name//-/_}" "$state/$name"
	done
	write_env
	log "ready; variables in $envfile"
	;;
down)
	for ((i = ${#engines[@]} - 1; i >= 0; i--)); do
		e=${engines[$i]}
		name=$(basename "$e" .sh)
		name=${name#*-}
		# shellcheck source=/dev/null
		. "$e"
		"down_${name//-/_}" "$state/$name" || true
		rm -rf "${state:?}/$name"
	done
	write_env
	if [ -z "$(ls -A "$state" 2>/dev/null)" ]; then rm -rf "$state" "$envfile"; fi
	;;
*)
	echo "usage: $0 up|down [engine...]" >&2
	exit 2
	;;
esac
