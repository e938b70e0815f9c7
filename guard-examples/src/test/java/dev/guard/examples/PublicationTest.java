package dev.guard.examples;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Element;
import org.w3c.dom.Node;

/**
 * What users get from the published POMs, read from the POM files of the repository: what a publication to Maven
 * Central requires of each (its metadata, and a sources and a Javadoc jar beside each jar), the BOM's list, the
 * dependencies a storage module drags in, and the README's coordinates.
 * A module is published unless it sets {@code maven.deploy.skip} (the examples and the benchmarks).
 */
class PublicationTest {
    private static final Path ROOT = Path.of("..");

    @Test
    void everyPublishedPom_carriesWhatMavenCentralRequires() throws Exception {
        Element parent = pom("pom.xml");
        List<String> missing = new ArrayList<>();
        for (String module : publishedPoms()) {
            Element pom = pom(module);
            boolean child = child(pom, "parent") != null;
            for (String field : List.of("name", "description", "url", "licenses", "developers", "scm")) {
                Element own = child(pom, field);
                Element inherited = child ? child(parent, field) : null;
                if (field.equals("name") || field.equals("description")) {
                    if (own == null
                            || own.getTextContent().isBlank()) { // the parent's would describe the whole project
                        missing.add(module + ": " + field);
                    }
                } else if (own == null && inherited == null) {
                    missing.add(module + ": " + field);
                } else if (own == null && field.equals("url")) {
                    // Maven appends the artifactId to an inherited url (a page that does not exist) unless told not to.
                    if (!"false".equals(parent.getAttribute("child.project.url.inherit.append.path"))) {
                        missing.add(module + ": url (inherited with /<artifactId> appended)");
                    }
                } else if (own == null && field.equals("scm")) {
                    for (String part : List.of("url", "connection", "developerConnection")) {
                        if (!"false".equals(inherited.getAttribute("child.scm." + part + ".inherit.append.path"))) {
                            missing.add(module + ": scm " + part + " (inherited with /<artifactId> appended)");
                        }
                    }
                }
            }
            Element scm = child(pom, "scm") != null ? child(pom, "scm") : child ? child(parent, "scm") : null;
            for (String part : List.of("url", "connection", "developerConnection")) {
                if (scm != null && child(scm, part) == null) {
                    missing.add(module + ": scm " + part);
                }
            }
        }

        assertThat(missing).as("what the published POMs lack").isEmpty();
    }

    @Test
    void bom_listsEveryPublishedJar_atTheProjectVersion() throws Exception {
        Element bom = pom("guard-bom/pom.xml");
        Map<String, String> managed = new LinkedHashMap<>();
        for (Element dependency : children(child(child(bom, "dependencyManagement"), "dependencies"), "dependency")) {
            managed.put(
                    text(dependency, "groupId") + ":" + text(dependency, "artifactId"), text(dependency, "version"));
        }
        List<String> jars = new ArrayList<>();
        for (String module : publishedPoms()) {
            Element pom = pom(module);
            if (!module.equals("pom.xml") && !module.startsWith("guard-bom/")) {
                jars.add("dev.guard:" + text(pom, "artifactId"));
            }
        }

        assertThat(text(bom, "version")).as("the BOM's version").isEqualTo(projectVersion());
        assertThat(managed.keySet()).as("the BOM's modules").containsExactlyInAnyOrderElementsOf(jars);
        assertThat(managed.values()).as("their versions").containsOnly("${project.version}");
    }

    @Test
    void everyPublishedJar_attachesItsSourcesAndJavadoc() throws Exception {
        Element root = pom("pom.xml");
        List<String> jars = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        for (String module : publishedPoms()) {
            Element pom = pom(module);
            String packaging = text(pom, "packaging");
            if (packaging != null && !packaging.equals("jar")) {
                continue; // the root POM and the BOM: no classes, so neither sources nor Javadoc
            }
            jars.add(module);
            Element parent = child(pom, "parent") != null ? root : null;
            if (!runs(
                    pom,
                    parent,
                    "maven-source-plugin",
                    Set.of("jar", "jar-no-fork"),
                    "skipSource",
                    "maven.source.skip")) {
                missing.add(module + ": -sources.jar");
            }
            if (!runs(pom, parent, "maven-javadoc-plugin", Set.of("jar"), "skip", "maven.javadoc.skip")) {
                missing.add(module + ": -javadoc.jar");
            }
        }

        assertThat(jars).as("the published jars").contains("guard-core/pom.xml", "guard-storage-tck/pom.xml");
        assertThat(missing).as("what the published jars lack beside them").isEmpty();
    }

