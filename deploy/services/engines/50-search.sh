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
	curl -fsS -m 5 'http://127.0.0.1:19200/_cluster/health?wait_for_status=yellow&timeout=2s' | grep -Eq '"status":"(green|yellow)"'
}

up_search() {
	local dir=$1
	command -v java >/dev/null && command -v mvn >/dev/null ||
		{ echo "search: java 17 and mvn are needed on PATH" >&2; return 1; }
	build_search_node || { echo "search: building deploy/search-node failed" >&2; return 1; }
	mkdir -p "$dir/node"
	start search "$dir" java -Xms512m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
		-cp "$(search_classpath)" feedline.searchnode.SearchNode \
		--home "$dir/node" --http-port 19200 --transport-port 19300 --cluster feedline-test
	# Up to two minutes: a first boot on two busy cores takes some seconds.
	wait_for 240 search_health || { tail -n 50 "$dir/search.log" >&2; return 1; }
	export_var FEEDLINE_TEST_ES_URL "http://127.0.0.1:19200"
	# The launcher, for tests that run a node of their own on other ports.
	export_var FEEDLINE_TEST_ES_CLASSPATH "$(search_classpath)"
}

down_search() { stop_pids "$1"; }
