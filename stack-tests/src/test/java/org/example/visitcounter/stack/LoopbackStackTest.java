package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The shared promises on the loopback stack, and what only loopback shows: the replicas' own ports. */
@Tag("loopback")
class LoopbackStackTest extends StackPromisesTest {
    @Override
    Stack startStack() {
        return LoopbackStack.start();
    }

    @Override
    String diagnosis() {
        return stack == null ? "" : ((LoopbackStack) stack).local().output();
    }

    @Test
    @Order(1)
    void operationalEndpointsAnswerOnTheReplicasThemselves() throws Exception {
        LocalStack local = ((LoopbackStack) stack).local();
        for (String path : List.of("/metrics", "/healthz", "/readyz")) {
            for (String replica : stack.replicas()) {
                var response = http.send(HttpRequest.newBuilder(local.replicaUri(replica).resolve(path))
                        .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.discarding());
                assertEquals(200, response.statusCode(), replica + path);
            }
        }
    }

    @Test
    @Order(1)
    void replicasListenOnTheLoopbackAddressOnly() {
        // local-stack.sh sets HOST=127.0.0.1. 127.0.0.2 is this machine too (all of 127/8 is
        // loopback), so it reaches a replica bound to every interface but not one bound to 127.0.0.1.
        LocalStack local = ((LoopbackStack) stack).local();
        for (String replica : stack.replicas()) {
            int port = local.replicaUri(replica).getPort();
            assertThrows(ConnectException.class, () -> {
                try (var socket = new Socket()) {
                    socket.connect(new InetSocketAddress("127.0.0.2", port), 2000);
                }
            }, replica + " accepts connections on 127.0.0.2:" + port);
        }
    }
}
