#include "train/provenance.h"

#include <H5public.h>
#include <cblas.h>
#include <gsl/gsl_version.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

void dm_time_iso(char buf[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* First line of a command's output, or "" (git may be absent: provenance is best effort). */
static void command_line(const char *cmd, char *out, size_t n)
{
    out[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    if (fgets(out, (int)n, p))
        out[strcspn(out, "\n")] = 0;
    pclose(p);
}

static void cpu_model(char *out, size_t n)
{
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *v = strchr(line, ':');
            if (v) {
                v += 1 + (v[1] == ' ');
                snprintf(out, n, "%s", v);
                out[strcspn(out, "\n")] = 0;
            }
            break;
        }
    }
    fclose(f);
}

dm_status dm_provenance_fill(dm_runrec *r, char *err)
{
    char git[128], dirty[16], host[256] = "unknown", cpu[256], libs[512], num[32];
    command_line("git -C '" DIFFLAB_SOURCE_DIR "' rev-parse HEAD 2>/dev/null", git, sizeof git);
    command_line("git -C '" DIFFLAB_SOURCE_DIR "' status --porcelain --untracked-files=no 2>/dev/null | head -1",
                 dirty, sizeof dirty);
    gethostname(host, sizeof host - 1);
    cpu_model(cpu, sizeof cpu);
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    snprintf(libs, sizeof libs, "hdf5 %u.%u.%u; libyaml %s; sqlite %s; gsl %s; %s", maj, min, rel,
             yaml_get_version_string(), sqlite3_libversion(), GSL_VERSION, OpenSSL_version(OPENSSL_VERSION));
    snprintf(num, sizeof num, "%d", openblas_get_num_threads());
    const char *kv[][2] = {
        { "version", DIFFLAB_VERSION },
        { "git_commit", git[0] ? git : "unknown" },
        { "git_dirty", git[0] ? (dirty[0] ? "1" : "0") : "unknown" },
        { "host", host },
        { "cpu", cpu },
        { "compiler", DIFFLAB_COMPILER },
        { "build_flags", DIFFLAB_BUILD_FLAGS },
        { "blas", openblas_get_config() },
        { "blas_threads", num },
        { "libraries", libs },
    };
    dm_status st;
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if ((st = dm_runrec_set_attr(r, kv[i][0], kv[i][1], err)))
            return st;
    const char *slurm[][2] = { { "SLURM_JOB_ID", "slurm_job_id" },
                               { "SLURM_ARRAY_JOB_ID", "slurm_array_job_id" },
                               { "SLURM_ARRAY_TASK_ID", "slurm_array_task_id" } };
    for (size_t i = 0; i < 3; i++) {
        const char *v = getenv(slurm[i][0]);
        if (v && (st = dm_runrec_set_attr(r, slurm[i][1], v, err)))
            return st;
    }
    return DM_OK;
}
