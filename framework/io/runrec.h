/* runrec.h — the in-memory record of a run, as written to run.h5 and indexed in SQLite.
 *
 * The run file is always written whole from this record and replaced atomically (runlog.h), so
 * the record is the single place a run's provenance, config, seeds, metrics, samples and evals
 * live while it runs. All strings are owned by the record (dm_runrec_free releases them). */
#ifndef DM_IO_RUNREC_H
#define DM_IO_RUNREC_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* One (step, wall seconds, value) series: /metrics/<name>. */
typedef struct dm_series {
    char *name;            /* "loss", "grad_norm", "lr" */
    size_t n, cap;
    int64_t *step;
    double *wall_s;
    double *value;
} dm_series;

/* One sample set: /samples/<name> = float32 (n, d) or (n, C, H, W), with its settings as attributes. */
typedef struct dm_sample_set {
    char *name;            /* "<sampler>_<nfe>", e.g. "ddpm_1000" */
    char *sampler;
    int64_t nfe;
    char *settings_json;   /* the sampler's resolved options, e.g. {"variance":"beta"} */
    int64_t n, d;
    int32_t shape[3];      /* (C, H, W) of an image set (C * H * W = d), stored (n, C, H, W); 0s: points */
    float *x;
} dm_sample_set;

/* One evaluation value: /eval/<metric> rows, and the index's evals table. */
typedef struct dm_eval {
    char *metric;          /* "swd", "mmd2" */
    char *sampler;
    int64_t nfe;
    char *settings_json;
    int64_t n_samples;
    double value;
} dm_eval;

typedef struct dm_kvstr {
    char *key;
    char *value;
} dm_kvstr;

typedef struct dm_seedrec {
    char *stream;          /* "master", "train.batch", ... */
    uint64_t seed;
} dm_seedrec;

typedef struct dm_runrec {
    /* root attributes, all text here: run_id, version, git_commit, git_dirty, host, cpu, compiler,
     * build_flags, blas, blas_threads, libraries, status, heartbeat, created, finished, spec_path,
     * slurm_job_id, teacher, params_sha256, n_params, wall_s, ...; run.h5 stores the numeric
     * ones as numbers (io/runlog.h) */
    dm_kvstr *attrs;        size_t n_attrs;
    char *config_yaml;      /* /config: the resolved canonical spec */
    char config_hash[65];
    char group_hash[65];
    uint64_t seed;          /* the master seed */
    dm_seedrec *seeds;      size_t n_seeds;   /* /seeds: every derived stream */
    char *data_name;        /* /data attributes */
    int64_t data_n_train, data_n_test, data_dim;
    int64_t data_c, data_h, data_w;  /* an item's shape (C, H, W); (dim, 1, 1) for points; 0s: not recorded */
    char data_sha256[65];
    double data_std;        /* measured standard deviation of the training data (sigma_data) */
    dm_series *series;      size_t n_series;
    dm_sample_set *samples; size_t n_samples;
    dm_eval *evals;         size_t n_evals;
} dm_runrec;

void dm_runrec_init(dm_runrec *r);
void dm_runrec_free(dm_runrec *r);

/* Set (or replace) a root attribute. */
dm_status dm_runrec_set_attr(dm_runrec *r, const char *key, const char *value, char *err);
const char *dm_runrec_attr(const dm_runrec *r, const char *key);  /* NULL if absent */
dm_status dm_runrec_add_seed(dm_runrec *r, const char *stream, uint64_t seed, char *err);
/* The series called name, created if absent. */
dm_status dm_runrec_series(dm_runrec *r, const char *name, dm_series **out, char *err);
dm_status dm_series_push(dm_series *s, int64_t step, double wall_s, double value, char *err);
/* Drop points with step > max_step (on resume, back to the checkpoint's step). */
void dm_series_truncate(dm_series *s, int64_t max_step);
/* Add a sample set (copies x), named <sampler>_<nfe>, or <sampler>_<nfe>-<8 hex of SHA-256 of the
 * settings> when a set of that name with other settings exists; the same sampler, NFE and
 * settings again replace their set. *name_out (if not NULL) points at the name in the record. */
dm_status dm_runrec_add_samples(dm_runrec *r, const char *sampler, int64_t nfe,
                                const char *settings_json, int64_t n, int64_t d, const float *x,
                                const char **name_out, char *err);
/* dm_runrec_add_samples of a set of n images of shape (c, h, w), d = c * h * w. */
dm_status dm_runrec_add_image_samples(dm_runrec *r, const char *sampler, int64_t nfe, const char *settings_json,
                                      int64_t n, const int32_t shape[3], const float *x, const char **name_out,
                                      char *err);
/* Add an eval (replacing one of the same metric, sampler, NFE and settings). */
dm_status dm_runrec_add_eval(dm_runrec *r, const char *metric, const char *sampler, int64_t nfe,
                             const char *settings_json, int64_t n_samples, double value, char *err);

#endif
