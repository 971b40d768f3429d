/* fuzz_override.c — dotted overrides (`difflab run SPEC.yaml KEY=VALUE ...`, sweeps' axes) applied
 * to a valid spec, then validated and checked as a run does (fuzz_check_spec).
 *
 * Input: one override per line (at most 32; a line may hold any bytes but '\n'; a last '\n' ends
 * the last line, it does not start an empty one). When the first
 * line names one of the bases below ("base=cd"), that base is used and the line is not an
 * override; else the base is `minimal`. Corpus: the overrides of the CLI tests and of the
 * experiments' sweeps (tests/fuzz/corpus/override/). */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "train/schema.h"

#define MAX_OVER 32

static const struct base {
    const char *name, *text;
} bases[] = {
    { "minimal", "name: base\n" },
    { "tiny", "name: tiny\ndata: {type: eight_gaussians}\nmodel: {type: mlp, width: 32, depth: 2, nfreq: 8}\n"
              "diffusion: {schedule: {type: ddpm_linear, T: 100}}\nsampler: {type: ddpm, steps: 10}\n"
              "train: {steps: 60, batch: 64, n_data: 500}\n"
              "eval: {n_samples: 200, n_ref: 200, swd_projections: 16, mmd_max: 200}\n"
              "run: {progress: none, threads: 1}\n" },
    { "edm", "name: edm\ndiffusion:\n  schedule: {type: edm, sigma_min: 0.002, sigma_max: 80, rho: 7}\n"
             "  param: {type: edm, sigma_data: 0.5}\n  loss: {type: mse, target: x0, weighting: edm}\n"
             "sampler: {type: heun, steps: 18}\n" },
    { "cd", "name: cd\ndiffusion:\n  schedule: {type: edm, sigma_min: 0.002, sigma_max: 80, rho: 7, time_input: edm}\n"
            "  param: {type: consistency, sigma_data: 0.5}\n"
            "  loss: {type: cd, n: 18, mu: 0.95, teacher_step: heun, distance: l2}\n"
            "distill: {teacher: analytic}\nsampler: {type: cm, steps: 1}\n" },
    { "cfg", "name: cfg\ndata: {type: gmm, weights: [1, 1, 1, 1], means: [[-2.0, 0.0], [0.0, 0.3], [2.0, 0.0], [0.0, -0.3]],\n"
             "  stds: [0.3, 0.3, 0.3, 0.3], classes: [0, 0, 1, 1]}\nmodel: {type: mlp, conditional: true}\n"
             "diffusion: {schedule: {type: ddpm_linear, T: 1000}, param: eps, loss: {type: mse, target: eps}}\n"
             "sampler: {type: ddim, steps: 50, eta: 0.0}\nguidance: {type: cfg, scale: 1.0}\n"
             "train: {steps: 3000, ema_decay: 0.995, label_dropout: 0.1}\n" },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[DM_ERR_SIZE] = "";
    char *text = dm_malloc(size + 1);
    const char *over[MAX_OVER];
    int n = 0;
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (char *p = text; n < MAX_OVER && p < text + size;) {   /* a last '\n' ends the last line */
        char *nl = memchr(p, '\n', (size_t)(text + size - p));
        if (nl)
            *nl = '\0';
        over[n++] = p;
        if (!nl)
            break;
        p = nl + 1;
    }
    if (n == 0)
        over[n++] = text;   /* the empty input: one empty override */
    const struct base *b = &bases[0];
    for (size_t i = 0; i < sizeof bases / sizeof *bases; i++)
        if (strncmp(over[0], "base=", 5) == 0 && strcmp(over[0] + 5, bases[i].name) == 0)
            b = &bases[i];
    const int skip = strncmp(over[0], "base=", 5) == 0;
    dm_spec *spec = NULL;
    dm_status st = dm_spec_load_text(&dm_spec_schema, b->text, b->name, n - skip, over + skip, &spec, err);
    fuzz_note("override: base %s, %d overrides: %s", b->name, n - skip, st ? err : "loaded");
    if (st == DM_OK)
        fuzz_check_spec(spec);
    else if (st != DM_E_INPUT || (strncmp(err, "override '", 10) != 0 && strncmp(err, b->name, strlen(b->name)) != 0))
        fuzz_fail("overrides refused with status %d and a message that names no override: '%s'", (int)st, err);
    dm_spec_free(spec);
    dm_free(text);
    return 0;
}