    @Test
    void javadocRun_failsOnWhatDoclintFinds() throws Exception {
        Element javadoc = null;
        for (Element plugin : plugins(pom("pom.xml"), "pluginManagement")) {
            if (text(plugin, "artifactId").equals("maven-javadoc-plugin")) {
                javadoc = plugin;
            }
        }
        assertThat(javadoc).as("the root POM's maven-javadoc-plugin").isNotNull();
        Element configuration = child(javadoc, "configuration");
        assertThat(configuration).as("its configuration").isNotNull();
        List<String> groups =
                List.of(String.valueOf(text(configuration, "doclint")).split(","));

        assertThat(text(configuration, "failOnWarnings")).as("failOnWarnings").isEqualTo("true");
        // Missing @param and @return tags may pass (see the root POM); broken links, bad HTML and syntax may not.
        assertThat(groups)
                .as("the doclint groups")
                .contains("all")
                .doesNotContain("none", "-reference", "-html", "-syntax", "-accessibility");
    }

    @Test
    void storageModules_dependOnNoGuardModuleButCore() throws Exception {
        for (String module : modules()) {
            if (!module.startsWith("guard-storage-") || module.equals("guard-storage-tck")) {
                continue;
            }
            List<String> guardModules = new ArrayList<>();
            for (Element dependency : children(child(pom(module + "/pom.xml"), "dependencies"), "dependency")) {
                String scope = text(dependency, "scope");
                if (text(dependency, "groupId").equals("dev.guard") && (scope == null || scope.equals("compile"))) {
                    guardModules.add(text(dependency, "artifactId"));
                }
            }
            // A user picks one storage; each must come alone (fallbackTo(MemoryStorage) is the user's own choice).
            assertThat(guardModules)
                    .as("the Guard modules that %s brings along", module)
                    .containsExactly("guard-core");
        }
    }

    @Test
    void readmeDependencySnippet_importsTheBomAtTheProjectVersion() throws Exception {
        String readme = Files.readString(ROOT.resolve("README.md"));
        Matcher bom = Pattern.compile("<groupId>dev\\.guard</groupId>\\s*<artifactId>guard-bom</artifactId>"
                        + "\\s*<version>([^<]+)</version>\\s*<type>pom</type>\\s*<scope>import</scope>")
                .matcher(readme);

        assertThat(bom.find()).as("the README's BOM import").isTrue();
        assertThat(bom.group(1)).as("the README's BOM version").isEqualTo(projectVersion());
        Matcher artifacts = Pattern.compile("<groupId>dev\\.guard</groupId>\\s*<artifactId>([^<]+)</artifactId>")
                .matcher(readme);
        while (artifacts.find()) {
            assertThat(Files.exists(ROOT.resolve(artifacts.group(1)).resolve("pom.xml")))
                    .as("module %s of the README", artifacts.group(1))
                    .isTrue();
        }
    }

    /** The root POM, guard-bom's and those of the modules that are deployed, as paths from the root. */
    private static List<String> publishedPoms() throws Exception {
        List<String> poms = new ArrayList<>(List.of("pom.xml"));
        for (String module : modules()) {
            Element properties = child(pom(module + "/pom.xml"), "properties");
            if (properties == null || !"true".equals(text(properties, "maven.deploy.skip"))) {
                poms.add(module + "/pom.xml");
            }
        }
        return poms;
    }

