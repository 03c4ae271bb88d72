# The search node for the Elasticsearch adapter: OpenSearch 2.19.6 (it
# speaks the Elasticsearch API; Elastic publishes no analysis-common module
# on Maven Central, so an Elasticsearch 8 node cannot be assembled from
# there), embedded by deploy/search-node's launcher on 127.0.0.1:19200
# (transport 19300). The first run builds the launcher with Maven (jars
# into ~/.m2); later runs build offline or not at all.
search_src() { echo "$root/deploy/search-node"; }

# build_search_node: package the launcher unless target/ is newer than its
# sources.
build_search_node() {
	local src jar
	src=$(search_src)
	jar="$src/target/search-node-1.jar"
	if [ -f "$jar" ] && [ -d "$src/target/lib" ] &&
		[ -z "$(find "$src/pom.xml" "$src/src" -newer "$jar" -print -quit)" ]; then
		return 0
	fi
	log "building the search node launcher (Maven)"
	(cd "$src" && { mvn -q -B -o package >/dev/null 2>&1 || mvn -q -B package; }) </dev/null
}

search_classpath() { echo "$(search_src)/target/classes:$(search_src)/target/lib/*"; }

search_health() {
	curl -fs -m 5 'http://127.0.0.1:19200/_cluster/health?wait_for_status=yellow&timeout=2s' 2>/dev/null |
		grep -Eq '"status":"(green|yellow)"'
}

up_search() {
	local dir=$1
	command -v java >/dev/null && command -v mvn >/dev/null ||
		{ echo "search: java 17 and mvn are needed on PATH" >&2; return 1; }
	if (exec 3<>/dev/tcp/127.0.0.1/19200) 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/19300) 2>/dev/null; then
		echo "search: 127.0.0.1:19200 or 19300 is in use (a node of another services directory?); stop it first" >&2
		return 1
	fi
	build_search_node || { echo "search: building deploy/search-node failed" >&2; return 1; }
	mkdir -p "$dir/node"
	start search "$dir" java -Xms512m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
		-cp "$(search_classpath)" feedline.searchnode.SearchNode \
		--home "$dir/node" --http-port 19200 --transport-port 19300 --cluster feedline-test
	# Up to two minutes (a boot takes seconds, more on two busy cores); a
	# node that exits while starting fails at once with its log.
	local pid tries=0
	pid=$(cat "$dir/search.pid")
	until search_health; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "search: the node exited while starting; its log:" >&2
			tail -n 50 "$dir/search.log" >&2
			return 1
		fi
		if [ $((tries += 1)) -ge 240 ]; then
			echo "search: no yellow or green cluster on 127.0.0.1:19200 after two minutes; the node's log:" >&2
			tail -n 50 "$dir/search.log" >&2
			return 1
		fi
		sleep 0.5
	done
	export_var FEEDLINE_TEST_ES_URL "http://127.0.0.1:19200"
	# The launcher, for tests that run a node of their own on other ports.
	export_var FEEDLINE_TEST_ES_CLASSPATH "$(search_classpath)"
}

down_search() { stop_pids "$1"; }
