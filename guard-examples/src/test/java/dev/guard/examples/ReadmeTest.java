package dev.guard.examples;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The README's code example is the code of {@link QuickStart}, so it compiles and runs. */
class ReadmeTest {
    @Test
    void readmeQuickStart_isTheCompiledExample() throws IOException {
        String readme = Files.readString(Path.of("..", "README.md"));
        String source = Files.readString(Path.of("src/main/java/dev/guard/examples/QuickStart.java"));

        String inReadme = between(readme, "<!-- README:quickstart -->\n```java\n", "```\n<!-- /README:quickstart -->");
        String inSource = between(source, "// README:quickstart:begin\n", "        // README:quickstart:end");

        assertThat(inReadme.strip()).isEqualTo(unindent(inSource));
    }

    @Test
    void quickStart_runs() throws Exception {
        QuickStart.main(new String[0]);
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
