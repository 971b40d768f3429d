/* dm_tamper — test tool that edits a run file as something other than difflab would:
 *   dm_tamper RUN.h5 SERIES POINT   add 1e-9 (relative) to one point of a metric series, as a
 *                                   corrupted or hand-edited record would be; `difflab reproduce`
 *                                   must name it (prints the point's step);
 *   dm_tamper RUN.h5 --old-attrs    rewrite every root attribute as a vlen UTF-8 string, in the
 *                                   record's order, in place: run.h5 as difflab wrote it before
 *                                   its numbers (n_params, wall_s, ...) were typed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "io/runlog.h"

static int old_attrs(const char *path, const dm_runrec *r)
{
    int rc = 0;
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    if (file < 0 || t < 0 || sp < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)
        rc = 1;
    for (size_t i = 0; i < r->n_attrs && !rc; i++)
        rc = H5Adelete(file, r->attrs[i].key) < 0;
    for (size_t i = 0; i < r->n_attrs && !rc; i++) {
        hid_t a = H5Acreate2(file, r->attrs[i].key, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        rc = a < 0 || H5Awrite(a, t, &r->attrs[i].value) < 0;
        if (a >= 0)
            H5Aclose(a);
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (file >= 0 && H5Fclose(file) < 0)
        rc = 1;
    if (rc)
        fprintf(stderr, "dm_tamper: cannot rewrite the root attributes of %s\n", path);
    return rc;
}

int main(int argc, char **argv)
{
    char err[DM_ERR_SIZE];
    const int old = argc == 3 && strcmp(argv[2], "--old-attrs") == 0;
    if (argc != 4 && !old) {
        fprintf(stderr, "usage: dm_tamper RUN.h5 SERIES POINT | dm_tamper RUN.h5 --old-attrs\n");
        return 2;
    }
    dm_runrec r;
    dm_runrec_init(&r);
    if (dm_runlog_read(argv[1], &r, err)) {
        fprintf(stderr, "dm_tamper: %s\n", err);
        return 1;
    }
    if (old) {
        const int rc = old_attrs(argv[1], &r);
        dm_runrec_free(&r);
        return rc;
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
