package dev.guard.storage.jdbc;

import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.slf4j.ILoggerFactory;
import org.slf4j.IMarkerFactory;
import org.slf4j.Marker;
import org.slf4j.event.Level;
import org.slf4j.helpers.BasicMarkerFactory;
import org.slf4j.helpers.LegacyAbstractLogger;
import org.slf4j.helpers.MessageFormatter;
import org.slf4j.helpers.NOPMDCAdapter;
import org.slf4j.spi.MDCAdapter;
import org.slf4j.spi.SLF4JServiceProvider;

/**
 * The SLF4J provider of this module's tests (in place of slf4j-nop): it prints nothing and keeps what is logged at
 * INFO and above, so that a test can assert what the storage logged. Tests run one after the other in one JVM, so a
 * test picks its own events by the logger and a text only it uses (its table's name).
 */
public final class RecordingLogs implements SLF4JServiceProvider {
    private static final Queue<Event> EVENTS = new ConcurrentLinkedQueue<>();

    private final ILoggerFactory loggers = Recorder::new;
    private final IMarkerFactory markers = new BasicMarkerFactory();
    private final MDCAdapter mdc = new NOPMDCAdapter();

    /** One logged message, formatted. */
    record Event(String logger, Level level, String message) {}

    /** The messages that {@code logger} logged at {@code level} and that contain {@code text}, oldest first. */
    static List<String> messages(Class<?> logger, Level level, String text) {
        return EVENTS.stream()
                .filter(e -> e.logger().equals(logger.getName())
                        && e.level() == level
                        && e.message().contains(text))
                .map(Event::message)
                .toList();
    }

    @Override
    public ILoggerFactory getLoggerFactory() {
        return loggers;
    }

    @Override
    public IMarkerFactory getMarkerFactory() {
        return markers;
    }

    @Override
    public MDCAdapter getMDCAdapter() {
        return mdc;
    }

    @Override
    public String getRequestedApiVersion() {
        return "2.0.99";
    }

    @Override
    public void initialize() {}

    private static final class Recorder extends LegacyAbstractLogger {
        private static final long serialVersionUID = 1L;

        Recorder(String name) {
            this.name = name;
        }

        @Override
        public boolean isTraceEnabled() {
            return false;
        }

        @Override
        public boolean isDebugEnabled() {
            return false;
        }

        @Override
        public boolean isInfoEnabled() {
            return true;
        }

        @Override
        public boolean isWarnEnabled() {
            return true;
        }

        @Override
        public boolean isErrorEnabled() {
            return true;
        }

        @Override
        protected String getFullyQualifiedCallerName() {
            return null;
        }

        @Override
        protected void handleNormalizedLoggingCall(
                Level level, Marker marker, String pattern, Object[] arguments, Throwable throwable) {
            if (level.toInt() >= Level.INFO.toInt()) {
                EVENTS.add(new Event(name, level, MessageFormatter.basicArrayFormat(pattern, arguments)));
            }
        }
    }
}
