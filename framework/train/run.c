#include "train/run.h"

#include <cblas.h>
#include <errno.h>
#include <signal.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/fault.h"
#include "core/path.h"
#include "core/progress.h"
#include "diffusion/samplers.h"
#include "eval/evaluate.h"
#include "io/atomic.h"
#include "io/index.h"
#include "io/runlog.h"
#include "io/runstore.h"
#include "train/features.h"
#include "train/guide.h"
#include "train/provenance.h"
#include "train/record.h"
#include "train/runref.h"
#include "train/schema.h"
#include "train/teacher.h"
#include "train/trainer.h"

#define PATH_SIZE DM_PATH_SIZE

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void set_threads(const dm_run_opts *ro)
{
    int n = (int)ro->threads;
    if (n <= 0)
        n = omp_get_max_threads();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

/* The state of one run while it executes. */
typedef struct run_state {
    const dm_run_cfg *cfg;
    dm_spec *spec;
    dm_runrec rec;
    dm_trainer tr;
    int tr_ready;
    int finished;           /* the record says finished: a later failure (the index) leaves it so */
    char teacher_id[256];   /* cd: the teacher run, checked before anything is written */
    dm_teacher teacher;
    char clf_id[256];       /* classifier guidance: the classifier run, checked likewise */
    dm_guide guide;
    char feat_id[256];      /* eval.features: the feature network's run, checked likewise */
    dm_features feat;
    dm_index *ix;
    char run_id[256], dir[PATH_SIZE], h5[PATH_SIZE], ckpt[PATH_SIZE], index_path[PATH_SIZE];
    double t0;              /* dm_now() at the start, less the wall time of the run before a resume */
    double sum_loss, sum_gn;  /* the open logging interval (checkpointed) */
    int64_t n_int;
    double last_beat;       /* dm_now() of the last heartbeat written */
    char err_msg[DM_ERR_SIZE];  /* the message of a failure, recorded in the run's error attribute */
} run_state;

/* SIGTERM, SIGINT, SIGUSR1: finish the step, checkpoint, mark the run interrupted, exit non-zero.
 * Slurm sends SIGTERM at a job's time limit and, when asked (sbatch --signal=B:USR1@SECONDS, or
 * SBATCH_SIGNAL), SIGUSR1 that long before it: either way the run stops at a checkpoint of the
 * step it was at and `difflab resume` (or the sweep again) continues from there. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

static const char *signal_name(int sig)
{
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGUSR1 ? "SIGUSR1" : "a signal";
}

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;   /* the handler only sets a flag: no system call need see EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

static dm_status save_record(run_state *rs, const char *status, char *err)
{
    char now[32];
    dm_time_iso(now);
    dm_status st;
    if ((st = dm_runrec_set_attr(&rs->rec, "status", status, err)) ||
        (st = dm_runrec_set_attr(&rs->rec, "heartbeat", now, err)))
        return st;
    char wall[32];
    snprintf(wall, sizeof wall, "%.3f", dm_now() - rs->t0);
    if ((st = dm_runrec_set_attr(&rs->rec, "wall_s", wall, err)))
        return st;
    return dm_runlog_write(rs->h5, &rs->rec, err);
}

/* The trainer's state plus the open logging interval and the wall time so far, so that a resumed
 * run continues the metric series exactly. */
static dm_status save_checkpoint(run_state *rs, char *err)
{
    dm_ckpt_entry entries[DM_TRAIN_CKPT_ENTRIES + 4];
    dm_ckpt c = { .entries = entries };
    size_t rng_bytes = 0;
    for (int s = 0; s < DM_TRAIN_N_STREAMS; s++)
        rng_bytes += dm_rng_state_size(&rs->tr.streams[s]);
    void *buf = dm_malloc(rng_bytes);
    if (!buf)
        return dm_err(err, DM_E_NOMEM, "out of memory for a checkpoint");
    dm_status st = dm_trainer_ckpt_entries(&rs->tr, &c, buf, err);
    double wall = dm_now() - rs->t0;
    c.entries[c.n++] = (dm_ckpt_entry){ (char *)"log/sum_loss", DM_CKPT_F64, 1, &rs->sum_loss };
    c.entries[c.n++] = (dm_ckpt_entry){ (char *)"log/sum_grad_norm", DM_CKPT_F64, 1, &rs->sum_gn };
    c.entries[c.n++] = (dm_ckpt_entry){ (char *)"log/n", DM_CKPT_I64, 1, &rs->n_int };
    c.entries[c.n++] = (dm_ckpt_entry){ (char *)"log/wall_s", DM_CKPT_F64, 1, &wall };
    if (!st)
        st = dm_ckpt_write(rs->ckpt, &c, err);
    dm_free(buf);
    return st;
}

/* Slurm (slurm.h): a compute node never writes the SQLite index, which must not be shared across
 * hosts; the submitting host brings it up to date from the run files (`difflab sweep status`,
 * `difflab reindex`). Off under Slurm (SLURM_JOB_ID set) or with DIFFLAB_NO_INDEX=1;
 * DIFFLAB_NO_INDEX=0 forces index writes. With it off, rs->ix stays NULL. */
static int index_disabled(void)
{
    const char *v = getenv("DIFFLAB_NO_INDEX");
    if (v && *v)
        return strcmp(v, "0") != 0;
    return getenv("SLURM_JOB_ID") != NULL;
}

static dm_status index_run(run_state *rs, char *err)
{
    if (!rs->ix)   /* index writes off (index_disabled) */
        return DM_OK;
    /* The index may be read from anywhere: record the folder's absolute path. */
    char abs[PATH_SIZE];
    const char *path = realpath(rs->dir, abs) ? abs : rs->dir;
    return dm_index_upsert_run(rs->ix, &rs->rec, rs->spec, path, err);
}

/* Looked up on every push: creating a series may move the others. */
static dm_status push_metric(run_state *rs, const char *name, int64_t step, double wall, double v, char *err)
{
    dm_series *s;
    dm_status st = dm_runrec_series(&rs->rec, name, &s, err);
    return st ? st : dm_series_push(s, step, wall, v, err);
}

/* The record first, then the checkpoint: a kill between the two leaves series points past the
 * checkpoint, which a resume drops (truncate_series) and recomputes. */
static dm_status save_state(run_state *rs, char *err)
{
    dm_status st = dm_trainer_params_finite(&rs->tr, err);
    if (!st)
        st = save_record(rs, "running", err);
    if (!st)
        st = save_checkpoint(rs, err);
    if (!st)
        rs->last_beat = dm_now();
    return st;
}

/* Train, checkpointing every run.ckpt_every steps and logging interval means; a stop signal ends
 * the loop after the current step with a checkpoint (DM_E_INTERRUPTED). */
static dm_status train_loop(run_state *rs, char *err)
{
    dm_trainer *tr = &rs->tr;
    const dm_run_opts *ro = tr->ropt;
    const int64_t total = tr->topt->steps;
    dm_status st = DM_OK;
    dm_progress prog;
    dm_progress_init(&prog, (dm_progress_mode)ro->progress, stderr, rs->run_id, tr->step, total, ro->log_every);
    double shown = rs->n_int ? rs->sum_loss / (double)rs->n_int : 0.0; /* the loss the record has */
    while (tr->step < total && !st) {
        double loss, gn;
        if ((st = dm_trainer_step(tr, &loss, &gn, err)))
            break;
        rs->sum_loss += loss;
        rs->sum_gn += gn;
        rs->n_int++;
        if (tr->step % ro->log_every == 0 || tr->step == total) {
            const double wall = dm_now() - rs->t0;
            if ((st = dm_trainer_params_finite(tr, err)) ||
                (st = push_metric(rs, "loss", tr->step, wall, rs->sum_loss / (double)rs->n_int, err)) ||
                (st = push_metric(rs, "grad_norm", tr->step, wall, rs->sum_gn / (double)rs->n_int, err)))
                break;
            shown = rs->sum_loss / (double)rs->n_int;
            rs->sum_loss = rs->sum_gn = 0;
            rs->n_int = 0;
            /* A heartbeat at most every 30 s between checkpoints: the record says the run lives. */
            if (dm_now() - rs->last_beat > 30.0 && (st = save_record(rs, "running", err)) == DM_OK)
                rs->last_beat = dm_now();
        }
        /* The loss shown is the interval mean the record stores (the current interval's until
         * the first log step). */
        dm_progress_update(&prog, tr->step, rs->n_int ? rs->sum_loss / (double)rs->n_int : shown);
        if (stop_signal) {
            if (!(st = save_state(rs, err)))
                st = dm_err(err, DM_E_INTERRUPTED, "run %s interrupted by %s (signal %d) at step %lld; `difflab resume "
                            "%s` continues it", rs->run_id, signal_name(stop_signal), (int)stop_signal,
                            (long long)tr->step, rs->run_id);
            break;
        }
        if (tr->step % ro->ckpt_every == 0 && tr->step < total)
            st = save_state(rs, err);
    }
    dm_progress_done(&prog);
    if (!st)
        st = save_state(rs, err);
    return st;
}

static void print_summary(const run_state *rs, FILE *out)
{
    const dm_runrec *r = &rs->rec;
    const char *wall = dm_runrec_attr(r, "wall_s");
    fprintf(out, "run %s %s in %s s\n", rs->run_id, dm_runrec_attr(r, "status"), wall ? wall : "?");
    fprintf(out, "  written to %s\n", rs->h5);
    fprintf(out, "  summary:");
    for (size_t i = 0; i < r->n_series; i++)
        if (strcmp(r->series[i].name, "loss") == 0 && r->series[i].n)
            fprintf(out, " loss %.4f (step %lld) |", r->series[i].value[r->series[i].n - 1],
                    (long long)r->series[i].step[r->series[i].n - 1]);
    /* One group per sampler, in order of first appearance (a record read back from run.h5
     * lists its evals by metric). */
    for (size_t i = 0; i < r->n_evals; i++) {
        const dm_eval *e = &r->evals[i];
        size_t first = 0;
        while (first < i && !(strcmp(r->evals[first].sampler, e->sampler) == 0 && r->evals[first].nfe == e->nfe))
            first++;
        if (first < i)
            continue;
        fprintf(out, "%s %s nfe %lld:", i ? " |" : "", e->sampler, (long long)e->nfe);
        for (size_t j = i; j < r->n_evals; j++)
            if (strcmp(r->evals[j].sampler, e->sampler) == 0 && r->evals[j].nfe == e->nfe)
                fprintf(out, " %s %.4g", r->evals[j].metric, r->evals[j].value);
    }
    fprintf(out, "\n");
    if (rs->tr.shape[1] * rs->tr.shape[2] > 1 && !rs->tr.classifier && !rs->tr.features)
        fprintf(out, "  note: pixel-space metrics only; fd, kid, precision and recall need a feature network "
                "(eval.features: a finished cnn run of diffusion.loss {type: xent, clean: true})\n");
}

/* CD: load the checked teacher run and hand its denoiser to the trainer. */
static dm_status attach_teacher(run_state *rs, char *err)
{
    dm_status st;
    if (rs->teacher_id[0]) {
        if ((st = dm_teacher_load(rs->cfg->results, rs->teacher_id, (size_t)rs->tr.topt->batch, &rs->teacher, err)) ||
            (st = dm_trainer_set_teacher(&rs->tr, &rs->teacher.den, rs->teacher.tr.analytic ? NULL : &rs->teacher.tr.net,
                                         rs->teacher.tr.ema, err)) ||
            (st = dm_runrec_set_attr(&rs->rec, "teacher", rs->teacher_id, err)))
            return st;
    } else if (rs->tr.analytic_teacher && (st = dm_runrec_set_attr(&rs->rec, "teacher", "analytic", err))) {
        return st;
    }
    /* Classifier guidance: the checked classifier run, or the mixture's exact classifier. */
    if (rs->clf_id[0] && (st = dm_guide_attach(rs->cfg->results, rs->clf_id, &rs->tr, &rs->guide, err)))
        return st;
    if (rs->tr.guide_clf_id[0] && (st = dm_runrec_set_attr(&rs->rec, "classifier", rs->tr.guide_clf_id, err)))
        return st;
    /* The image metrics' feature network. */
    if (rs->feat_id[0] && ((st = dm_features_attach(rs->cfg->results, rs->feat_id, &rs->tr, &rs->feat, err)) ||
                           (st = dm_runrec_set_attr(&rs->rec, "features", rs->feat_id, err))))
        return st;
    return DM_OK;
}

/* Train (or continue training), sample, evaluate and finish: what a fresh and a resumed run share. */
static dm_status run_body(run_state *rs, char *err)
{
    char now[32];
    /* An analytic model has nothing to train: the run samples and evaluates the exact denoiser. */
    dm_status st = dm_trainer_trains(&rs->tr) ? train_loop(rs, err) : DM_OK;
    if (!st && stop_signal)
        st = dm_err(err, DM_E_INTERRUPTED, "run %s interrupted by %s (signal %d) after training; `difflab resume "
                    "%s` evaluates it", rs->run_id, signal_name(stop_signal), (int)stop_signal, rs->run_id);
    if (st == DM_E_NUMERIC || st == DM_E_INTERRUPTED) {
        char msg[DM_ERR_SIZE];
        snprintf(msg, sizeof msg, "%s", err);
        dm_runrec_set_attr(&rs->rec, "error", msg, NULL);
        if (save_record(rs, st == DM_E_NUMERIC ? "diverged" : "interrupted", NULL) == DM_OK)
            index_run(rs, NULL);
        return st;
    }
    if (st)
        return st;

    dm_eval_result res;
    int64_t nfe;
    /* A classifier run is evaluated by its accuracy on noisy reference points; other runs sample. */
    if (rs->tr.classifier ? (st = dm_classifier_record(&rs->tr, &rs->rec, err))
                          : ((st = dm_sample_record(&rs->tr, rs->tr.sampler, rs->tr.sampler_opts, &rs->rec, 1, rs->dir,
                                                    &res, &nfe, NULL, err)) ||
                             (st = dm_nll_record(&rs->tr, &rs->rec, err)) ||
                             (st = dm_posterior_record(&rs->tr, &rs->rec, rs->dir, err)) ||
                             (st = dm_model_err_record(&rs->tr, &rs->rec, err)))) {
        if (st == DM_E_NUMERIC) {   /* finite weights, non-finite samples: the model diverged all the same */
            char msg[DM_ERR_SIZE];
            snprintf(msg, sizeof msg, "%s (sampling after step %lld)", err, (long long)rs->tr.step);
            dm_runrec_set_attr(&rs->rec, "error", msg, NULL);
            if (save_record(rs, "diverged", NULL) == DM_OK)
                index_run(rs, NULL);
        }
        return st;
    }
    if (dm_trainer_trains(&rs->tr)) {
        char sha[65];
        dm_trainer_params_sha256(&rs->tr, sha);
        if ((st = dm_runrec_set_attr(&rs->rec, "params_sha256", sha, err)))
            return st;
    }
    dm_time_iso(now);
    if ((st = dm_runrec_set_attr(&rs->rec, "finished", now, err)))
        return st;
    dm_runrec_set_attr(&rs->rec, "error", "", NULL);
    if ((st = save_record(rs, "finished", err)))
        return st;
    rs->finished = 1;
    /* A kill here leaves the index saying running: a later `run` or `resume` repairs the row. */
    dm_fault_point("finish", "before_index");
    if ((st = index_run(rs, err))) {
        char msg[DM_ERR_SIZE];
        snprintf(msg, sizeof msg, "%s", err);
        return dm_err(err, st, "%s; run %s finished and is recorded in %s: `difflab reindex` adds it to the "
                      "index", msg, rs->run_id, rs->h5);
    }
    print_summary(rs, rs->cfg->out);
    return DM_OK;
}

static dm_status execute(run_state *rs, char *err)
{
    dm_status st;
    char now[32];
    rs->t0 = rs->last_beat = dm_now();
    dm_time_iso(now);
    if ((st = dm_runrec_set_attr(&rs->rec, "run_id", rs->run_id, err)) ||
        (st = dm_runrec_set_attr(&rs->rec, "name", ((const dm_root_opts *)dm_spec_opts(rs->spec, ""))->name, err)) ||
        (st = dm_runrec_set_attr(&rs->rec, "created", now, err)) ||
        (st = dm_provenance_fill(&rs->rec, err)))
        return st;
    if ((st = dm_trainer_init(&rs->tr, rs->spec, &rs->rec, err)))
        return st;
    rs->tr.run_id = rs->run_id;
    rs->tr_ready = 1;
    if ((st = attach_teacher(rs, err)))
        return st;
    char np[32];
    snprintf(np, sizeof np, "%zu", rs->tr.net.n_params);
    if ((st = dm_runrec_set_attr(&rs->rec, "n_params", np, err)))
        return st;
    if ((st = save_record(rs, "running", err)) || (st = index_run(rs, err)))
        return st;
    return run_body(rs, err);
}

/* Drop series points past the checkpoint's step (written before a kill that came ahead of the
 * checkpoint): the resumed run recomputes them. */
static void truncate_series(dm_runrec *r, int64_t step)
{
    for (size_t i = 0; i < r->n_series; i++) {
        dm_series *s = &r->series[i];
        while (s->n && s->step[s->n - 1] > step)
            s->n--;
    }
}

/* Continue the run in rs (run_id, dir, h5, ckpt, index_path set; its lock held) from its last
 * checkpoint; a run without one (killed before the first) starts over. */
static dm_status resume_run(run_state *rs, char *err)
{
    dm_status st;
    dm_ckpt c = { 0 };
    /* Temporary files of writes that a killed life did not finish (the files they were to replace
     * are intact); only those of processes that no longer exist. */
    if ((st = dm_atomic_clean_stale(rs->dir, stderr, err)) || (st = dm_runstore_read_file(NULL, rs->h5, &rs->rec, err)))
        return st;
    char origin[PATH_SIZE + 16];
    snprintf(origin, sizeof origin, "%s/config", rs->h5);
    if ((st = dm_spec_load_text(&dm_spec_schema, rs->rec.config_yaml, origin, 0, NULL, &rs->spec, err)) ||
        (st = dm_trainer_check(rs->spec, err)))
        return st;
    const dm_loss_ops *loss = (const dm_loss_ops *)dm_spec_plugin(rs->spec, "diffusion.loss");
    const dm_distill_opts *dist = dm_spec_opts(rs->spec, "distill");
    if (loss->consistency == DM_CM_KIND_CD && strcmp(dist->teacher, "analytic") != 0) {
        const char *t = dm_runrec_attr(&rs->rec, "teacher");
        snprintf(rs->teacher_id, sizeof rs->teacher_id, "%s", t ? t : "");
    }
    if (dm_guide_needs_run(rs->spec)) {
        const char *c = dm_runrec_attr(&rs->rec, "classifier");
        snprintf(rs->clf_id, sizeof rs->clf_id, "%s", c ? c : "");
    }
    if (dm_features_needed(rs->spec)) { /* as recorded; a run stopped before recording it resolves it now */
        const char *f = dm_runrec_attr(&rs->rec, "features");
        snprintf(rs->feat_id, sizeof rs->feat_id, "%s", f ? f : "");
        if (!f && (st = dm_features_check(rs->cfg->results, rs->spec, rs->feat_id, sizeof rs->feat_id, err)))
            return st;
    }
    set_threads(dm_spec_opts(rs->spec, "run"));
    if ((st = dm_trainer_init(&rs->tr, rs->spec, NULL, err)))
        return st;
    rs->tr.run_id = rs->run_id;
    rs->tr_ready = 1;
    if ((st = attach_teacher(rs, err)))
        return st;
    double wall = 0;
    if (dm_trainer_trains(&rs->tr) && exists(rs->ckpt)) {
        if ((st = dm_runstore_read_ckpt(rs->ckpt, &c, err)) || (st = dm_trainer_restore(&rs->tr, &c, err)))
            goto out;
        const dm_ckpt_entry *a = dm_ckpt_find(&c, "log/sum_loss"), *b = dm_ckpt_find(&c, "log/sum_grad_norm"),
                            *n = dm_ckpt_find(&c, "log/n"), *w = dm_ckpt_find(&c, "log/wall_s");
        if (!a || !b || !n || !w || a->type != DM_CKPT_F64 || b->type != DM_CKPT_F64 || n->type != DM_CKPT_I64 ||
            w->type != DM_CKPT_F64) {
            st = dm_err(err, DM_E_IO, "%s: the checkpoint lacks the logging state (log/*)", rs->ckpt);
            goto out;
        }
        rs->sum_loss = *(const double *)a->data;
        rs->sum_gn = *(const double *)b->data;
        rs->n_int = *(const int64_t *)n->data;
        wall = *(const double *)w->data;
    } else {
        /* Nothing saved yet: the record's series start over with the run. */
        for (size_t i = 0; i < rs->rec.n_series; i++)
            rs->rec.series[i].n = 0;
    }
    truncate_series(&rs->rec, rs->tr.step);
    rs->t0 = dm_now() - wall;
    rs->last_beat = dm_now();
    fprintf(stderr, "run %s: resuming at step %lld of %lld\n", rs->run_id, (long long)rs->tr.step,
            (long long)rs->tr.topt->steps);
    if ((st = save_record(rs, "running", err)) || (st = index_run(rs, err)))
        goto out;
    st = run_body(rs, err);
out:
    dm_ckpt_free(&c);
    return st;
}

/* A finished run (rs->rec read from rs->h5) whose index row says otherwise, or is missing: a kill
 * between run.h5's "finished" and the index update (run_body). Its rows are rewritten from run.h5,
 * with a note. No index file (or one that cannot be opened) is left alone: other commands say
 * what is wrong with it. A failure here is a warning, not an error: run.h5 is the record, the run
 * is finished all the same, and `difflab reindex` rebuilds the index. */
static void repair_index_row(run_state *rs)
{
    char was[32] = "", err[DM_ERR_SIZE] = "";
    dm_index *ix = NULL;
    dm_spec *spec = NULL;
    if (index_disabled() || dm_index_open(rs->index_path, 1, &ix, err) != DM_OK)
        return;
    dm_status st = dm_index_run_status(ix, rs->run_id, was, sizeof was, err);
    dm_index_close(ix);
    ix = NULL;
    if (!st && strcmp(was, "finished") == 0)
        return;
    char abs[PATH_SIZE];
    const char *path = realpath(rs->dir, abs) ? abs : rs->dir;
    st = dm_index_open(rs->index_path, 0, &ix, err);
    if (!st)
        st = dm_runstore_spec(rs->h5, &rs->rec, &dm_spec_schema, 0, NULL, &spec, err);
    if (!st)
        st = dm_index_upsert_run(ix, &rs->rec, spec, path, err);
    if (st)
        fprintf(stderr, "warning: run %s is finished but the index says '%s', and repairing it failed: %s; "
                "`difflab reindex` rebuilds the index from the run files\n", rs->run_id, was[0] ? was : "nothing", err);
    else
        fprintf(stderr, "run %s: the index said '%s'; its rows are rewritten from %s (finished)\n", rs->run_id,
                was[0] ? was : "nothing", rs->h5);
    dm_spec_free(spec);
    dm_index_close(ix);
}

/* A run that stopped on an error other than divergence or a signal (recorded by run_body): mark it
 * failed with its message, keeping err. A finished record stays finished: only the index missed it. */
static void record_failure(run_state *rs, dm_status st)
{
    if (!st || st == DM_E_NUMERIC || st == DM_E_INTERRUPTED || !rs->tr_ready || rs->finished)
        return;
    dm_runrec_set_attr(&rs->rec, "error", rs->err_msg, NULL);
    if (save_record(rs, "failed", NULL) == DM_OK)
        index_run(rs, NULL);
}

/* The index a continued run writes to (none under Slurm or DIFFLAB_NO_INDEX, see index_disabled). */
static dm_status open_run_index(run_state *rs, char *err)
{
    return index_disabled() ? DM_OK : dm_index_open(rs->index_path, 0, &rs->ix, err);
}

static void run_state_free(run_state *rs, int lock_fd)
{
    if (lock_fd >= 0)
        close(lock_fd);
    dm_teacher_free(&rs->teacher);
    dm_guide_free(&rs->guide);
    dm_features_free(&rs->feat);
    if (rs->tr_ready)
        dm_trainer_free(&rs->tr);
    dm_index_close(rs->ix);
    dm_runrec_free(&rs->rec);
    dm_spec_free(rs->spec);
}

dm_status dm_run_spec_file(const dm_run_cfg *cfg, const char *path, int n_over,
                           const char *const *overrides, char *err)
{
    run_state rs = { .cfg = cfg };
    char hash[65], base_id[200], status[32], why[DM_ERR_SIZE];
    int lock_fd = -1;
    dm_runrec_init(&rs.rec);
    dm_status st = dm_spec_load_file(&dm_spec_schema, path, n_over, overrides, &rs.spec, err);
    if (st)
        goto out;
    if ((st = dm_trainer_check(rs.spec, err)))
        goto out;
    if ((st = dm_run_id(rs.spec, base_id, sizeof base_id, hash, err)))
        goto out;
    /* A distillation teacher must exist, be finished and fit: checked before anything is written. */
    const dm_distill_opts *dist = dm_spec_opts(rs.spec, "distill");
    const dm_loss_ops *loss = (const dm_loss_ops *)dm_spec_plugin(rs.spec, "diffusion.loss");
    if (loss->consistency == DM_CM_KIND_CD && strcmp(dist->teacher, "analytic") != 0 &&
        (st = dm_teacher_check(cfg->results, rs.spec, rs.teacher_id, sizeof rs.teacher_id, err)))
        goto out;
    /* So must the classifier of classifier guidance. */
    if (dm_guide_needs_run(rs.spec) && (st = dm_guide_check(cfg->results, rs.spec, rs.clf_id, sizeof rs.clf_id, err)))
        goto out;
    if (dm_features_needed(rs.spec) &&
        (st = dm_features_check(cfg->results, rs.spec, rs.feat_id, sizeof rs.feat_id, err)))
        goto out;

    /* One process per run: wait for another that holds it, then look at what it left. */
    if ((st = dm_mkdir_p(cfg->results, err)))
        goto out;
    if (!cfg->new_repeat && (lock_fd = dm_runstore_lock(cfg->results, base_id, stderr, err)) < 0) {
        st = DM_E_IO;
        goto out;
    }

    /* Same inputs already finished: a no-op that shows the run, unless --new. */
    snprintf(rs.run_id, sizeof rs.run_id, "%s", base_id);
    if ((st = dm_path_fmt(rs.dir, sizeof rs.dir, err, "%s/runs/%s", cfg->results, rs.run_id)) ||
        (st = dm_path_fmt(rs.h5, sizeof rs.h5, err, "%s/run.h5", rs.dir)))
        goto out;
    dm_runstore_status(rs.h5, status, sizeof status, why);
    if (cfg->new_repeat) {
        for (int r = 2; exists(rs.dir); r++) {
            snprintf(rs.run_id, sizeof rs.run_id, "%s-r%d", base_id, r);
            if ((st = dm_path_fmt(rs.dir, sizeof rs.dir, err, "%s/runs/%s", cfg->results, rs.run_id)))
                goto out;
        }
        if ((st = dm_path_fmt(rs.h5, sizeof rs.h5, err, "%s/run.h5", rs.dir)))
            goto out;
    } else if (strcmp(status, "finished") == 0) {
        if ((st = dm_runstore_read_file(NULL, rs.h5, &rs.rec, err)) ||
            (st = dm_path_fmt(rs.index_path, sizeof rs.index_path, err, "%s/index.sqlite", cfg->results)))
            goto out;
        repair_index_row(&rs);
        fprintf(cfg->out, "already finished (same config and seed; --new makes a fresh repeat)\n");
        print_summary(&rs, cfg->out);
        goto out;
    } else if (strcmp(status, "unreadable") == 0) {
        /* A corrupt or truncated record is evidence: never overwrite it silently. */
        st = dm_err(err, DM_E_IO, "%s is unreadable: %s; move the folder %s away to run it again, or make a fresh "
                    "repeat with --new", rs.h5, why, rs.dir);
        goto out;
    } else if (strcmp(status, "interrupted") == 0 || strcmp(status, "running") == 0) {
        /* Interrupted, or died (its lock is ours, so no process runs it): continue it. */
        if ((st = dm_path_fmt(rs.ckpt, sizeof rs.ckpt, err, "%s/checkpoint.h5", rs.dir)) ||
            (st = dm_path_fmt(rs.index_path, sizeof rs.index_path, err, "%s/index.sqlite", cfg->results)) ||
            (st = open_run_index(&rs, err)))
            goto out;
        dm_spec_free(rs.spec);
        rs.spec = NULL;
        install_handlers();
        st = resume_run(&rs, err);
        goto fail_record;
    } else if (status[0]) {
        fprintf(stderr, "note: run %s exists with status '%s'; starting it over\n", rs.run_id, status);
    }
    if ((st = dm_path_fmt(rs.ckpt, sizeof rs.ckpt, err, "%s/checkpoint.h5", rs.dir)) ||
        (st = dm_path_fmt(rs.index_path, sizeof rs.index_path, err, "%s/index.sqlite", cfg->results)))
        goto out;

    /* Everything checkable is checked: now write. The index first, so a broken index is
     * reported before a run folder appears. */
    if ((st = dm_mkdir_p(cfg->results, err)))
        goto out;
    if (!index_disabled() && (st = dm_index_open(rs.index_path, 0, &rs.ix, err)))
        goto out;
    if ((st = dm_mkdir_p(rs.dir, err)))
        goto out;
    if ((st = dm_runrec_set_attr(&rs.rec, "spec_path", path, err)))
        goto out;
    char *yaml = NULL;
    if ((st = dm_spec_canonical(rs.spec, 0, &yaml, err)))
        goto out;
    rs.rec.config_yaml = yaml;
    memcpy(rs.rec.config_hash, hash, 65);
    memcpy(rs.rec.group_hash, hash, 65);
    set_threads(dm_spec_opts(rs.spec, "run"));
    fprintf(stderr, "run %s: %s\n", rs.run_id, rs.dir);
    install_handlers();
    st = execute(&rs, err);
fail_record:
    if (st) {
        snprintf(rs.err_msg, sizeof rs.err_msg, "%s", err);
        record_failure(&rs, st);
    }
out:
    run_state_free(&rs, lock_fd);
    return st;
}

dm_status dm_run_resume(const dm_run_cfg *cfg, const char *pat, char *err)
{
    run_state rs = { .cfg = cfg };
    char status[32], why[DM_ERR_SIZE];
    int lock_fd = -1;
    dm_runrec_init(&rs.rec);
    dm_status st = dm_runstore_find(cfg->results, pat, rs.dir, sizeof rs.dir, rs.run_id, sizeof rs.run_id, err);
    if (st)
        goto out;
    if (dm_runstore_is_live(cfg->results, rs.run_id)) {
        st = dm_err(err, DM_E_STATE, "run %s is running in another process", rs.run_id);
        goto out;
    }
    if ((lock_fd = dm_runstore_lock(cfg->results, rs.run_id, stderr, err)) < 0) {
        st = DM_E_IO;
        goto out;
    }
    if ((st = dm_path_fmt(rs.h5, sizeof rs.h5, err, "%s/run.h5", rs.dir)) ||
        (st = dm_path_fmt(rs.ckpt, sizeof rs.ckpt, err, "%s/checkpoint.h5", rs.dir)) ||
        (st = dm_path_fmt(rs.index_path, sizeof rs.index_path, err, "%s/index.sqlite", cfg->results)))
        goto out;
    dm_runstore_status(rs.h5, status, sizeof status, why);
    if (strcmp(status, "finished") == 0) {
        if ((st = dm_runstore_read_file(NULL, rs.h5, &rs.rec, err)))
            goto out;
        repair_index_row(&rs);
        fprintf(cfg->out, "run %s is finished: nothing to resume\n", rs.run_id);
        goto out;
    }
    if (strcmp(status, "unreadable") == 0) {
        st = dm_err(err, DM_E_IO, "run %s cannot resume: %s", rs.run_id, why);
        goto out;
    }
    if (strcmp(status, "interrupted") != 0 && strcmp(status, "running") != 0) {
        st = dm_err(err, DM_E_STATE, "run %s is %s: only interrupted or dead runs resume (`difflab run SPEC` starts a "
                    "failed or diverged one over)", rs.run_id, status[0] ? status : "without a readable record");
        goto out;
    }
    if ((st = open_run_index(&rs, err)))
        goto out;
    install_handlers();
    st = resume_run(&rs, err);
    if (st) {
        snprintf(rs.err_msg, sizeof rs.err_msg, "%s", err);
        record_failure(&rs, st);
    }
out:
    run_state_free(&rs, lock_fd);
    return st;
}