    /**
     * Whether the build of {@code pom}, under {@code parent} (the root POM, or null), runs one of {@code goals} of
     * {@code artifactId} in a phase of the lifecycle with a pinned version, unskipped: Maven's merge of these POMs
     * (the parent's plugins are inherited, pluginManagement adds versions and executions, executions merge by id, the
     * child's properties override the parent's, a skip parameter defaults to its property).
     */
    private static boolean runs(
            Element pom,
            Element parent,
            String artifactId,
            Set<String> goals,
            String skipParameter,
            String skipProperty) {
        List<Element> declarations = new ArrayList<>(); // parent first, so that the child's override
        boolean declared = false;
        for (Element owner : parent == null ? List.of(pom) : List.of(parent, pom)) {
            for (String section : List.of("pluginManagement", "plugins")) {
                for (Element plugin : plugins(owner, section)) {
                    boolean inherited = owner == pom || !"false".equals(text(plugin, "inherited"));
                    String group = text(plugin, "groupId");
                    if (inherited
                            && text(plugin, "artifactId").equals(artifactId)
                            && (group == null || group.equals("org.apache.maven.plugins"))) {
                        declarations.add(plugin);
                        declared |= section.equals("plugins");
                    }
                }
            }
        }
        Map<String, String> properties = new LinkedHashMap<>();
        for (Element owner : parent == null ? List.of(pom) : List.of(parent, pom)) {
            Element own = child(owner, "properties");
            for (Element property : own == null ? List.<Element>of() : children(own)) {
                properties.put(property.getTagName(), property.getTextContent().strip());
            }
        }
        String version = null;
        String skip = "${" + skipProperty + "}";
        Map<String, List<String>> executionGoals = new LinkedHashMap<>();
        Map<String, String> executionPhases = new LinkedHashMap<>();
        Map<String, String> executionSkips = new LinkedHashMap<>();
        for (Element plugin : declarations) {
            version = text(plugin, "version") != null ? text(plugin, "version") : version;
            skip = skipOf(child(plugin, "configuration"), skipParameter, skip);
            Element executions = child(plugin, "executions");
            for (Element execution : executions == null ? List.<Element>of() : children(executions, "execution")) {
                String id = text(execution, "id") == null ? "default" : text(execution, "id");
                Element goalList = child(execution, "goals");
                for (Element goal : goalList == null ? List.<Element>of() : children(goalList, "goal")) {
                    executionGoals
                            .computeIfAbsent(id, k -> new ArrayList<>())
                            .add(goal.getTextContent().strip());
                }
                if (text(execution, "phase") != null) {
                    executionPhases.put(id, text(execution, "phase"));
                }
                String executionSkip = skipOf(child(execution, "configuration"), skipParameter, null);
                if (executionSkip != null) {
                    executionSkips.put(id, executionSkip);
                }
            }
        }
        if (!declared || version == null) {
            return false;
        }
        for (Map.Entry<String, List<String>> execution : executionGoals.entrySet()) {
            String id = execution.getKey();
            String skipped = resolve(executionSkips.getOrDefault(id, skip), properties);
            if (execution.getValue().stream().anyMatch(goals::contains)
                    && !"none".equals(executionPhases.get(id))
                    && !"true".equals(skipped)) {
                return true;
            }
        }
        return false;
    }

    /** The plugins of a POM's {@code <build><plugins>} or {@code <build><pluginManagement><plugins>}. */
    private static List<Element> plugins(Element pom, String section) {
        Element build = child(pom, "build");
        Element owner = build == null ? null : section.equals("plugins") ? build : child(build, section);
        Element plugins = owner == null ? null : child(owner, "plugins");
        return plugins == null ? List.of() : children(plugins, "plugin");
    }

    private static String skipOf(Element configuration, String skipParameter, String otherwise) {
        String value = configuration == null ? null : text(configuration, skipParameter);
        return value == null ? otherwise : value;
    }

    /** {@code value} with a whole {@code ${name}} replaced by the property (null when it is not set). */
    private static String resolve(String value, Map<String, String> properties) {
        if (value != null && value.startsWith("${") && value.endsWith("}")) {
            return properties.get(value.substring(2, value.length() - 1));
        }
        return value;
    }

    private static List<String> modules() throws Exception {
        List<String> modules = new ArrayList<>();
        for (Element module : children(child(pom("pom.xml"), "modules"), "module")) {
            modules.add(module.getTextContent().strip());
        }
        return modules;
    }

    private static String projectVersion() throws Exception {
        return text(pom("pom.xml"), "version");
    }

    private static Element pom(String path) throws Exception {
        try {
            return DocumentBuilderFactory.newInstance()
                    .newDocumentBuilder()
                    .parse(ROOT.resolve(path).toFile())
                    .getDocumentElement();
        } catch (IOException e) {
            throw new IOException("cannot read " + path, e);
        }
    }

    /** The first child element named {@code name}, or null: never a grandchild (a dependency's own version). */
    private static Element child(Element parent, String name) {
        for (Node node = parent.getFirstChild(); node != null; node = node.getNextSibling()) {
            if (node instanceof Element element && element.getTagName().equals(name)) {
                return element;
            }
        }
        return null;
    }

    private static List<Element> children(Element parent) {
        List<Element> children = new ArrayList<>();
        for (Node node = parent.getFirstChild(); node != null; node = node.getNextSibling()) {
            if (node instanceof Element element) {
                children.add(element);
            }
        }
        return children;
    }

    private static List<Element> children(Element parent, String name) {
        List<Element> children = new ArrayList<>();
        for (Node node = parent.getFirstChild(); node != null; node = node.getNextSibling()) {
            if (node instanceof Element element && element.getTagName().equals(name)) {
                children.add(element);
            }
        }
        return children;
    }

    private static String text(Element parent, String name) {
        Element child = child(parent, name);
        return child == null ? null : child.getTextContent().strip();
    }
}
