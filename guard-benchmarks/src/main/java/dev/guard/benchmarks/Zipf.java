package dev.guard.benchmarks;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Zipf-distributed key indices, drawn ahead of the measurement so that drawing costs nothing inside it. */
final class Zipf {
    private Zipf() {}

    /**
     * {@code samples} indices in {@code [0, keys)}, index {@code i} drawn with probability proportional to {@code
     * 1/(i+1)^exponent}, from a fixed seed.
     */
    static int[] sample(int keys, double exponent, int samples, long seed) {
        double[] cdf = new double[keys];
        double sum = 0;
        for (int i = 0; i < keys; i++) {
            sum += 1.0 / Math.pow(i + 1, exponent);
            cdf[i] = sum;
        }
        SplittableRandom random = new SplittableRandom(seed);
        int[] out = new int[samples];
        for (int s = 0; s < samples; s++) {
            int at = Arrays.binarySearch(cdf, random.nextDouble() * sum);
            out[s] = Math.min(keys - 1, at >= 0 ? at : -at - 1);
        }
        return out;
    }
}
