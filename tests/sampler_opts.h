/* sampler_opts.h — sampler options for the sampler tests: defaults from a plug-in's option
 * table, and setting its steps or a choice by name. Include after <cmocka.h>. */
#ifndef DM_TESTS_SAMPLER_OPTS_H
#define DM_TESTS_SAMPLER_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/sampler.h"

/* An options struct filled from its plug-in's table of defaults (also checks that they parse). */
static inline void opts_defaults(const dm_sampler_ops *ops, void *opts)
{
    memset(opts, 0, ops->info.opts_size);
    for (const dm_param_desc *p = ops->info.params; p->name; p++) {
        char *dst = (char *)opts + p->offset;
        switch (p->type) {
        case DM_OPT_INT: {
            int64_t v = strtoll(p->def, NULL, 10);
            memcpy(dst, &v, sizeof v);
            break;
        }
        case DM_OPT_REAL: {
            double v = strtod(p->def, NULL);
            memcpy(dst, &v, sizeof v);
            break;
        }
        case DM_OPT_BOOL: {
            bool v = strcmp(p->def, "true") == 0;
            memcpy(dst, &v, sizeof v);
            break;
        }
        case DM_OPT_CHOICE: {
            int v = -1;
            for (int c = 0; p->choices[c]; c++)
                if (strcmp(p->choices[c], p->def) == 0)
                    v = c;
            assert_true(v >= 0);
            memcpy(dst, &v, sizeof v);
            break;
        }
        default:
            fail_msg("unexpected option type of %s", p->name);
        }
    }
}

static inline void set_steps(const dm_sampler_ops *ops, void *opts, int64_t steps)
{
    for (const dm_param_desc *p = ops->info.params; p->name; p++)
        if (strcmp(p->name, "steps") == 0)
            memcpy((char *)opts + p->offset, &steps, sizeof steps);
}

/* Sets a choice option of a sampler by its name (fails the test if there is no such choice). */
static inline void set_choice(const dm_sampler_ops *ops, void *opts, const char *name, const char *value)
{
    for (const dm_param_desc *p = ops->info.params; p->name; p++)
        if (p->type == DM_OPT_CHOICE && strcmp(p->name, name) == 0)
            for (int c = 0; p->choices[c]; c++)
                if (strcmp(p->choices[c], value) == 0) {
                    memcpy((char *)opts + p->offset, &c, sizeof c);
                    return;
                }
    fail_msg("%s: no option %s: %s", ops->info.name, name, value);
}

#endif
