#include "core/rng.h"

#include <gsl/gsl_randist.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sha256.h"

uint64_t dm_seed_derive(uint64_t master, const char *name)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%" PRIu64 "/%s", master, name);
    unsigned char h[32];
    dm_sha256(buf, (size_t)n, h);
    uint64_t s = 0;
    for (int i = 0; i < 8; i++)
        s = (s << 8) | h[i];
    return s;
}

/* splitmix64 finalizer: a bijective mix, so distinct (seed, i) give distinct 64-bit seeds. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t dm_seed_index(uint64_t seed, uint64_t i)
{
    return mix64(seed + 0x9e3779b97f4a7c15ULL * (i + 1));
}

static dm_status init_type(dm_rng *rng, const gsl_rng_type *type, uint64_t seed, char *err)
{
    rng->r = gsl_rng_alloc(type);
    if (!rng->r)
        return dm_err(err, DM_E_NOMEM, "cannot allocate random stream (%s)", type->name);
    /* GSL's generators take an unsigned long seed and mostly use its low 32 bits: fold the high
     * half in. A zero seed means "the default seed" to GSL, so avoid it. */
    unsigned long s = (unsigned long)((seed ^ (seed >> 32)) & 0xffffffffUL);
    gsl_rng_set(rng->r, s ? s : 0x5eedUL);
    return DM_OK;
}

dm_status dm_rng_init(dm_rng *rng, uint64_t seed, char *err)
{
    return init_type(rng, gsl_rng_mt19937, seed, err);
}

dm_status dm_rng_init_small(dm_rng *rng, uint64_t seed, char *err)
{
    return init_type(rng, gsl_rng_taus2, seed, err);
}

void dm_rng_free(dm_rng *rng)
{
    if (rng && rng->r) {
        gsl_rng_free(rng->r);
        rng->r = NULL;
    }
}

double dm_rng_uniform(dm_rng *rng) { return gsl_rng_uniform(rng->r); }
double dm_rng_normal(dm_rng *rng) { return gsl_ran_gaussian_ziggurat(rng->r, 1.0); }
unsigned long dm_rng_int(dm_rng *rng, unsigned long n) { return gsl_rng_uniform_int(rng->r, n); }

size_t dm_rng_state_size(const dm_rng *rng) { return gsl_rng_size(rng->r); }
void dm_rng_state_get(const dm_rng *rng, void *buf) { memcpy(buf, gsl_rng_state(rng->r), gsl_rng_size(rng->r)); }
void dm_rng_state_set(dm_rng *rng, const void *buf) { memcpy(gsl_rng_state(rng->r), buf, gsl_rng_size(rng->r)); }

dm_status dm_rng_streams_new(uint64_t base, size_t n, dm_rng **out, char *err)
{
    dm_rng *rngs = dm_calloc(n, sizeof *rngs);
    *out = NULL;
    if (!rngs)
        return dm_err(err, DM_E_NOMEM, "out of memory for %zu random streams", n);
    for (size_t i = 0; i < n; i++) {
        dm_status st = dm_rng_init_small(&rngs[i], dm_seed_index(base, i), err);
        if (st) {
            dm_rng_streams_free(rngs, i);
            return st;
        }
    }
    *out = rngs;
    return DM_OK;
}

void dm_rng_streams_free(dm_rng *rngs, size_t n)
{
    for (size_t i = 0; rngs && i < n; i++)
        dm_rng_free(&rngs[i]);
    dm_free(rngs);
}
