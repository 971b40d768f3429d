/* sweep.h — parameter sweeps: a YAML sweep spec expanded once into a frozen manifest of runs,
 * run by make (Makefile.runs) or a Slurm array, one manifest line per run.
 *
 * A sweep spec:
 *   name: rho_vs_steps             # results/sweeps/<name>/
 *   base: configs/methods/edm.yaml # relative to the sweep file's folder, else to the working dir
 *   set: {train.steps: 2000}       # fixed overrides (optional)
 *   grid:                          # cartesian axes: a key and its values
 *     diffusion.schedule.rho: [1, 3, 7]
 *     sampler.steps: [6, 12, 24]
 *   zip:                           # paired axes: lists of equal length, taken together (optional;
 *     sampler.type: [euler, heun]  #   a list of such mappings gives several zip groups)
 *     sampler.s_churn: [0, 0]
 *   seeds: [0, 1, 2]               # the replicate axis (or a count n: 0..n-1; default [0])
 *   exclude:                       # combinations to leave out: each must match at least one
 *     - {diffusion.schedule.rho: 1, sampler.steps: 24}
 *   quick:                         # optional: the shortened variant `--quick` expands
 *     set: {train.steps: 50}
 *     seeds: 1
 * An axis key is any spec key, or a whole section (`sampler: [{type: euler}, {type: heun}]`).
 * Values are YAML, given to the spec loader as overrides, so a key the spec does not have, a
 * value of the wrong type, an empty axis, zip lists of unequal length and an exclude that
 * matches nothing are all refused (DM_E_INPUT, with the sweep file's line and column) before
 * anything is written.
 *
 * `difflab sweep SWEEP.yaml` writes results/sweeps/<name>/:
 *   manifest.jsonl  one line per run: {"line", "run_id", "seed", "axes": {key: value}, "spec"}
 *   specs/<line>.yaml  the resolved spec of that line (canonical YAML, seed included)
 *   sweep.yaml      the sweep spec as expanded (provenance)
 *   sweep.mk        the make fragment Makefile.runs includes (SWEEP=<name>)
 * and adds (sweep, run_id) rows to the index. Expanding again is a no-op when the result is the
 * same, and refused when it differs: a launched sweep is frozen. The seed is not in a run's
 * config hash, so the replicates of a cell share group_hash. A run that several sweeps expand
 * to (same config and seed) is one run folder, listed in each.
 *
 * `difflab sweep run NAME LINE` runs one manifest line (make's and Slurm's unit of work):
 * finished and diverged runs are done (a marker results/sweeps/<name>/done/<line> appears);
 * a failed run is retried only with RETRY=1 in the environment. `difflab sweep status NAME`
 * counts the lines by state and prints the failed runs' errors, and brings the index's rows of the
 * sweep's runs up to date from their run files (runs written on Slurm nodes, which never write the
 * index).
 *
 * `difflab sweep NAME --launcher slurm` submits the unfinished lines as one Slurm array (slurm.h). */
#ifndef DM_TRAIN_SWEEP_H
#define DM_TRAIN_SWEEP_H

#include <stdio.h>

#include "core/status.h"

/* Expand the sweep spec at path into results/sweeps/<name>/ (see above); name_out (may be
 * NULL, n bytes) gets the sweep's name. With quick, the sweep's `quick:` section is applied
 * first (set: more fixed overrides, grid: axes that replace the grid's of the same key, seeds: the
 * replicate axis) and the sweep is <name>_quick: a study shortened for tests. */
dm_status dm_sweep_expand(const char *results, const char *path, int quick, char *name_out, size_t n, FILE *out,
                          char *err);

/* `difflab sweep --grid SPEC KEY=V1,V2 ... [seeds=N | seeds=A,B,...]` (sweep_grid.c): the n_args
 * axes as a sweep spec on SPEC, named `name` (NULL: the spec's name and the axis keys), written
 * to results/sweeps/<name>/sweep.yaml and expanded as dm_sweep_expand expands a file. */
dm_status dm_sweep_grid(const char *results, const char *spec, int n_args, const char *const *args, const char *name,
                        char *name_out, size_t n, FILE *out, char *err);

/* Whether an override's value is a list of values to sweep over (a comma outside brackets,
 * braces and quotes: "1e-3,3e-3"), as --grid would split it. */
int dm_sweep_grid_is_list(const char *value);

/* Run manifest line `line` of sweep `name` with extra overrides (run.* only: they do not change
 * the run). */
dm_status dm_sweep_run_line(const char *results, const char *name, long line, int n_over,
                            const char *const *over, FILE *out, char *err);

/* Print the counts of queued / running / finished / failed / diverged / interrupted lines and
 * the failed runs' errors; bring the index's rows of the sweep's runs up to date from their
 * files. */
dm_status dm_sweep_status(const char *results, const char *name, FILE *out, char *err);

/* Number of manifest lines of sweep `name` (for array launchers); DM_E_NOTFOUND if none. */
dm_status dm_sweep_n_lines(const char *results, const char *name, long *n, char *err);

/* The lines of sweep `name` still to run (for array launchers, slurm.h): no done marker and a run
 * that is not finished or diverged; a failed run's line only with RETRY=1 (*n_failed counts those
 * left out). *lines (dm_free) gets *n_lines ascending line numbers of the *n_total. */
dm_status dm_sweep_unfinished(const char *results, const char *name, long **lines, long *n_lines, long *n_total,
                              long *n_failed, char *err);

#endif
