package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.example.visitcounter.stack.support.DocCommands;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The shared promises on compose.yaml alone, on a real Docker engine, and Compose's own lifecycle:
 * what {@code up} starts, what {@code down} removes and keeps, and what {@code down -v} drops.
 */
@Tag("docker")
class ComposeStackTest extends StackPromisesTest {
    @Override
    Stack startStack() {
        return ComposeStack.up();
    }

    @Override
    String diagnosis() {
        return stack == null ? "" : ((ComposeStack) stack).diagnosis();
    }

    @Test
    @Order(0)
    void upStartsRedisThreeReplicasAndNginxAllHealthy() {
        var containers = ((ComposeStack) stack).ps(true);
        Map<String, Long> byService = containers.stream()
                .collect(Collectors.groupingBy(ComposeStack.Container::service, TreeMap::new, Collectors.counting()));
        assertEquals(Map.of("nginx", 1L, "redis", 1L, "web", 3L), byService, "compose ps: " + containers);
        for (var c : containers) {
            assertEquals("running/healthy", c.state() + "/" + c.health(), "compose ps: " + c);
        }
    }

    /** README: `docker compose down` removes containers and networks but keeps Redis's data; `-v` drops it. */
    @Test
    @Order(9)
    void downRemovesContainersAndNetworksAndDownWithVolumesDropsTheCount() {
        var compose = (ComposeStack) stack;
        var cli = compose.cli;
        String label = "label=com.docker.compose.project=" + compose.project;
        cli.docker(ComposeStack.COMMAND_TIMEOUT, DocCommands.DOWN).ok(DocCommands.DOWN);
        assertEquals(List.of(), compose.ps(true), "containers after " + DocCommands.DOWN);
        assertEquals("", cli.run(ComposeStack.COMMAND_TIMEOUT, "network", "ls", "--filter", label, "--format", "json")
                .ok("docker network ls").output().strip(), "networks after " + DocCommands.DOWN);
        String volume = compose.project + "_redis-data";
        cli.run(ComposeStack.COMMAND_TIMEOUT, "volume", "inspect", volume).ok("the volume " + volume + " after compose down");
        cli.docker(ComposeStack.COMMAND_TIMEOUT, DocCommands.DOWN_VOLUMES).ok(DocCommands.DOWN_VOLUMES);
        assertTrue(cli.run(ComposeStack.COMMAND_TIMEOUT, "volume", "inspect", volume).status() != 0, volume + " after down -v");
    }
}
