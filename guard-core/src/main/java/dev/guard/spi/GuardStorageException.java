package dev.guard.spi;

/**
 * A storage backend failed: it is down, timed out, or answered something it should not have. Carries the backend's
 * name and the operation, never a password or a URI with credentials. {@link dev.guard.Guard} never lets one reach
 * a handler: its failure policy turns it into a {@link dev.guard.Decision}.
 */
public class GuardStorageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The backend's short name, such as {@code redis}. */
    private final String backend;
    /** The operation that failed, such as {@code evaluate}. */
    private final String operation;

    /**
     * Creates the exception.
     *
     * @param backend the backend's short name, such as {@code redis}
     * @param operation the operation that failed, such as {@code evaluate}
     * @param message what happened, without credentials
     * @param cause the underlying failure, or null
     */
    public GuardStorageException(String backend, String operation, String message, Throwable cause) {
        super(backend + " " + operation + " failed: " + message, cause);
        this.backend = backend;
        this.operation = operation;
    }

    /** The backend's short name. */
    public String backend() {
        return backend;
    }

    /** The operation that failed. */
    public String operation() {
        return operation;
    }
}
