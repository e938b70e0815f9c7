package dev.guard.examples;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.Debouncer;
import dev.guard.Decision;
import dev.guard.Guard;
import dev.guard.GuardedHandler;
import dev.guard.route.SendDecision;
import dev.guard.storage.memory.MemoryStorage;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The code examples in the published modules' Javadoc are code of guard-examples, so they compile: each
 * {@code <pre>{@code ...}</pre>} block of {@code Foo.java} is, but for indentation and where the lines break (the
 * formatter's business), the code between {@code // Javadoc:Foo:begin} and {@code // Javadoc:Foo:end} in a source of
 * this module ({@code Foo#2} for the file's second block, and so on). The examples that need no server also run here.
 */
class JavadocTest {
    private static final List<String> MODULES =
            List.of("guard-core", "guard-storage-memory", "guard-storage-redis", "guard-storage-jdbc");
    private static final Pattern BLOCK = Pattern.compile("<pre>\\{@code\\n(.*?)\\n\\s*\\*\\s*}</pre>", Pattern.DOTALL);
    private static final Pattern REGION =
            Pattern.compile("// Javadoc:(\\S+):begin\\n(.*?)\\n\\s*// Javadoc:\\1:end", Pattern.DOTALL);

    @Test
    void everyJavadocExample_isCompiledExampleCode() throws IOException {
        Map<String, String> inJavadoc = javadocExamples();
        Map<String, String> inExamples = exampleRegions();

        assertThat(inJavadoc).as("the Javadoc examples").isNotEmpty();
        assertThat(inExamples).as("the regions of guard-examples").containsOnlyKeys(inJavadoc.keySet());
        inJavadoc.forEach((name, code) -> assertThat(unbroken(inExamples.get(name)))
                .as("example %s", name)
                .isEqualTo(unbroken(code)));
    }

    @Test
    void guardExample_handsAllowedUpdatesToTheBot() throws Exception {
        List<Update> handled = new ArrayList<>();
        GuardedHandler<Update> handler = JavadocExamples.guard(bot(handled, new ArrayList<>()));

        Decision first = handler.handle(Update.text(42, 42, "/start"));
        Decision copy = handler.handle(Update.text(42, 42, "/start"));

        assertThat(first.allowed()).isTrue();
        assertThat(copy.allowed()).isFalse();
        assertThat(handled).containsExactly(Update.text(42, 42, "/start"));
    }

    @Test
    void debouncerExample_collectsAnAlbumAndStartsItsFlush() {
        List<List<Update>> albums = new CopyOnWriteArrayList<>(); // the scheduler may flush too
        ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
        try (MemoryStorage storage = MemoryStorage.create()) {
            Guard<Update> guard = JavadocExamples.guardMetrics(storage, new SimpleMeterRegistry());
            Debouncer<Update> debouncer = JavadocExamples.debouncer(guard, bot(new ArrayList<>(), albums), scheduler);
            Update part = new Update(42L, 42L, "photo", false, "album-1");

            debouncer.offer(part);
            debouncer.flushAll();

            assertThat(albums).containsExactly(List.of(part));
        } finally {
            scheduler.shutdownNow();
        }
    }

    @Test
    void guardMetricsExample_countsDecisions() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (MemoryStorage storage = MemoryStorage.create()) {
            Guard<Update> guard = JavadocExamples.guardMetrics(storage, registry);

            guard.check(Update.text(42, 42, "hi"));

            assertThat(registry.get("guard.decisions")
                            .tag("guard", "support-bot")
                            .counter()
                            .count())
                    .isEqualTo(1.0);
        }
    }

    @Test
    void routeExamples_grantASenderOfThePool() {
        JavadocExamples.outboundMessage();
        JavadocExamples.sender();
        ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
        try (MemoryStorage storage = MemoryStorage.create()) {
            SendDecision d =
                    JavadocExamples.sendDecision(JavadocExamples.senderPool(storage), "12345", scheduler, () -> {});

            assertThat(d).isInstanceOfSatisfying(SendDecision.Granted.class, g -> assertThat(g.sender())
                    .isIn("bot-a", "bot-b"));
        } finally {
            scheduler.shutdownNow();
        }
    }

    @Test
    void manualTickerAndMemoryStorageExamples_run() throws Exception {
        assertThat(JavadocExamples.manualTicker().now()).isEqualTo(Instant.parse("2026-01-01T00:00:01Z"));
        try (var storage = JavadocExamples.memoryStorage()) {
            assertThat(storage).isInstanceOf(MemoryStorage.class);
        }
    }

    private static JavadocExamples.Bot bot(List<Update> updates, List<List<Update>> albums) {
        return new JavadocExamples.Bot() {
            @Override
            public void onUpdate(Update update) {
                updates.add(update);
            }

            @Override
            public void onAlbum(List<Update> album) {
                albums.add(album);
            }
        };
    }

    /** The example blocks of the modules' main sources, by region name, without the comment's stars. */
    private static Map<String, String> javadocExamples() throws IOException {
        Map<String, String> examples = new LinkedHashMap<>();
        for (String module : MODULES) {
            for (Path file : sources(Path.of("..", module, "src/main/java"))) {
                String name = file.getFileName().toString().replace(".java", "");
                Matcher m = BLOCK.matcher(Files.readString(file));
                for (int i = 1; m.find(); i++) {
                    String code = m.group(1)
                            .lines()
                            .map(line -> line.replaceFirst("^\\s*\\* ?", ""))
                            .collect(Collectors.joining("\n"));
                    examples.put(i == 1 ? name : name + "#" + i, unindent(code));
                }
            }
        }
        return examples;
    }

    /** The marked regions of this module's sources, by name. */
    private static Map<String, String> exampleRegions() throws IOException {
        Map<String, String> regions = new LinkedHashMap<>();
        for (Path file : sources(Path.of("src/main/java"))) {
            Matcher m = REGION.matcher(Files.readString(file));
            while (m.find()) {
                assertThat(regions.put(m.group(1), unindent(m.group(2))))
                        .as("region %s, again in %s", m.group(1), file)
                        .isNull();
            }
        }
        return regions;
    }

    private static List<Path> sources(Path root) throws IOException {
        try (Stream<Path> files = Files.walk(root)) {
            return files.filter(f -> f.toString().endsWith(".java")).sorted().toList();
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    /** The code on one line: a chain the formatter broke equals the same chain on one line. */
    private static String unbroken(String code) {
        return code == null ? null : code.replaceAll("\\s*\\n\\s*", "");
    }

    /** Drops the indentation that all non-blank lines share, and trailing blanks. */
    private static String unindent(String code) {
        List<String> lines = new ArrayList<>(
                code.stripTrailing().lines().map(String::stripTrailing).toList());
        int common = lines.stream()
                .filter(line -> !line.isBlank())
                .mapToInt(line -> line.length() - line.stripLeading().length())
                .min()
                .orElse(0);
        return lines.stream()
                .map(line -> line.isBlank() ? "" : line.substring(common))
                .collect(Collectors.joining("\n"));
    }
}
