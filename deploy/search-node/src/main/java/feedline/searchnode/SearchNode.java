package feedline.searchnode;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * A single-node OpenSearch on loopback, embedded: the server with the
 * Netty4 HTTP transport and the common analysis module (cjk_bigram,
 * cjk_width, stemmer, pattern_replace) as classpath plugins, and no
 * security plugin. It runs until SIGTERM or SIGINT, then closes the node.
 *
 * <pre>
 * java -Xms512m -Xmx1g -cp 'target/classes:target/lib/*' feedline.searchnode.SearchNode \
 *     --home DIR [--http-port 19200] [--transport-port 19300] [--cluster NAME] [--ready-file FILE]
 * </pre>
 *
 * Data lives in DIR/data and survives a restart with the same DIR. A port
 * of 0 takes a free one; the ready file, written once the node serves
 * HTTP, holds the address it bound ("127.0.0.1:PORT").
 */
public final class SearchNode {
    private SearchNode() {}

    /** The node with its plugins given on the classpath rather than installed. */
    static final class EmbeddedNode extends Node {
        EmbeddedNode(Environment env, List<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        Path home = null;
        Path readyFile = null;
        String httpPort = "19200";
        String transportPort = "19300";
        String cluster = "feedline-test";
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--home" -> home = Path.of(require(args[i], value));
                case "--http-port" -> httpPort = require(args[i], value);
                case "--transport-port" -> transportPort = require(args[i], value);
                case "--cluster" -> cluster = require(args[i], value);
                case "--ready-file" -> readyFile = Path.of(require(args[i], value));
                default -> usage("unknown argument " + args[i]);
            }
            i++;
        }
        if (home == null) {
            usage("--home is required");
        }
        home = home.toAbsolutePath();
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));
        if (readyFile != null) {
            Files.deleteIfExists(readyFile);
        }

        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", cluster)
            .put("node.name", cluster + "-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", transportPort)
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .put("discovery.type", "single-node")
            // Test machines run with little free disk at times; a watermark
            // would turn the node read-only mid-test.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
        String nodeName = cluster + "-node";
        Environment env = InternalSettingsPreparer.prepareEnvironment(
            settings, Collections.emptyMap(), null, () -> nodeName);
        Node node = new EmbeddedNode(env, List.of(Netty4Plugin.class, CommonAnalysisPlugin.class));

        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (IOException e) {
                System.err.println("search node: close: " + e);
            } finally {
                closed.countDown();
            }
        }, "search-node-shutdown"));

        node.start();
        InetSocketAddress http = node.injector().getInstance(HttpServerTransport.class)
            .boundAddress().publishAddress().address();
        String address = http.getHostString() + ":" + http.getPort();
        if (readyFile != null) {
            Path tmp = readyFile.resolveSibling(readyFile.getFileName() + ".tmp");
            Files.writeString(tmp, address + "\n", StandardCharsets.UTF_8);
            Files.move(tmp, readyFile, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        }
        System.out.println("search node: OpenSearch " + org.opensearch.Version.CURRENT + " serving http://" + address);
        closed.await();
    }

    private static String require(String flag, String value) {
        if (value == null) {
            usage(flag + " needs a value");
        }
        return value;
    }

    private static void usage(String problem) {
        System.err.println("search node: " + problem);
        System.err.println("usage: SearchNode --home DIR [--http-port N] [--transport-port N] [--cluster NAME] [--ready-file FILE]");
        System.exit(2);
    }
}
