// Single-thread FP32 FMA peak: 12 independent dependency chains of vector FMAs, so that the
// FMA latency is hidden and throughput is measured. Best of 5 rounds at 512 and 256 bits.
// Build and run: gcc -O3 -mavx512f -mfma fma.c -o fma && ./fma
// (-O3: at -O2, gcc 12.2 keeps the accumulators in memory and measures store forwarding.)
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#define CHAINS 12
#define ITERS 100000000L
#define ROUNDS 5

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// GFLOP/s of ITERS x CHAINS FMAs (2 flops per lane) on LANES-wide vectors of type VEC.
#define FMA_KERNEL(NAME, TARGET, VEC, LANES, SET1, FMADD, ADD, STOREU)              \
  __attribute__((target(TARGET))) double NAME(long iters) {                         \
    VEC acc[CHAINS], mul = SET1(0.999999f), add = SET1(1e-7f);                      \
    for (int i = 0; i < CHAINS; i++) acc[i] = SET1(1.0f + i);                       \
    double t0 = seconds();                                                          \
    for (long k = 0; k < iters; k++)                                                \
      for (int i = 0; i < CHAINS; i++) acc[i] = FMADD(acc[i], mul, add);            \
    double dt = seconds() - t0;                                                     \
    VEC sum = acc[0];                                                               \
    for (int i = 1; i < CHAINS; i++) sum = ADD(sum, acc[i]);                        \
    float out[LANES];                                                               \
    STOREU(out, sum);                                                               \
    if (out[0] == 12345.f) printf("x"); /* keeps the result alive */                \
    return iters * (double)CHAINS * LANES * 2 / dt / 1e9;                           \
  }

FMA_KERNEL(gflops_avx512, "avx512f", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
           _mm512_storeu_ps)
FMA_KERNEL(gflops_avx2, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps,
           _mm256_storeu_ps)

int main(void) {
  long iters = ITERS;
  double best512 = 0, best256 = 0;
  for (int r = 0; r < ROUNDS; r++) {  // alternate the widths, keep the best of each
    double g = gflops_avx512(iters);
    if (g > best512) best512 = g;
    g = gflops_avx2(iters);
    if (g > best256) best256 = g;
  }
  printf("{\"avx512_fp32_gflops_1thread_best_of_5\":%.1f,\"avx2_fp32_gflops_1thread_best_of_5\":%.1f}\n",
         best512, best256);
  return 0;
}
