/* slurm.h — a sweep's unfinished lines as one Slurm job array.
 *
 * `difflab sweep NAME --launcher slurm [--partition P] [--time T] [--cpus C] [--max-parallel K]`
 * writes results/sweeps/<name>/slurm-<UTC time>.sbatch, an `sbatch --array` script whose task i
 * runs manifest line i (`difflab --results <abs> sweep run <name> $SLURM_ARRAY_TASK_ID
 * run.threads=C`), submits it with `sbatch --parsable` and prints the job id. Only the lines
 * dm_sweep_unfinished returns are in the array, so launching again submits what is left; with
 * none left nothing is submitted. Task logs: results/sweeps/<name>/slurm/<job>_<line>.out.
 *
 * Compute nodes write only their run folders: the script exports DIFFLAB_NO_INDEX=1 (and a run
 * under Slurm skips the index anyway, run.c), and each run records SLURM_JOB_ID,
 * SLURM_ARRAY_JOB_ID and SLURM_ARRAY_TASK_ID in run.h5 (provenance.c). The index, which SQLite
 * must not share across hosts, is brought up to date on the submitting host by `difflab sweep
 * status NAME` (or `difflab reindex`). The results folder must be on a file system the nodes
 * share, at the same path. */
#ifndef DM_TRAIN_SLURM_H
#define DM_TRAIN_SLURM_H

#include <stdio.h>

#include "core/status.h"

typedef struct dm_slurm_opts {
    const char *partition;   /* NULL: the cluster's default partition */
    const char *time;        /* NULL: the partition's default limit; else any sbatch --time form */
    long cpus;               /* cpus per task and run.threads (>= 1) */
    long max_parallel;       /* 0: no limit; else the array's %K */
} dm_slurm_opts;

/* Submit the unfinished lines of the expanded sweep `name` (see above). DM_E_INPUT for bad
 * options; DM_E_IO when sbatch is missing or refuses the job (its message on stderr). */
dm_status dm_sweep_slurm(const char *results, const char *name, const dm_slurm_opts *o, FILE *out, char *err);

/* The line numbers (ascending) as a Slurm array range list, "0-3,5,7-9" (dm_free; NULL when out of
 * memory). */
char *dm_slurm_array_spec(const long *lines, long n);

#endif
