/* dm_tamper RUN.h5 SERIES POINT — test tool: add 1e-9 (relative) to one point of a metric series in
 * a run file, as a corrupted or hand-edited record would be; `difflab reproduce` must name it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/runlog.h"

int main(int argc, char **argv)
{
    char err[DM_ERR_SIZE];
    if (argc != 4) {
        fprintf(stderr, "usage: dm_tamper RUN.h5 SERIES POINT\n");
        return 2;
    }
    dm_runrec r;
    dm_runrec_init(&r);
    if (dm_runlog_read(argv[1], &r, err)) {
        fprintf(stderr, "dm_tamper: %s\n", err);
        return 1;
    }
    const size_t k = (size_t)strtoul(argv[3], NULL, 10);
    for (size_t i = 0; i < r.n_series; i++)
        if (strcmp(r.series[i].name, argv[2]) == 0 && k < r.series[i].n) {
            r.series[i].value[k] *= 1.0 + 1e-9;
            printf("step %lld\n", (long long)r.series[i].step[k]);
            const int rc = dm_runlog_write(argv[1], &r, err) != DM_OK;
            if (rc)
                fprintf(stderr, "dm_tamper: %s\n", err);
            dm_runrec_free(&r);
            return rc;
        }
    fprintf(stderr, "dm_tamper: no point %zu of series '%s'\n", k, argv[2]);
    dm_runrec_free(&r);
    return 1;
}
