package dev.guard.examples;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.route.SendDecision;
import dev.guard.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The READMEs' code examples are the code of {@link QuickStart}, {@link SharedLimits} and {@link Outbound}, so they
 * compile.
 */
class ReadmeTest {
    @Test
    void readmeQuickStart_isTheCompiledExample() throws IOException {
        assertExample("../README.md", "quickstart", "QuickStart.java");
    }

    @Test
    void readmeRedisExample_isTheCompiledExample() throws IOException {
        assertExample("../README.md", "redis", "SharedLimits.java");
    }

    @Test
    void readmeOutboundExample_isTheCompiledExample() throws IOException {
        assertExample("../README.md", "outbound", "Outbound.java");
    }

    @Test
    void outboundExample_grantsTheFirstMessage() {
        assertThat(Outbound.send(MemoryStorage.create(), 42)).isInstanceOf(SendDecision.Granted.class);
    }

    @Test
    void jdbcReadmeExample_isTheCompiledExample() throws IOException {
        assertExample("../guard-storage-jdbc/README.md", "jdbc", "SharedLimits.java");
    }

    @Test
    void quickStart_runs() throws Exception {
        QuickStart.main(new String[0]);
    }

    /**
     * Asserts that the Java block between {@code <!-- README:name -->} and {@code <!-- /README:name -->} in {@code
     * readme} is the code between {@code // README:name:begin} and {@code // README:name:end} in {@code source}.
     */
    private static void assertExample(String readme, String name, String source) throws IOException {
        String text = Files.readString(Path.of(readme));
        String code = Files.readString(Path.of("src/main/java/dev/guard/examples", source));

        String inReadme =
                between(text, "<!-- README:" + name + " -->\n```java\n", "```\n<!-- /README:" + name + " -->");
        String inSource = between(code, "// README:" + name + ":begin\n", "        // README:" + name + ":end");

        assertThat(inReadme.strip()).as("%s in %s", name, readme).isEqualTo(unindent(inSource));
    }

    private static String between(String text, String start, String end) {
        int from = text.indexOf(start);
        assertThat(from).as("marker %s", start).isNotNegative();
        int to = text.indexOf(end, from + start.length());
        assertThat(to).as("marker %s", end).isNotNegative();
        return text.substring(from + start.length(), to);
    }

    /** Drops the source's method-body indentation so the two texts compare line by line. */
    private static String unindent(String code) {
        return Arrays.stream(code.split("\n"))
                .map(line -> line.startsWith("        ") ? line.substring(8) : line.strip())
                .collect(Collectors.joining("\n"))
                .strip();
    }
}
