package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.limit.LimitSpec;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.ForwardingStorage;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class TenantScopesTest {
    private final TenantScopes tenants = new TenantScopes(new String[] {"f:a", "set:b"});

    @Test
    void of_aTenant_prefixesEveryScopeAndKeepsThemForTheNextMessage() {
        TenantScopes.Tenant acme = tenants.of("acme");

        assertThat(acme.prefix()).isEqualTo(Subjects.tenantPrefix("acme"));
        assertThat(acme.scopes()).containsExactly(acme.prefix() + "f:a", acme.prefix() + "set:b");
        assertThat(tenants.of(new String("acme"))).isSameAs(acme);
    }

    @Test
    void of_twoTenantsOfOnePair_bothStay() {
        // "AaAa" and "BBBB" have the same hash code, so the same pair of places.
        assertThat("AaAa".hashCode()).isEqualTo("BBBB".hashCode());

        TenantScopes.Tenant first = tenants.of("AaAa");
        TenantScopes.Tenant second = tenants.of("BBBB");

        assertThat(tenants.of("AaAa")).isSameAs(first);
        assertThat(tenants.of("BBBB")).isSameAs(second);
        assertThat(second.prefix()).isEqualTo(Subjects.tenantPrefix("BBBB"));
    }

    @Test
    void of_moreTenantsThanAPairHolds_givesEachItsOwnScopes() {
        List<String> texts = List.of("AaAa", "BBBB", "AaBB", "BBAa");
        assertThat(texts).extracting(String::hashCode).containsOnly("AaAa".hashCode());

        for (int round = 0; round < 3; round++) {
            for (String text : texts) {
                TenantScopes.Tenant tenant = tenants.of(text);

                assertThat(tenant.text()).isEqualTo(text);
                assertThat(tenant.scopes())
                        .containsExactly(Subjects.tenantPrefix(text) + "f:a", Subjects.tenantPrefix(text) + "set:b");
            }
        }
    }

    @Test
    void check_underATenant_passesTheSameScopeStringsMessageAfterMessage() {
        List<String> scopes = new ArrayList<>();
        Guard<String[]> guard = overTenants(scopes)
                .throttle("per-user-minute", KeyBy.USER, 30, Duration.ofMinutes(1))
                .build();

        guard.check(new String[] {"1", "acme"});
        guard.check(new String[] {"2", "globex"});
        guard.check(new String[] {"1", new String("acme")});

        String acme = Subjects.tenantPrefix("acme");
        assertThat(scopes)
                .containsExactly(
                        acme + "f:per-user",
                        acme + "f:per-user-minute",
                        Subjects.tenantPrefix("globex") + "f:per-user",
                        Subjects.tenantPrefix("globex") + "f:per-user-minute",
                        acme + "f:per-user",
                        acme + "f:per-user-minute");
        assertThat(scopes.get(4)).isSameAs(scopes.get(0));
        assertThat(scopes.get(5)).isSameAs(scopes.get(1));
    }

    @Test
    void check_throughViewsMadePerMessage_sharesTheTenantsScopesOfTheHandlerScope_upToTheKeptOnes() {
        List<String> scopes = new ArrayList<>();
        Guard<String[]> guard = overTenants(scopes).build();

        guard.scope("search").check(new String[] {"1", "acme"});
        guard.scope("search").check(new String[] {"1", "acme"});
        for (int i = 0; i < 70; i++) {
            guard.scope("handler-" + i).check(new String[] {"1", "acme"});
        }
        guard.scope("handler-69").check(new String[] {"1", "acme"});

        String search = Subjects.tenantPrefix("acme") + Subjects.handlerPrefix("search") + "f:per-user";
        assertThat(scopes.get(0)).isEqualTo(search);
        assertThat(scopes.get(1)).isSameAs(scopes.get(0));
        // Beyond the handler scopes kept, a view still names its keys right, built for the message.
        String last = Subjects.tenantPrefix("acme") + Subjects.handlerPrefix("handler-69") + "f:per-user";
        assertThat(scopes.subList(scopes.size() - 2, scopes.size())).containsExactly(last, last);
    }

    /** A guard's builder over messages {user, tenant}, a token bucket per user, recording scopes in {@code scopes}. */
    private static Guard.Builder<String[]> overTenants(List<String> scopes) {
        return Guard.<String[]>builder()
                .storage(recordingScopes(scopes))
                .ticker(ManualTicker.create())
                .userId(m -> m[0])
                .tenant(m -> m[1])
                .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofSeconds(1));
    }

    /** A reference storage that records the scope of every step it decides, in order. */
    private static ForwardingStorage recordingScopes(List<String> scopes) {
        return new ForwardingStorage(ReferenceStorage.create()) {
            @Override
            public boolean evaluateInPlace(BatchBuffer buffer, long nowMicros) {
                for (int i = 0; i < buffer.size(); i++) {
                    scopes.add(buffer.scope(i));
                }
                return super.evaluateInPlace(buffer, nowMicros);
            }

            @Override
            public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
                scopes.add(key.scope());
                return super.acquire(key, spec, permits, nowMicros);
            }
        };
    }
}
