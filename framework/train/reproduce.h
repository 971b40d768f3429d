/* reproduce.h — `difflab reproduce RUN`: run a finished run again from its recorded spec and seed
 * in a scratch results folder, and compare what it records.
 *
 * Compared, bit for bit: every metric series point (step and value), then params_sha256 (the
 * final parameters and EMA), then every eval value (metric, sampler, NFE, settings). The first
 * difference — the metric series point of the earliest step, else the parameters, else the first
 * eval — is printed as MISMATCH with the quantity and step; otherwise MATCH. Warnings name what
 * may legitimately change the bits: another git commit, a dirty tree (then or now), another CPU
 * model, other build flags or another BLAS build. The scratch folder is removed afterwards. */
#ifndef DM_TRAIN_REPRODUCE_H
#define DM_TRAIN_REPRODUCE_H

#include "train/run.h"

/* DM_OK and "MATCH" on cfg->out when everything agrees; DM_E_STATE ("MISMATCH: ...") when not;
 * other statuses when the run cannot be reproduced (unfinished, missing, a distilled run whose
 * teacher is a run: not supported). */
dm_status dm_run_reproduce(const dm_run_cfg *cfg, const char *pat, char *err);

#endif
